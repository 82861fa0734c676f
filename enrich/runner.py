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
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import polars as pl

from enrich import calls, frames, report, stream
from enrich.cache import Ledger, default_cache_path
from enrich.calls import Seams
from enrich.client import CamsClient
from enrich.credentials import CredentialSource
from enrich.endpoints import validate_endpoint
from enrich.errors import (
    EXIT_ERROR_RATE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EnrichError,
    Interrupted,
    OutputError,
)
from enrich.fanout import FanOut
from enrich.interrupts import Interrupts, SignalStop
from enrich.job import RunConfig
from enrich.lock import output_lock
from enrich.logs import Log
from enrich.metrics import write_metrics
from enrich.paths import OutputPaths, default_paths, lock_target, output_paths, side_name
from enrich.prepare import (
    DEMO_CUST_SPACE_ID,
    Prepared,
    cache_path_for,
    input_name,
    limit_to_first_keys,
    prepare,
)
from enrich.quota import Member, QuotaEvent, open_quota
from enrich.regions import region_warning
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
    "side_name",
]

@dataclass
class RunResult:
    """What a finished run produced."""

    exit_code: int
    summary: dict[str, Any]
    output: Path
    errors: Path
    summary_path: Path


@dataclass
class _Answers:
    """The ledger's fresh answers, this run's outcomes and its counters."""

    cached: pl.DataFrame
    fresh: dict[Key, KeyOutcome]
    progress: Progress


def run(cfg: RunConfig, *, seams: Seams | None = None) -> RunResult:
    """Enrich one file end to end; raises ``EnrichError`` subclasses on failure.

    The signal policy (``Interrupts``) holds from before the event loop starts until
    after it is closed, so asyncio's own Ctrl-C handling never comes into play.
    """
    seams = seams or Seams()
    with Interrupts(enabled=seams.install_signal_handlers) as interrupts:
        try:
            return asyncio.run(run_async(cfg, seams=seams, interrupts=interrupts))
        except SignalStop as stop:
            err = Interrupted(Interrupts.stop_message)
            err.logged = getattr(stop, "logged", False)  # type: ignore[attr-defined]
            raise err from None


async def run_async(
    cfg: RunConfig, *, seams: Seams, interrupts: Interrupts | None = None
) -> RunResult:
    """``run`` inside an event loop (signals as ``interrupts`` says; none by default)."""
    run = _Run(cfg, seams, interrupts=interrupts, paths=output_paths(cfg))
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
        return self.frame.select(report.public_columns(self.prep, self.frame))


class _Run:
    """One run as named steps: connect → lock → prepare → answer → collect → write.

    A run that fails after reading its input still reports what it did: the
    metrics file (``--metrics-file``) and, with JSON logs, an ``error`` event and
    the closing ``end`` event with the figures so far.
    """

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
        self.kept = cache_path_for(cfg) is not None  # answers survive the run (no --no-cache)
        self.started_at = seams.clock()
        self.t0 = time.monotonic()
        self.provider = "none"
        # what is known so far, for the report of a run that fails
        self.prep: Prepared | None = None
        self.cache_hits: int | None = None
        self.fan: FanOut | None = None
        self.quota_store = "off" if cfg.quota == "off" else None

    async def go(self) -> Enriched:
        try:
            done = await self._go()
        except (EnrichError, KeyboardInterrupt) as exc:
            self._failed(exc)
            raise
        self._metrics(done.summary)
        return done

    async def _go(self) -> Enriched:
        endpoint, credentials, emulator = await calls.connection(self.cfg, self.seams)
        self.provider = credentials.provider
        if self.cfg.mock and not self.cfg.cust_space_id and not self.cfg.cust_space_column:
            self.cfg = replace(self.cfg, cust_space_id=DEMO_CUST_SPACE_ID)
        lock = (
            output_lock(lock_target(self.paths))
            if self.paths is not None
            else contextlib.nullcontext()
        )
        try:
            with lock:
                table = self.table or stream.source_for(
                    self.cfg, self.paths, on_phase=stream.PhaseProgress(
                        lambda *p: self.log.info("progress", stream.log_line(*p), phase=p[0],
                                                 done=p[1], total=p[2]),
                        every_s=self.seams.progress_every_s, also=self.seams.on_phase,
                    ),
                )  # fmt: skip
                prep = self.prep = _prepare(self.cfg, self.log, table=table, provider=self.provider)
                with Ledger(cache_path_for(self.cfg)) as ledger:
                    answers = await self._answer(prep, ledger, endpoint, credentials)
                done = self._collect(prep, answers)
                del answers  # a large file's answers are in done.frame now: not held twice
                if self.paths is not None:
                    self._write(done, self.paths)
                _log_end(self.log, self.cfg, prep, done.summary)
                return done
        finally:
            credentials.close()
            if emulator is not None:
                emulator.stop()

    async def _answer(
        self, prep: Prepared, ledger: Ledger, endpoint: str, credentials: CredentialSource
    ) -> _Answers:
        """Answers for every key: fresh ones from the ledger, the rest called."""
        cfg, seams = self.cfg, self.seams
        cached = ledger.lookup_frame(prep.keys, not_before=seams.clock() - cfg.max_age_s)
        self.cache_hits = cached.height
        todo = _not_in(prep.keys, cached)
        if not todo:
            return _Answers(cached, {}, Progress(total=0))
        box: list[FanOut] = []

        async def before_resend() -> None:  # a resend after expired credentials: a request too
            await box[0].take_extra_slot()

        client = CamsClient(
            endpoint=endpoint,
            credentials=credentials,
            timeout_s=cfg.timeout,
            clock=seams.clock,
            max_connections=max(calls.workers(cfg), 16),
            before_resend=before_resend,
        )
        try:
            async with contextlib.AsyncExitStack() as stack:
                member = await self._join_quota(stack, endpoint, credentials)
                fan = self.fan = calls.fan_out(cfg, seams, todo, caller=client, recorder=ledger,
                                               log=self.log, slots=member)  # fmt: skip
                box.append(fan)
                result, signalled = await calls.call(fan, seams, self.log, self.interrupts)
        finally:
            await client.close()
        if result.failure is not None:
            raise result.failure
        if result.fatal is not None:
            raise calls.fatal(result.fatal, kept=self.kept)
        if result.unreachable is not None:
            raise calls.unreachable(endpoint, result.unreachable, fan.policy.unreachable_after)
        if signalled:
            raise Interrupted(_interrupted_line(fan.progress, cached.height, kept=self.kept))
        return _Answers(cached, result.outcomes, fan.progress)

    async def _join_quota(
        self, stack: contextlib.AsyncExitStack, endpoint: str, credentials: CredentialSource
    ) -> Member | None:
        """This run's membership of the account's shared budget (``--quota``), or None."""
        cfg = self.cfg
        quota = open_quota(cfg.quota, cache_dir=default_cache_path().parent,
                           on_event=self._quota_event)  # fmt: skip
        if quota is None:
            return None
        self.quota_store = quota.describe()
        budget = cfg.quota_name or f"{credentials.budget_name}@{validate_endpoint(endpoint).host}"
        await stack.enter_async_context(quota)
        return await stack.enter_async_context(
            quota.join(budget, rate=cfg.rate, input=str(cfg.input))
        )

    def _quota_event(self, event: QuotaEvent) -> None:
        self.log.warning(f"quota_{event.kind}", event.message, store=self.quota_store)

    def _collect(self, prep: Prepared, answers: _Answers) -> Enriched:
        """The enriched frame, the error report and the summary."""
        cfg = self.cfg
        as_text = self.paths is not None and self.paths.fmt != "parquet"
        frame = report.enriched_frame(
            prep, report.results_frame(answers.cached, answers.fresh), join_websites=as_text
        )
        if self.paths is not None:  # a large file: only what pass 2 needs
            frame = report.for_copy(prep, frame, output=self.paths.output, out_fmt=self.paths.fmt)
        counts = report.row_counts(frame)
        exit_code = EXIT_OK
        if prep.n_rows and counts["error_rows"] / prep.n_rows > cfg.max_error_rate:
            exit_code = EXIT_ERROR_RATE
        summary = _summary(cfg, self.paths, prep, answers, counts, exit_code=exit_code,
                           started_at=self.started_at, finished_at=self.seams.clock(),
                           t0=self.t0, credentials=self.provider)  # fmt: skip
        summary["quota"] = self._quota_described()
        summary["quota_wait_s"] = round(self.fan.quota_wait_s, 3) if self.fan else 0.0
        return Enriched(prep, frame, report.error_frame(prep, frame), summary)

    def _quota_described(self) -> str:
        """The store for the summary: a path, a URL without its password, or ``off``."""
        if self.quota_store is None:
            quota = open_quota(self.cfg.quota, cache_dir=default_cache_path().parent)
            self.quota_store = "off" if quota is None else quota.describe()
        return self.quota_store

    def _write(self, done: Enriched, paths: OutputPaths) -> None:
        inp = self.cfg.input
        warnings = report.write_outputs(
            done.prep,
            done.frame,
            done.errors,
            done.summary,
            output=paths.output,
            errors=paths.errors,
            summary_path=paths.summary,
            out_fmt=paths.fmt,
            source=None if frames.is_stdio(inp) else inp,
            commit=self.interrupts.committing(),
        )
        for warning in warnings:
            self.log.warning("output", warning, output=str(paths.output))

    def _failed(self, exc: BaseException) -> None:
        """After the input was read: the metrics, and the JSON log's error and end events."""
        if self.prep is None:
            return  # nothing was read: the caller's one line says it all
        exit_code = exc.exit_code if isinstance(exc, EnrichError) else EXIT_INTERRUPTED
        summary = self._partial_summary(exit_code)
        self._metrics(summary)
        if self.log.fmt == "json":
            message = str(exc) if isinstance(exc, EnrichError) else Interrupts.stop_message
            self.log.event("error", message, level="error", exit_code=exit_code)
            self.log.info("end", f"failed with exit code {exit_code}", **summary)
            exc.logged = True  # type: ignore[attr-defined]

    def _partial_summary(self, exit_code: int) -> dict[str, Any]:
        """The summary's keys that are known when a run fails (SPEC.md's order)."""
        paths, prep, fan = self.paths, self.prep, self.fan
        summary: dict[str, Any] = {
            "input": str(self.cfg.input),
            "output": None if paths is None else str(paths.output),
            "errors": None if paths is None else str(paths.errors),
            "credentials": self.provider,
        }
        if prep is not None:
            summary.update(rows=prep.n_rows, unique_numbers=len(prep.keys), invalid=prep.invalid)
        if self.cache_hits is not None:
            summary["cache_hits"] = self.cache_hits
        progress = fan.progress if fan is not None else None
        if progress is not None:
            summary.update(api_calls=progress.api_calls, retries=progress.retries,
                           throttled=progress.throttled)  # fmt: skip
        summary.update(
            started_at=utc_timestamp(self.started_at),
            finished_at=utc_timestamp(self.seams.clock()),
            elapsed_s=round(time.monotonic() - self.t0, 3),
            exit_code=exit_code,
        )
        return summary

    def _metrics(self, summary: dict[str, Any]) -> None:
        """The ``--metrics-file``; failing to write it is a warning, not a failed run."""
        path = self.cfg.metrics_file
        if path is None:
            return
        try:
            write_metrics(
                path,
                summary,
                job=self.cfg.job_name or self.cfg.input.stem,
                exit_code=int(summary["exit_code"]),
                duration_s=time.monotonic() - self.t0,
                finished_at=self.seams.clock(),
            )
        except OutputError as exc:
            self.log.warning("metrics", str(exc), path=str(path))


def _not_in(keys: list[Key], cached: pl.DataFrame) -> list[Key]:
    """``keys`` (in order) that ``cached`` has no answer for: an anti-join, no Python set."""
    if cached.height == 0:
        return keys
    if cached.height == len(keys):
        return []  # the ledger answers only keys it was asked for: every one is known
    frame = pl.DataFrame(keys, schema={"cust": pl.String, "number": pl.String}, orient="row")
    left = frame.join(cached.select("cust", "number"), on=["cust", "number"], how="anti",
                      maintain_order="left")  # fmt: skip
    return list(left.iter_rows())


def _interrupted_line(progress: Progress, cache_hits: int, *, kept: bool) -> str:
    """The interrupt's one line, with the counts the progress bar showed."""
    done = f"interrupted: {progress.done} of {progress.total} numbers to call done"
    if not kept:
        return (f"{done}; nothing written and, with --no-cache, nothing kept: "
                "run the same command again to start over")  # fmt: skip
    more = f" ({cache_hits} more from the cache)" if cache_hits else ""
    return (f"{done}{more}; nothing written, answers so far are kept in the cache; "
            "run the same command again to resume")  # fmt: skip


def _prepare(
    cfg: RunConfig, log: Log, *, table: frames.Table | None = None, provider: str
) -> Prepared:
    """Read and normalise the input (``--limit`` applied), and say what it holds."""
    prep = prepare(cfg, table=table)
    if cfg.limit is not None:
        prep = limit_to_first_keys(prep, cfg.limit)
    log.info(
        "start",
        f"{prep.n_rows} rows, {len(prep.keys)} distinct numbers from {_shown(cfg.input)}"
        f" (credentials: {provider})",
        input=_shown(cfg.input),
        rows=prep.n_rows,
        unique_numbers=len(prep.keys),
        credentials=provider,
    )
    if not cfg.endpoint and not cfg.mock and (warning := region_warning(cfg.region_id)):
        log.warning("region", warning, region_id=cfg.region_id)
    if prep.n_rows == 0:
        log.warning(
            "empty_input",
            f"{input_name(cfg)} has no data rows; writing empty outputs, calling nothing",
        )
    elif prep.invalid == prep.n_rows:
        log.warning(
            "no_numbers",
            f"column {prep.phone_column!r} of {input_name(cfg)} holds no valid number; "
            "every row is reported, calling nothing",
        )
    return prep


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
        "multi_number_cells": prep.multi_number_cells,
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


def _shown(path: Path, *, stdio: str = frames.STDIN_NAME) -> str:
    """A path as log lines show it: absolute (cron logs are read far from the job's
    folder), or ``<stdin>`` / ``<stdout>`` for ``-``."""
    if frames.is_stdio(path):
        return stdio
    if str(path).startswith("<"):  # no file: the Python API's ``<frame>``
        return str(path)
    return str(path.resolve())


def _log_end(log: Log, cfg: RunConfig, prep: Prepared, summary: dict[str, Any]) -> None:
    """The closing lines: the error-rate warning first, the ``end`` event last."""
    s = summary
    if s["exit_code"] == EXIT_ERROR_RATE:
        log.warning(
            "error_rate",
            f"error rows {s['error_rows']}/{prep.n_rows} "
            f"exceed --max-error-rate {cfg.max_error_rate:g}; exit 4",
        )
    log.info(
        "end",
        f"done: {s['ok']} ok, {s['no_profile']} without profile, "
        f"{prep.invalid} invalid, {s['error_rows'] - prep.invalid} errors; "
        f"{s['api_calls']} calls, {s['cache_hits']} from cache"
        + (f" → {_shown(Path(s['output']), stdio='<stdout>')}" if s["output"] is not None else ""),
        **summary,
    )


