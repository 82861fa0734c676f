"""The run: prepare → ledger → fan out → collect → write, as named steps.

``prepare.prepare`` does everything that calls nothing (it is all ``enrich check``
needs); ``run`` adds the calls and the outputs. Only distinct (CustSpaceId,
number) keys that the ledger has no fresh answer for are called, each exactly
once to success, by a ``fanout.FanOut``: every request passes one ``Throttle``
(retries included) and one ``ConcurrencyGate``; every failure is judged by
``retry.RetryPolicy``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import polars as pl

from enrich import frames, report
from enrich.cache import Ledger
from enrich.client import CamsClient, endpoint_for_region, validate_endpoint
from enrich.credentials import CredentialSource
from enrich.errors import (
    EXIT_ERROR_RATE,
    EXIT_OK,
    CallError,
    FatalApiError,
    Interrupted,
    UsageError,
)
from enrich.fanout import FanOut, FanOutResult
from enrich.interrupts import Interrupts, SignalStop
from enrich.job import RunConfig
from enrich.limiter import ConcurrencyGate, Throttle
from enrich.lock import output_lock
from enrich.logs import Log
from enrich.prepare import (
    DEMO_CUST_SPACE_ID,
    Prepared,
    cache_path_for,
    limit_to_first_keys,
    prepare,
)
from enrich.regions import region_warning
from enrich.retry import RetryPolicy
from enrich.signing import Credentials
from enrich.types import Key, KeyOutcome, Progress, utc_timestamp

__all__ = [
    "DEMO_CUST_SPACE_ID",
    "Enriched",
    "OutputPaths",
    "Progress",
    "RunResult",
    "Seams",
    "default_paths",
    "enrich_table_async",
    "run",
    "run_async",
]

_FIX_HINTS = {
    "Product.Unsubscript": "subscribe the account to ChatApp Message Service (CAMS)",
    "Ram.PermissionDeny": "grant the RAM user the cams:QueryPhoneBusinessProfile permission",
    "InvalidAccessKeyId.NotFound": "check ALIBABA_CLOUD_ACCESS_KEY_ID",
    "InvalidAccessKeyId.Inactive": "enable the AccessKey or use another one",
    "SignatureDoesNotMatch": "check ALIBABA_CLOUD_ACCESS_KEY_SECRET",
    "InvalidSecurityToken.Expired": "refresh ALIBABA_CLOUD_SECURITY_TOKEN",
    "InvalidSecurityToken.Malformed": "check ALIBABA_CLOUD_SECURITY_TOKEN",
    "InvalidTimeStamp.Expired": "fix this machine's clock (it is more than 15 minutes off)",
    "Unknown.ResourceOwnerId": "check --cust-space-id: it does not belong to this account",
}


@dataclass(frozen=True, kw_only=True)
class Seams:
    """What tests (and --mock) pass in instead of patching modules."""

    environ: dict[str, str] | None = None
    clock: Callable[[], float] = time.time
    rand: Callable[[], float] = random.random
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    log: Log | None = None
    on_progress: Callable[[Progress], None] | None = None
    install_signal_handlers: bool = True
    progress_every_s: float = 30.0


@dataclass
class RunResult:
    """What a finished run produced."""

    exit_code: int
    summary: dict[str, Any]
    output: Path
    errors: Path
    summary_path: Path


@dataclass(frozen=True)
class OutputPaths:
    """The three outputs, and the enriched file's format."""

    output: Path
    errors: Path
    summary: Path
    fmt: frames.Format


@dataclass
class _Answers:
    """The ledger's fresh answers, this run's outcomes and its counters."""

    cached: pl.DataFrame
    fresh: dict[Key, KeyOutcome]
    progress: Progress


def default_paths(cfg: RunConfig) -> tuple[Path, Path, Path]:
    """(output, errors, summary) as SPEC.md names them by default."""
    inp = cfg.input
    output = cfg.output or inp.with_name(f"{inp.stem}.enriched{inp.suffix.lower()}")
    errors = cfg.errors or output.with_name(f"{inp.stem}.errors.csv")
    summary = cfg.summary or output.with_name(f"{inp.stem}.summary.json")
    return output, errors, summary


def run(cfg: RunConfig, *, seams: Seams | None = None) -> RunResult:
    """Enrich one file end to end; raises ``EnrichError`` subclasses on failure.

    The signal policy (``Interrupts``) holds from before the event loop starts until
    after it is closed, so asyncio's own Ctrl-C handling never comes into play.
    """
    seams = seams or Seams()
    with Interrupts(enabled=seams.install_signal_handlers) as interrupts:
        try:
            return asyncio.run(run_async(cfg, seams=seams, interrupts=interrupts))
        except SignalStop:
            raise Interrupted(Interrupts.stop_message) from None


async def run_async(
    cfg: RunConfig, *, seams: Seams, interrupts: Interrupts | None = None
) -> RunResult:
    """``run`` inside an event loop (signals as ``interrupts`` says; none by default)."""
    run = _Run(cfg, seams, interrupts=interrupts, paths=_output_paths(cfg))
    done = await run.go()
    assert run.paths is not None
    p = run.paths
    return RunResult(done.summary["exit_code"], done.summary, p.output, p.errors, p.summary)


async def enrich_table_async(
    cfg: RunConfig, table: frames.Table, *, seams: Seams
) -> Enriched:
    """Enrich a table already in memory (the Python API): the run without its files."""
    return await _Run(cfg, seams, interrupts=None, paths=None, table=table).go()


@dataclass
class Enriched:
    """A run's results in memory: what the three outputs are written from."""

    prep: Prepared
    frame: pl.DataFrame  # input columns + bp_* (+ private ``_`` report columns)
    errors: pl.DataFrame  # the error report
    summary: dict[str, Any]

    @property
    def public(self) -> pl.DataFrame:
        """The enriched frame without the private report columns."""
        return self.frame.select([c for c in self.frame.columns if not c.startswith("_")])


class _Run:
    """One run as named steps: connect → lock → prepare → answer → collect → write."""

    def __init__(
        self,
        cfg: RunConfig,
        seams: Seams,
        *,
        interrupts: Interrupts | None,
        paths: OutputPaths | None,
        table: frames.Table | None = None,
    ) -> None:
        self.cfg = cfg
        self.seams = seams
        self.interrupts = interrupts or Interrupts(enabled=False)
        self.paths = paths  # None: nothing is written (a frame from the Python API)
        self.table = table
        self.log = seams.log or Log(fmt=cfg.log_format)
        self.started_at = seams.clock()
        self.t0 = time.monotonic()

    async def go(self) -> Enriched:
        endpoint, credentials, emulator = await _connection(self.cfg, self.seams)
        self.credentials = credentials
        if self.cfg.mock and not self.cfg.cust_space_id and not self.cfg.cust_space_column:
            self.cfg = replace(self.cfg, cust_space_id=DEMO_CUST_SPACE_ID)
        lock = (
            output_lock(self.paths.output) if self.paths is not None else contextlib.nullcontext()
        )
        try:
            with lock:
                prep = _prepare(self.cfg, self.log, table=self.table, provider=credentials.provider)
                with Ledger(cache_path_for(self.cfg)) as ledger:
                    answers = await _answer(
                        self.cfg, self.seams, prep, ledger=ledger, log=self.log,
                        interrupts=self.interrupts, endpoint=endpoint, credentials=credentials,
                    )  # fmt: skip
                done = self._collect(prep, answers)
                if self.paths is not None:
                    self._write(done, self.paths)
                _log_end(self.log, self.cfg, prep, done.summary)
                return done
        finally:
            credentials.close()
            if emulator is not None:
                emulator.stop()

    def _collect(self, prep: Prepared, answers: _Answers) -> Enriched:
        """The enriched frame, the error report and the summary."""
        cfg = self.cfg
        as_text = self.paths is not None and self.paths.fmt != "parquet"
        frame = report.enriched_frame(
            prep, report.results_frame(answers.cached, answers.fresh), join_websites=as_text
        )
        counts = report.row_counts(frame)
        exit_code = EXIT_OK
        if prep.n_rows and counts["error_rows"] / prep.n_rows > cfg.max_error_rate:
            exit_code = EXIT_ERROR_RATE
        summary = _summary(cfg, self.paths, prep, answers, counts, exit_code=exit_code,
                           started_at=self.started_at, finished_at=self.seams.clock(),
                           t0=self.t0, credentials=self.credentials.provider)  # fmt: skip
        return Enriched(prep, frame, report.error_frame(prep, frame), summary)

    def _write(self, done: Enriched, paths: OutputPaths) -> None:
        report.write_outputs(
            done.prep,
            done.frame,
            done.errors,
            done.summary,
            output=paths.output,
            errors=paths.errors,
            summary_path=paths.summary,
            out_fmt=paths.fmt,
            commit=self.interrupts.committing(),
        )


def _output_paths(cfg: RunConfig) -> OutputPaths:
    """Check the input format and the three output paths before anything else happens."""
    output, errors_path, summary_path = default_paths(cfg)
    frames.format_for(cfg.input, role="input")  # a bad input is exit 1, whatever the output
    out_fmt = frames.format_for(output, role="output")
    for p in (output, errors_path, summary_path):
        if p.parent.exists() and not p.parent.is_dir():
            raise UsageError(f"cannot write {p}: {p.parent} is not a folder")
        if not p.parent.is_dir():
            raise UsageError(f"cannot write {p}: folder {p.parent} does not exist")
        if p.is_dir():
            raise UsageError(f"cannot write {p}: it is a directory")
    if errors_path.suffix.lower() != ".csv":
        raise UsageError(f"--errors {errors_path.name}: the error report is a .csv file")
    if summary_path.suffix.lower() != ".json":
        raise UsageError(f"--summary {summary_path.name}: the run summary is a .json file")
    distinct = {p.resolve() for p in (output, errors_path, summary_path, cfg.input)}
    if len(distinct) < 4:
        raise UsageError("input, output, error report and summary must be four different files")
    return OutputPaths(output, errors_path, summary_path, out_fmt)


def _prepare(
    cfg: RunConfig, log: Log, *, table: frames.Table | None = None, provider: str
) -> Prepared:
    """Read and normalise the input (``--limit`` applied), and say what it holds."""
    prep = prepare(cfg, table=table)
    if cfg.limit is not None:
        prep = limit_to_first_keys(prep, cfg.limit)
    log.info(
        "start",
        f"{prep.n_rows} rows, {len(prep.keys)} distinct numbers from {cfg.input.name}"
        f" (credentials: {provider})",
        input=str(cfg.input),
        rows=prep.n_rows,
        unique_numbers=len(prep.keys),
        credentials=provider,
    )
    if not cfg.endpoint and not cfg.mock and (warning := region_warning(cfg.region_id)):
        log.warning("region", warning, region_id=cfg.region_id)
    if prep.n_rows == 0:
        log.warning(
            "empty_input",
            f"{cfg.input.name} has no data rows; writing empty outputs, calling nothing",
        )
    elif prep.invalid == prep.n_rows:
        log.warning(
            "no_numbers",
            f"column {prep.phone_column!r} of {cfg.input.name} holds no valid number; "
            "every row is reported, calling nothing",
        )
    return prep


async def _answer(
    cfg: RunConfig,
    seams: Seams,
    prep: Prepared,
    *,
    ledger: Ledger,
    log: Log,
    interrupts: Interrupts,
    endpoint: str,
    credentials: CredentialSource,
) -> _Answers:
    """Answers for every key: fresh ones from the ledger, the rest called."""
    cached = ledger.lookup_frame(prep.keys, not_before=seams.clock() - cfg.max_age_s)
    known = set(zip(cached["cust"].to_list(), cached["number"].to_list(), strict=True))
    todo = [k for k in prep.keys if k not in known]
    if not todo:
        return _Answers(cached, {}, Progress(total=0))
    client = CamsClient(
        endpoint=endpoint,
        credentials=credentials,
        timeout_s=cfg.timeout,
        clock=seams.clock,
        max_connections=max(_workers(cfg), 16),
    )
    try:
        fan = _fan_out(cfg, seams, todo, caller=client, recorder=ledger, log=log)
        result, signalled = await _call(fan, seams, log, interrupts)
    finally:
        await client.close()
    if result.fatal is not None:
        raise _fatal(result.fatal)
    if signalled:
        done = cached.height + len(result.outcomes)
        raise Interrupted(
            f"interrupted: {done} of {len(prep.keys)} numbers done and kept in "
            "the cache; run the same command again to resume"
        )
    return _Answers(cached, result.outcomes, fan.progress)


def _cap(cfg: RunConfig) -> int:
    return max(16, min(1024, math.ceil(cfg.rate * cfg.timeout)))


def _workers(cfg: RunConfig) -> int:
    return cfg.concurrency or _cap(cfg)


def _fan_out(
    cfg: RunConfig, seams: Seams, todo: list[Key], *, caller: CamsClient, recorder: Ledger, log: Log
) -> FanOut:
    """The fan-out over ``todo``, with its throttle and concurrency gate."""
    throttle = Throttle(cfg.rate)
    progress = Progress(total=len(todo), slot_s=1.0 / throttle.max_pace)
    # Until the first answer the latency is unknown: start as if it were the timeout
    # (the pace alone spaces the starts), then learn it from the answers.
    gate = ConcurrencyGate(
        pace=lambda: throttle.pace,
        fixed=cfg.concurrency,
        cap=_cap(cfg),
        initial_latency_s=cfg.timeout,
    )
    return FanOut(
        todo,
        caller=caller,
        throttle=throttle,
        gate=gate,
        policy=RetryPolicy(max_attempts=cfg.max_attempts),
        recorder=recorder,
        log=log,
        workers=_workers(cfg),
        single_space=not cfg.cust_space_column,
        progress=progress,
        rand=seams.rand,
        sleep=seams.sleep,
        clock=seams.clock,
        on_progress=seams.on_progress,
    )


async def _call(
    fan: FanOut, seams: Seams, log: Log, interrupts: Interrupts
) -> tuple[FanOutResult, bool]:
    """Run the fan-out with signals stopping it and a progress log line every so often."""
    signalled: list[bool] = []

    def on_signal() -> None:
        signalled.append(True)
        fan.stop.set()

    if seams.on_progress is not None:
        seams.on_progress(fan.progress)  # show the total before the first answer
    ticker = asyncio.ensure_future(_ticker(log, fan.progress, seams.progress_every_s))
    try:
        with interrupts.calling(asyncio.get_running_loop(), on_signal):
            result = await fan.run()
    finally:
        ticker.cancel()
    return result, bool(signalled)


def _fatal(err: CallError) -> FatalApiError:
    hint = _FIX_HINTS.get(err.code, "fix the account or credentials")
    return FatalApiError(
        f"aborted: the API answered {err.code} ({err.message}); {hint}. "
        "Nothing was written; answers so far are kept in the cache.",
        code=err.code,
        request_id=err.request_id,
    )


def _summary(
    cfg: RunConfig,
    paths: OutputPaths | None,
    prep: Prepared,
    answers: _Answers,
    counts: dict[str, Any],
    *,
    exit_code: int,
    started_at: float,
    finished_at: float,
    t0: float,
    credentials: str,
) -> dict[str, Any]:
    """The run summary, in SPEC.md's key order."""
    stats = answers.progress
    return {
        "input": str(cfg.input),
        "output": None if paths is None else str(paths.output),
        "errors": None if paths is None else str(paths.errors),
        "credentials": credentials,
        "rows": prep.n_rows,
        "unique_numbers": len(prep.keys),
        "invalid": prep.invalid,
        "cache_hits": answers.cached.height,
        "api_calls": stats.api_calls,
        "retries": stats.retries,
        "throttled": stats.throttled,
        **counts,
        "started_at": utc_timestamp(started_at),
        "finished_at": utc_timestamp(finished_at),
        "elapsed_s": round(time.monotonic() - t0, 3),
        "requests_per_s": (
            round(stats.api_calls / stats.calling_s, 3) if stats.calling_s > 0 else 0.0
        ),
        "exit_code": exit_code,
    }


def _log_end(log: Log, cfg: RunConfig, prep: Prepared, summary: dict[str, Any]) -> None:
    s = summary
    log.info(
        "end",
        f"done: {s['ok']} ok, {s['no_profile']} without profile, "
        f"{prep.invalid} invalid, {s['error_rows'] - prep.invalid} errors; "
        f"{s['api_calls']} calls, {s['cache_hits']} from cache"
        + (f" → {s['output']}" if s["output"] is not None else ""),
        **summary,
    )
    if s["exit_code"] == EXIT_ERROR_RATE:
        log.warning(
            "error_rate",
            f"error rows {s['error_rows']}/{prep.n_rows} "
            f"exceed --max-error-rate {cfg.max_error_rate:g}; exit 4",
        )


async def _ticker(log: Log, progress: Progress, every_s: float = 30.0) -> None:
    while True:
        await asyncio.sleep(every_s)
        eta = progress.eta_s
        log.info(
            "progress",
            f"{progress.done}/{progress.total} numbers, {progress.rate:.1f} calls/s, ETA {eta:.0f}s"
            if eta is not None
            else f"{progress.done}/{progress.total} numbers",
            done=progress.done,
            total=progress.total,
            rate=round(progress.rate, 2),
            eta_s=None if eta is None else round(eta),
            throttled=progress.throttled,
            retries=progress.retries,
            errors=progress.errors,
        )


async def _connection(cfg: RunConfig, seams: Seams) -> tuple[str, CredentialSource, Any]:
    """(endpoint, credentials, emulator handle or None); one line and exit 1 when the
    credential chain has nothing, before anything is read or sent."""
    if cfg.mock:
        from enrich.emulator import EmulatorConfig, EmulatorServer

        server = EmulatorServer(EmulatorConfig()).start()
        ak, secret = next(iter(EmulatorConfig().keys.items()))
        return server.url, CredentialSource.fixed(Credentials(ak, secret)), server
    endpoint = cfg.endpoint or endpoint_for_region(cfg.region_id)
    validate_endpoint(endpoint)
    source = await CredentialSource.discover(environ=seams.environ, clock=seams.clock)
    return endpoint, source, None
