"""Calling the service: the connection (endpoint, credentials, ``--mock``'s emulator)
and the fan-out with its throttle, concurrency gate, progress ticker and signals.

``runner`` decides what to call; this module sets up and runs the calls.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from enrich.cache import Ledger
from enrich.client import CamsClient, endpoint_for_region, validate_endpoint
from enrich.credentials import CredentialSource
from enrich.errors import CallError, FatalApiError
from enrich.fanout import FanOut, FanOutResult, Slots
from enrich.interrupts import Interrupts
from enrich.job import RunConfig
from enrich.limiter import ConcurrencyGate, Throttle
from enrich.logs import Log
from enrich.retry import RetryPolicy
from enrich.signing import Credentials
from enrich.types import Key, Progress

__all__ = [
    "Seams",
    "call",
    "cap",
    "connection",
    "fan_out",
    "fatal",
    "ticker",
    "unreachable",
    "workers",
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
    on_phase: Callable[[str, int, int], None] | None = None
    """A large file's reading, normalising and writing: ``(phase, done, total)`` at every
    batch (``stream.OnPhase``), e.g. ``presentation.Presentation.on_phase``."""
    install_signal_handlers: bool = True
    progress_every_s: float = 30.0


def cap(cfg: RunConfig) -> int:
    return max(16, min(1024, math.ceil(cfg.rate * cfg.timeout)))


def workers(cfg: RunConfig) -> int:
    return cfg.concurrency or cap(cfg)


def fan_out(
    cfg: RunConfig,
    seams: Seams,
    todo: list[Key],
    *,
    caller: CamsClient,
    recorder: Ledger,
    log: Log,
    slots: Slots | None = None,
) -> FanOut:
    """The fan-out over ``todo``, with its throttle and concurrency gate."""
    throttle = Throttle(cfg.rate)
    progress = Progress(total=len(todo), slot_s=1.0 / throttle.max_pace)
    # Until the first answer the latency is unknown: start as if it were the timeout
    # (the pace alone spaces the starts), then learn it from the answers.
    gate = ConcurrencyGate(
        pace=lambda: throttle.pace,
        fixed=cfg.concurrency,
        cap=cap(cfg),
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
        workers=workers(cfg),
        single_space=not cfg.cust_space_column,
        progress=progress,
        rand=seams.rand,
        sleep=seams.sleep,
        clock=seams.clock,
        on_progress=seams.on_progress,
        slots=slots,
    )


async def call(
    fan: FanOut, seams: Seams, log: Log, interrupts: Interrupts
) -> tuple[FanOutResult, bool]:
    """Run the fan-out with signals stopping it and a progress log line every so often."""
    signalled: list[bool] = []

    def on_signal() -> None:
        signalled.append(True)
        fan.stop.set()

    if seams.on_progress is not None:
        seams.on_progress(fan.progress)  # show the total before the first answer
    ticking = asyncio.ensure_future(ticker(log, fan.progress, seams.progress_every_s))
    try:
        with interrupts.calling(asyncio.get_running_loop(), on_signal):
            result = await fan.run()
    finally:
        ticking.cancel()
    return result, bool(signalled)


def fatal(err: CallError, *, kept: bool = True) -> FatalApiError:
    """The one line of a fatal account error; ``kept``: the run has a cache."""
    hint = _FIX_HINTS.get(err.code, "fix the account or credentials")
    what = (
        "Nothing was written; answers so far are kept in the cache."
        if kept
        else "Nothing was written (with --no-cache nothing is kept)."
    )
    return FatalApiError(
        f"aborted: the API answered {err.code} ({err.message}); {hint}. {what}",
        code=err.code,
        request_id=err.request_id,
    )


def unreachable(endpoint: str, err: CallError, attempts: int) -> FatalApiError:
    """SPEC.md "When nothing gets through": the run stops as for a fatal error."""
    return FatalApiError(
        f"aborted: {endpoint} is unreachable: the first {attempts} attempts all failed "
        f"({err.code}: {err.message}); check the endpoint and the network. "
        "Nothing was written; answers so far are kept in the cache.",
        code=err.code,
        request_id=err.request_id,
    )


async def ticker(log: Log, progress: Progress, every_s: float = 30.0) -> None:
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
            failed_attempts=progress.failed_attempts,
        )


async def connection(cfg: RunConfig, seams: Seams) -> tuple[str, CredentialSource, Any]:
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
