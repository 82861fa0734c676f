"""The run: read → normalise → dedupe → ledger → fan out → collect → write.

``prepare`` does everything that calls nothing (it is all ``enrich check`` needs);
``run`` adds the calls and the outputs. Only distinct (CustSpaceId, number) keys
that the ledger has no fresh answer for are called, each exactly once to success.
Every request passes one ``Throttle`` (retries included) and one
``ConcurrencyGate``; every outcome is decided by ``RetryPolicy``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import polars as pl

from enrich import frames, phones, report
from enrich.cache import KeyOutcome, Ledger, default_cache_path
from enrich.client import (
    Answer,
    CamsClient,
    endpoint_for_region,
    is_loopback,
    validate_endpoint,
)
from enrich.errors import (
    EXIT_ERROR_RATE,
    EXIT_OK,
    CallError,
    FatalApiError,
    InputError,
    Interrupted,
    UsageError,
)
from enrich.interrupts import Interrupts, SignalStop
from enrich.job import RunConfig
from enrich.limiter import ConcurrencyGate, Throttle
from enrich.lock import output_lock
from enrich.logs import Log, mask_phone
from enrich.retry import RetryPolicy
from enrich.signing import Credentials, credentials_from_env, utc_timestamp

__all__ = [
    "DEMO_CUST_SPACE_ID",
    "KeyOutcome",
    "Prepared",
    "Progress",
    "RunResult",
    "Seams",
    "cache_path_for",
    "fetch_all",
    "prepare",
    "run",
]

Key = tuple[str, str]
DEMO_CUST_SPACE_ID = "demo-space"
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


@dataclass
class Progress:
    """A snapshot for progress displays and periodic log lines."""

    total: int
    done: int = 0
    ok: int = 0
    no_profile: int = 0
    errors: int = 0
    api_calls: int = 0
    retries: int = 0
    throttled: int = 0
    started: float = field(default_factory=time.monotonic)
    first_call: float | None = None  # loop time (monotonic) of the first request
    last_call: float | None = None  # … of the latest request
    last_answer: float | None = None  # … and of the last answer
    slot_s: float = 0.0  # the paced interval: every call holds at least one slot

    @property
    def calling_s(self) -> float:
        """From the first request to the last answer or the end of the last call's slot.

        Counting the last call's slot keeps N calls paced at P/s from reading as N / ((N-1)/P),
        over the pace, when the answers are quick.
        """
        if self.first_call is None or self.last_answer is None:
            return 0.0
        last_call = self.first_call if self.last_call is None else self.last_call
        end = max(self.last_answer, last_call + self.slot_s)
        return max(0.0, end - self.first_call)

    @property
    def rate(self) -> float:
        """Calls per second so far, by the same count of time as ``calling_s``."""
        if self.first_call is None:
            return 0.0
        elapsed = time.monotonic() - self.first_call + self.slot_s
        return self.api_calls / elapsed if elapsed > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the current pace of completion."""
        elapsed = time.monotonic() - self.started
        if self.done == 0 or elapsed <= 0:
            return None
        return (self.total - self.done) / (self.done / elapsed)


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
class Prepared:
    """The input read and normalised; nothing called."""

    table: frames.Table
    phone_column: str
    rows: pl.DataFrame  # row, raw, cust, number, err — one per input row, in order
    keys: list[Key]  # distinct valid keys in first-appearance order

    @property
    def n_rows(self) -> int:
        """Input data rows."""
        return self.rows.height

    @property
    def invalid(self) -> int:
        """Rows with a missing or invalid number."""
        return self.rows.filter(pl.col("err").is_in(phones.PHONE_ERROR_CODES)).height

    @property
    def missing_space(self) -> int:
        """Rows with an empty CustSpaceId cell."""
        return self.rows.filter(pl.col("err") == "Client.MissingCustSpaceId").height


def _cust_series(cfg: RunConfig, df: pl.DataFrame, n: int) -> pl.Series:
    if cfg.cust_space_column:
        if cfg.cust_space_column not in df.columns:
            cols = ", ".join(df.columns)
            raise InputError(
                f"--cust-space-column {cfg.cust_space_column!r} not found in "
                f"{cfg.input.name}; columns: {cols}"
            )
        return frames.cell_texts(df[cfg.cust_space_column]).str.strip_chars()
    space = (cfg.cust_space_id or "").strip()
    if not space:
        raise InputError(
            "no CustSpaceId: pass --cust-space-id ID (or set CAMS_CUST_SPACE_ID), "
            "or --cust-space-column NAME"
        )
    return pl.repeat(space, n, dtype=pl.String, eager=True)


def prepare(cfg: RunConfig) -> Prepared:
    """Read the input, find the phone column, normalise every distinct value."""
    if cfg.default_region:
        phones.validate_region(cfg.default_region)
    table = frames.read_table(cfg.input, sheet=cfg.sheet, separator=cfg.separator)
    df = table.df
    report.refuse_enriched_input(df.columns)
    column = phones.find_phone_column(df.columns, explicit=cfg.phone_column, source=cfg.input.name)
    raw = frames.cell_texts(df[column]).alias("raw")
    cust = _cust_series(cfg, df, df.height).alias("cust")
    distinct = raw.drop_nulls().unique().to_list()
    numbers: list[str | None] = []
    errs: list[str | None] = []
    for value in distinct:
        norm = phones.normalize_phone(value, default_region=cfg.default_region)
        numbers.append(norm.number)
        errs.append(norm.error)
    lookup = pl.DataFrame(
        {"raw": distinct, "number": numbers, "err": errs},
        schema={"raw": pl.String, "number": pl.String, "err": pl.String},
    )
    rows = (
        pl.DataFrame([raw, cust])
        .with_row_index("row", offset=1)
        .join(lookup, on="raw", how="left", maintain_order="left")
        .with_columns(
            pl.when(pl.col("raw").is_null())
            .then(pl.lit("Client.MissingPhone"))
            .otherwise(pl.col("err"))
            .alias("err")
        )
        .with_columns(
            pl.when(pl.col("err").is_null() & (pl.col("cust").is_null() | (pl.col("cust") == "")))
            .then(pl.lit("Client.MissingCustSpaceId"))
            .otherwise(pl.col("err"))
            .alias("err")
        )
    )
    valid = rows.filter(pl.col("err").is_null()).select("cust", "number")
    uniq = valid.unique(maintain_order=True)
    keys: list[Key] = list(zip(uniq["cust"].to_list(), uniq["number"].to_list(), strict=True))
    return Prepared(table, column, rows, keys)


def limit_to_first_keys(prep: Prepared, n: int) -> Prepared:
    """Keep the shortest prefix of rows that holds the first ``n`` distinct keys."""
    if n >= len(prep.keys):
        return prep
    wanted = set(prep.keys[:n])
    last_row = 0
    seen: set[Key] = set()
    for row, cust, number, err in prep.rows.select("row", "cust", "number", "err").iter_rows():
        if err is None and (cust, number) in wanted and (cust, number) not in seen:
            seen.add((cust, number))
            last_row = row
            if len(seen) == n:
                break
    rows = prep.rows.head(last_row)
    table = replace(prep.table, df=prep.table.df.head(last_row))
    return Prepared(table, prep.phone_column, rows, prep.keys[:n])


async def fetch_all(
    keys: list[Key],
    *,
    client: CamsClient,
    throttle: Throttle,
    gate: ConcurrencyGate,
    policy: RetryPolicy,
    ledger: Ledger,
    stop: asyncio.Event,
    single_space: bool,
    progress: Progress,
    log: Log,
    workers: int,
    rand: Callable[[], float] = random.random,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] = time.time,
    on_progress: Callable[[Progress], None] | None = None,
) -> tuple[dict[Key, KeyOutcome], CallError | None]:
    """Call every key until it succeeds, fails finally, or the run stops.

    Returns (outcomes, fatal error or None); ``progress`` holds the counters.
    Keys left unanswered because of ``stop`` or a fatal error are absent from the
    outcomes.
    """
    loop = asyncio.get_running_loop()
    outcomes: dict[Key, KeyOutcome] = {}
    queue = iter(keys)
    dead_spaces: dict[str, CallError] = {}
    fatal: list[CallError] = []

    def finish(key: Key, outcome: KeyOutcome) -> None:
        outcomes[key] = outcome
        progress.done += 1
        if outcome.status == "ok":
            progress.ok += 1
        elif outcome.status == "no_profile":
            progress.no_profile += 1
        else:
            progress.errors += 1
        if on_progress is not None:
            on_progress(progress)

    async def wait_or_stop(delay: float) -> None:
        if delay <= 0:
            return
        sleeper: asyncio.Future[Any] = asyncio.ensure_future(sleep(delay))
        stopper: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            stopper.cancel()

    async def one_key(key: Key) -> None:
        space, number = key
        attempts = 0
        while True:
            if stop.is_set() or fatal:
                return
            if space in dead_spaces:
                dead = dead_spaces[space]
                finish(
                    key,
                    KeyOutcome(
                        "error",
                        error_code=dead.code,
                        error_message=dead.message,
                        http_status=dead.http_status,
                        attempts=attempts,
                    ),
                )
                return
            await gate.acquire()
            try:
                await throttle.acquire()
                if stop.is_set() or fatal:
                    throttle.unused()
                    return
                if space in dead_spaces:  # rejected while this one waited for its slot
                    throttle.unused()
                    continue
                attempts += 1
                progress.api_calls += 1
                if attempts > 1:
                    progress.retries += 1
                started = loop.time()
                if progress.first_call is None:
                    progress.first_call = started
                progress.last_call = started
                answer: Answer | None = None
                failure: CallError | None = None
                try:
                    answer = await client.query(space, number, attempt=attempts)
                except CallError as exc:
                    failure = exc
                ended = loop.time()
                progress.last_answer = ended
                gate.observe(ended - started)
            finally:
                await gate.release()
            if answer is not None:
                throttle.on_success()
                ledger.put_answer(key, answer)
                finish(
                    key,
                    KeyOutcome(
                        "ok" if answer.profile is not None else "no_profile",
                        profile=answer.profile,
                        request_id=answer.request_id,
                        fetched_at=answer.fetched_at,
                        attempts=attempts,
                    ),
                )
                return
            assert failure is not None
            err = failure
            decision, is_throttle = policy.decide(err, attempts)
            if is_throttle:
                progress.throttled += 1
                throttle.on_throttle()
            else:
                throttle.on_success()
            if decision == "fatal" or (decision == "fatal_space" and single_space):
                fatal.append(err)
                stop.set()
                return
            if decision == "fatal_space" and space not in dead_spaces:
                # once per space: several may have been in flight
                dead_spaces[space] = err
                log.warning(
                    "space_rejected",
                    f"CustSpaceId {space!r} rejected ({err.code}); "
                    "no further calls for its numbers",
                    cust_space_id=space,
                    code=err.code,
                )
            if decision in ("final", "fatal_space"):
                # an API error is an answer: when it came, and its RequestId, as for a profile
                answered_at = clock() if classify_is_api_error(err) else None
                if decision == "final" and answered_at is not None:
                    ledger.put_error(
                        key,
                        code=err.code,
                        message=err.message,
                        http_status=err.http_status,
                        request_id=err.request_id,
                        fetched_at=answered_at,
                    )
                finish(
                    key,
                    KeyOutcome(
                        "error",
                        request_id=err.request_id,
                        fetched_at=answered_at,
                        error_code=err.code,
                        error_message=err.message,
                        http_status=err.http_status,
                        attempts=attempts,
                    ),
                )
                return
            delay = policy.backoff_s(attempts, err, rand=rand)
            log.info(
                "retry",
                f"retrying {mask_phone(number)} after {err.code} "
                f"(attempt {attempts}, in {delay:.1f}s)",
                phone=mask_phone(number),
                code=err.code,
                attempt=attempts,
                delay_s=round(delay, 3),
            )
            await wait_or_stop(delay)

    async def worker() -> None:
        for key in queue:
            if stop.is_set() or fatal:
                return
            await one_key(key)

    tasks = [asyncio.ensure_future(worker()) for _ in range(max(1, min(workers, len(keys))))]
    all_done: asyncio.Future[Any] = asyncio.gather(*tasks)
    stopper: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({all_done, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if not all_done.done():
            # stopping: in-flight requests get a short grace, then are abandoned
            await asyncio.wait({all_done}, timeout=1.5)
    finally:
        stopper.cancel()
        for t in tasks:
            t.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await all_done
    return outcomes, (fatal[0] if fatal else None)


def classify_is_api_error(err: CallError) -> bool:
    """A final error the service itself gave (worth remembering), not a client-side one."""
    return not err.code.startswith("Client.")


@dataclass
class RunResult:
    """What a finished run produced."""

    exit_code: int
    summary: dict[str, Any]
    output: Path
    errors: Path
    summary_path: Path


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


def _output_paths(cfg: RunConfig) -> tuple[Path, Path, Path, frames.Format]:
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
    return output, errors_path, summary_path, out_fmt


def _warn_about_input(log: Log, cfg: RunConfig, prep: Prepared) -> None:
    log.info(
        "start",
        f"{prep.n_rows} rows, {len(prep.keys)} distinct numbers from {cfg.input.name}",
        input=str(cfg.input),
        rows=prep.n_rows,
        unique_numbers=len(prep.keys),
    )
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


async def _call_todo(
    cfg: RunConfig,
    seams: Seams,
    *,
    log: Log,
    ledger: Ledger,
    todo: list[Key],
    endpoint: str,
    credentials: Credentials,
    already_done: int,
    total_keys: int,
    interrupts: Interrupts,
) -> tuple[dict[Key, KeyOutcome], Progress]:
    """Fan out over ``todo``; FatalApiError or Interrupted when the run cannot finish."""
    if not todo:
        return {}, Progress(total=0)
    progress = Progress(total=len(todo))
    stop = asyncio.Event()
    signalled: list[bool] = []

    def on_signal() -> None:
        signalled.append(True)
        stop.set()

    throttle = Throttle(cfg.rate)
    progress.slot_s = 1.0 / throttle.max_pace
    cap = max(16, min(1024, math.ceil(cfg.rate * cfg.timeout)))
    # Until the first answer the latency is unknown: start as if it were the timeout
    # (the pace alone spaces the starts), then learn it from the answers.
    gate = ConcurrencyGate(
        pace=lambda: throttle.pace,
        fixed=cfg.concurrency,
        cap=cap,
        initial_latency_s=cfg.timeout,
    )
    workers = cfg.concurrency or cap
    client = CamsClient(
        endpoint=endpoint,
        credentials=credentials,
        timeout_s=cfg.timeout,
        clock=seams.clock,
        max_connections=max(workers, 16),
    )
    if seams.on_progress is not None:
        seams.on_progress(progress)  # show the total before the first answer
    ticker = asyncio.ensure_future(_ticker(log, progress, seams.progress_every_s))
    try:
        with interrupts.calling(asyncio.get_running_loop(), on_signal):
            outcomes, fatal = await fetch_all(
                todo,
                client=client,
                throttle=throttle,
                gate=gate,
                policy=RetryPolicy(max_attempts=cfg.max_attempts),
                ledger=ledger,
                stop=stop,
                single_space=not cfg.cust_space_column,
                progress=progress,
                log=log,
                workers=workers,
                rand=seams.rand,
                sleep=seams.sleep,
                clock=seams.clock,
                on_progress=seams.on_progress,
            )
    finally:
        ticker.cancel()
        await client.close()
    if fatal is not None:
        hint = _FIX_HINTS.get(fatal.code, "fix the account or credentials")
        raise FatalApiError(
            f"aborted: the API answered {fatal.code} ({fatal.message}); {hint}. "
            "Nothing was written; answers so far are kept in the cache.",
            code=fatal.code,
            request_id=fatal.request_id,
        )
    if signalled:
        done = already_done + len(outcomes)
        raise Interrupted(
            f"interrupted: {done} of {total_keys} numbers done and kept in "
            "the cache; run the same command again to resume"
        )
    return outcomes, progress


async def run_async(
    cfg: RunConfig, *, seams: Seams, interrupts: Interrupts | None = None
) -> RunResult:
    """``run`` inside an event loop (signals as ``interrupts`` says; none by default)."""
    interrupts = interrupts or Interrupts(enabled=False)
    log = seams.log or Log(fmt=cfg.log_format)
    started_at = seams.clock()
    t0 = time.monotonic()
    output, errors_path, summary_path, out_fmt = _output_paths(cfg)
    endpoint, credentials, emulator = _connection(cfg, seams)
    if cfg.mock and not cfg.cust_space_id and not cfg.cust_space_column:
        cfg = replace(cfg, cust_space_id=DEMO_CUST_SPACE_ID)
    try:
        with output_lock(output):
            prep = prepare(cfg)
            if cfg.limit is not None:
                prep = limit_to_first_keys(prep, cfg.limit)
            _warn_about_input(log, cfg, prep)
            with Ledger(cache_path_for(cfg)) as ledger:
                cached = ledger.lookup_frame(prep.keys, not_before=seams.clock() - cfg.max_age_s)
                known = set(zip(cached["cust"].to_list(), cached["number"].to_list(), strict=True))
                todo = [k for k in prep.keys if k not in known]
                outcomes, stats = await _call_todo(
                    cfg,
                    seams,
                    log=log,
                    ledger=ledger,
                    todo=todo,
                    endpoint=endpoint,
                    credentials=credentials,
                    already_done=cached.height,
                    total_keys=len(prep.keys),
                    interrupts=interrupts,
                )
            frame = report.enriched_frame(
                prep, report.results_frame(cached, outcomes), join_websites=out_fmt != "parquet"
            )
            counts = report.row_counts(frame)
            exit_code = EXIT_OK
            if prep.n_rows and counts["error_rows"] / prep.n_rows > cfg.max_error_rate:
                exit_code = EXIT_ERROR_RATE
            summary = {
                "input": str(cfg.input),
                "output": str(output),
                "errors": str(errors_path),
                "rows": prep.n_rows,
                "unique_numbers": len(prep.keys),
                "invalid": prep.invalid,
                "cache_hits": cached.height,
                "api_calls": stats.api_calls,
                "retries": stats.retries,
                "throttled": stats.throttled,
                **counts,
                "started_at": utc_timestamp(started_at),
                "finished_at": utc_timestamp(seams.clock()),
                "elapsed_s": round(time.monotonic() - t0, 3),
                "requests_per_s": (
                    round(stats.api_calls / stats.calling_s, 3) if stats.calling_s > 0 else 0.0
                ),
                "exit_code": exit_code,
            }
            report.write_outputs(
                prep,
                frame,
                report.error_frame(prep, frame),
                summary,
                output=output,
                errors=errors_path,
                summary_path=summary_path,
                out_fmt=out_fmt,
                commit=interrupts.committing(),
            )
            log.info(
                "end",
                f"done: {counts['ok']} ok, {counts['no_profile']} without profile, "
                f"{prep.invalid} invalid, {counts['error_rows'] - prep.invalid} errors; "
                f"{stats.api_calls} calls, {cached.height} from cache → {output}",
                **summary,
            )
            if exit_code == EXIT_ERROR_RATE:
                log.warning(
                    "error_rate",
                    f"error rows {counts['error_rows']}/{prep.n_rows} "
                    f"exceed --max-error-rate {cfg.max_error_rate:g}; exit 4",
                )
            return RunResult(exit_code, summary, output, errors_path, summary_path)
    finally:
        if emulator is not None:
            emulator.stop()


def cache_path_for(cfg: RunConfig) -> Path | None:
    """The ledger file: --cache, or a default one. Answers from ``--mock`` and from a
    loopback ``--endpoint`` (an emulator) get their own default files, so they are
    never served to a run against the real service."""
    if cfg.no_cache:
        return None
    if cfg.cache is not None:
        return cfg.cache
    if cfg.mock:
        return default_cache_path("mock")
    if cfg.endpoint and is_loopback(validate_endpoint(cfg.endpoint).host):
        return default_cache_path("local")
    return default_cache_path()


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


def _connection(cfg: RunConfig, seams: Seams) -> tuple[str, Credentials, Any]:
    """(endpoint, credentials, emulator handle or None)."""
    if cfg.mock:
        from enrich.emulator import EmulatorConfig, EmulatorServer

        server = EmulatorServer(EmulatorConfig()).start()
        ak, secret = next(iter(EmulatorConfig().keys.items()))
        return server.url, Credentials(ak, secret), server
    endpoint = cfg.endpoint or endpoint_for_region(cfg.region_id)
    validate_endpoint(endpoint)
    return endpoint, credentials_from_env(seams.environ), None
