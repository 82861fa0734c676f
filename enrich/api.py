"""The Python API: ``enrich_frame``, ``enrich_frame_async`` and ``enrich_file``.

The same run as ``enrich run`` (cache, throttle, retries, credentials, ``mock``),
as a library call: options are keywords named like the command's long options,
errors are the exceptions of ``enrich.errors`` (never ``SystemExit``), and nothing
is printed but the log lines and, where someone is watching, a progress bar.

The synchronous calls run the work on a thread with its own event loop, so they
work where a loop is already running (Jupyter). Interrupting them (Ctrl-C,
"interrupt kernel") cancels the calls, keeps every answer so far in the cache and
raises ``KeyboardInterrupt``. No signal handler is installed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import importlib.util
import os
import sys
import threading
import types
import typing
from collections.abc import Coroutine
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal, TypeVar

import polars as pl

from enrich import frames
from enrich.errors import InputError, UsageError
from enrich.job import RunConfig, apply_job_file
from enrich.logs import Log

__all__ = ["Result", "enrich_file", "enrich_frame", "enrich_frame_async"]

T = TypeVar("T")

#: What a frame is called in the summary and in log lines.
FRAME_INPUT = Path("<frame>")
#: How often the calling thread wakes while it waits, to see an interrupt.
_POLL_S = 0.1
#: Options of ``enrich run`` that make no sense for a frame in memory.
_FILE_ONLY = frozenset({"input", "output", "errors", "summary", "sheet", "separator"})


@dataclass
class Result:
    """What a run gave back.

    ``frame``: the input with the ``bp_*`` columns (polars, or pandas with the
    input's index and dtypes when a pandas frame was given); ``errors``: the error
    report, one row per row that did not end ``ok``/``no_profile``; ``summary``:
    the run summary (as in the summary file). ``enrich_file`` also sets the paths
    it wrote.
    """

    frame: Any
    errors: Any
    summary: dict[str, Any]
    output: Path | None = None
    errors_path: Path | None = None
    summary_path: Path | None = None


def _config(input_path: Path, options: dict[str, Any], *, file: bool) -> RunConfig:
    known = {f.name for f in fields(RunConfig)}
    allowed = known if file else known - _FILE_ONLY
    unknown = sorted(set(options) - allowed)
    if unknown:
        hint = " (a frame in memory has no files)" if set(unknown) & _FILE_ONLY else ""
        raise UsageError(f"unknown option(s) {', '.join(unknown)}{hint}")
    values = {k: _checked(k, v) for k, v in options.items() if v is not None}
    env = {key: os.environ[name] for key, name in _ENVIRONMENT.items() if os.environ.get(name)}
    # keywords beat the environment, and displace its alternatives, as flags do
    return apply_job_file(None, {**values, "input": input_path}, env)


#: The options the command also takes from the environment (click's ``envvar``).
_ENVIRONMENT = {
    "cust_space_id": "CAMS_CUST_SPACE_ID",
    "endpoint": "CAMS_ENDPOINT",
    "region_id": "ALIBABA_CLOUD_REGION_ID",
    "quota": "CAMS_ENRICH_QUOTA",
}


#: What a keyword may be given as, for a field of this type.
_ACCEPTS: dict[Any, tuple[type, ...]] = {float: (int, float), Path: (str, os.PathLike)}


def _checked(key: str, value: Any) -> Any:
    """``value`` for RunConfig's ``key`` (a path as a Path); a keyword of the wrong type
    is a UsageError naming it, not a TypeError from deep inside the run."""
    hint = typing.get_type_hints(RunConfig)[key]
    union = typing.get_origin(hint) in (types.UnionType, typing.Union)
    allowed: list[type] = []
    for t in typing.get_args(hint) if union else (hint,):
        if typing.get_origin(t) is Literal:
            if value in typing.get_args(t):
                return value
            choices = "/".join(map(repr, typing.get_args(t)))
            raise UsageError(f"{key} must be one of {choices}, not {value!r}")
        if t is not type(None):
            allowed += _ACCEPTS.get(t, (t,))
    if not all(isinstance(t, type) for t in allowed):
        return value  # a generic type: RunConfig.validated has the last word
    if isinstance(value, tuple(allowed)) and (bool in allowed or not isinstance(value, bool)):
        if os.PathLike in allowed:
            return Path(typing.cast("str | os.PathLike[str]", value))
        return value
    names = " or ".join("a path" if t is os.PathLike else t.__name__ for t in allowed)
    raise UsageError(f"{key} must be {names}, not {value!r}")


def _wants_bar(progress: bool | None) -> bool:
    """A bar in a notebook or on a terminal; never in a script whose stderr is not one.

    In Jupyter rich draws its bar as a widget, which needs ``ipywidgets``
    (``cams-enrich[notebook]``); without it the log lines say the same.
    """
    in_notebook = "ipykernel" in sys.modules
    if in_notebook and importlib.util.find_spec("ipywidgets") is None:
        return False
    if progress is not None:
        return progress
    if in_notebook:
        return True
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def _to_polars(df: Any) -> tuple[pl.DataFrame, Literal["polars", "pandas"]]:
    if isinstance(df, pl.DataFrame):
        return df, "polars"
    module = type(df).__module__.split(".")[0]
    if module == "pandas":
        # the index is kept aside: the frame comes back with it (see _from_polars)
        return _pandas_to_polars(df), "pandas"
    raise UsageError(f"enrich_frame takes a polars or pandas DataFrame, not {type(df).__name__}")


def _pandas_to_polars(df: Any) -> pl.DataFrame:
    """Column by column and without pyarrow (``pl.from_pandas`` needs it for pandas 3's
    default ``str`` columns and for extension dtypes): plain numpy columns as they are,
    the others through Python objects, missing values as null."""
    import numpy as np

    names = [str(name) for name in df.columns]
    if len(set(names)) < len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise InputError(f"the frame has duplicate column names: {', '.join(twice)}")
    columns: list[pl.Series] = []
    for i, name in enumerate(df.columns):
        s = df.iloc[:, i]
        if isinstance(s.dtype, np.dtype) and s.dtype.kind in "biufmM":
            columns.append(pl.Series(str(name), s.to_numpy()))
            continue
        values = s.astype(object).where(s.notna(), None).tolist()
        try:
            columns.append(pl.Series(str(name), values, strict=False))
        except (TypeError, ValueError, pl.exceptions.PolarsError):  # mixed types: as text
            texts = [None if v is None else str(v) for v in values]
            columns.append(pl.Series(str(name), texts, dtype=pl.String))
    return pl.DataFrame(columns)


def _from_polars(original: Any, enriched: pl.DataFrame, kind: str) -> Any:
    """The bp_* columns put beside the caller's own frame, untouched."""
    if kind == "polars":
        return enriched
    import pandas as pd

    # the columns after the input's own (by position: pandas names need not be strings)
    bp = enriched.select(enriched.columns[len(original.columns) :])
    out = original.copy()
    for name in bp.columns:
        # via Python objects: no pyarrow needed, and nulls come back as None
        out[name] = pd.Series(bp[name].to_list(), index=out.index, dtype=object)
    return out


def _errors_as(errors: pl.DataFrame, kind: str) -> Any:
    if kind == "polars":
        return errors
    import pandas as pd

    return pd.DataFrame(errors.to_dict(as_series=False))


async def enrich_frame_async(df: Any, **options: Any) -> Result:
    """``enrich_frame`` for code already inside an event loop.

    Example::

        result = await enrich.enrich_frame_async(df, cust_space_id="2934839388494", mock=True)
    """
    from enrich.presentation import Presentation
    from enrich.runner import Seams, enrich_table_async

    progress = options.pop("progress", None)
    cfg = _config(FRAME_INPUT, options, file=False)
    data, kind = _to_polars(df)
    want = _wants_bar(progress)
    pres = Presentation(log=Log(fmt=cfg.log_format, quiet_info=want), progress=want)
    table = frames.Table(df=data, fmt="parquet")  # typed columns, as a Parquet input
    with pres:
        seams = Seams(log=pres.log, on_progress=pres.on_progress, on_phase=pres.on_phase,
                      install_signal_handlers=False)
        done = await enrich_table_async(cfg, table, seams=seams)
        pres.final_table(done.summary)  # under the bar: it says what the log line would
    return Result(
        frame=_from_polars(df, done.public, kind),
        errors=_errors_as(done.errors, kind),
        summary=done.summary,
    )


def enrich_frame(df: Any, **options: Any) -> Result:
    """Enrich a polars (or pandas) frame; every ``enrich run`` option as a keyword.

    Options are the long ``run`` options with underscores: ``phone_column``,
    ``cust_space_id``, ``cust_space_column``, ``default_region``, ``region_id``,
    ``endpoint``, ``mock``, ``rate``, ``concurrency``, ``max_attempts``, ``timeout``,
    ``cache``, ``no_cache``, ``max_age``, ``max_error_rate``, ``limit``,
    ``progress``, ``log_format``, ``quota``, ``quota_name``; as for the command,
    ``CAMS_CUST_SPACE_ID``, ``CAMS_ENDPOINT``, ``ALIBABA_CLOUD_REGION_ID`` and
    ``CAMS_ENRICH_QUOTA`` stand in for the keywords not given. Raises the exceptions
    of ``enrich.errors``
    (``InputError``, ``FatalApiError``, ``UsageError``, …).

    Example::

        import polars as pl, enrich
        df = pl.DataFrame({"name": ["Ana", "Bo"], "phone": ["+44 7700 900123", "07700 900456"]})
        result = enrich.enrich_frame(df, default_region="GB", mock=True)
        result.frame.select("name", "bp_status", "bp_about")
        result.summary["api_calls"]
    """
    return _run_in_thread(enrich_frame_async(df, **options))


def enrich_file(path: str | Path, **options: Any) -> Result:
    """What ``enrich run PATH`` does: writes the three outputs and returns the Result.

    Example::

        result = enrich.enrich_file("leads.xlsx", output="leads.enriched.xlsx",
                                    cust_space_id="2934839388494", default_region="GB")
        result.output, result.summary["ok"]
    """
    return _run_in_thread(_enrich_file_async(Path(path), options))


async def _enrich_file_async(path: Path, options: dict[str, Any]) -> Result:
    from enrich.presentation import Presentation
    from enrich.runner import Seams, run_async

    progress = options.pop("progress", None)
    cfg = _config(path, options, file=True)
    want = _wants_bar(progress)
    pres = Presentation(log=Log(fmt=cfg.log_format, quiet_info=want), progress=want)
    with pres:
        seams = Seams(log=pres.log, on_progress=pres.on_progress, on_phase=pres.on_phase,
                      install_signal_handlers=False)
        res = await run_async(cfg, seams=seams)
        pres.final_table(res.summary)
    out = frames.read_table(res.output, sheet=None, separator=None).df
    errors = pl.read_csv(res.errors, infer_schema=False)
    return Result(out, errors, res.summary, res.output, res.errors, res.summary_path)


def _run_in_thread(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on a thread with its own event loop; an interrupt cancels it.

    On ``KeyboardInterrupt`` in the calling thread the work is cancelled (answers
    already received are in the cache), the thread is waited for, and the
    interrupt is raised again.
    """
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    task: list[asyncio.Task[T]] = []

    def work() -> T:
        asyncio.set_event_loop(loop)
        try:
            task.append(loop.create_task(coro))
            ready.set()
            return loop.run_until_complete(task[0])
        finally:
            ready.set()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="enrich") as pool:
        future = pool.submit(work)
        try:
            return _wait_for(future)
        except KeyboardInterrupt:
            ready.wait()
            if task:
                with contextlib.suppress(RuntimeError):  # the loop may just have closed
                    loop.call_soon_threadsafe(task[0].cancel)
            # the interrupt is what the caller asked for, whatever the cancelled work says
            with contextlib.suppress(BaseException):
                future.result(timeout=5)
            raise


def _wait_for(future: concurrent.futures.Future[T]) -> T:
    """``future.result()``, woken often enough to notice a signal.

    A signal that the kernel hands to another thread (the worker, a kernel's own
    threads) does not wake an untimed wait; the main thread only raises the
    interrupt once it runs Python code again, which a short timeout gives it.
    """
    while not future.done():
        # not result(timeout=): the work's own TimeoutError would read as "not yet"
        concurrent.futures.wait([future], timeout=_POLL_S)
    return future.result()
