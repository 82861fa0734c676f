"""The fan-out: call every key until it succeeds, fails finally, or the run stops.

One operation in named steps, its state in attributes (httpcore's
``AsyncPoolRequest`` is the model): a worker *takes a key*, *waits for a slot*
(a place in flight, then the throttle's release), makes *one attempt* through a
``Caller``, and goes *on the answer* or *on the failure*; a failure the policy
will not retry is *given up*. What a failure means (retry, report, stop the run,
stop calling one CustSpaceId, remember it or not) is ``retry.RetryPolicy``'s
verdict, never decided here.

The ``Caller`` protocol is the seam where the network begins: the run passes a
``client.CamsClient``; tests pass a fake that answers from a table in
microseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from enrich.errors import CallError, EnrichError
from enrich.limiter import ConcurrencyGate, Throttle
from enrich.logs import Log, mask_phone
from enrich.retry import RetryPolicy, Verdict
from enrich.types import Answer, Key, KeyOutcome, Progress

__all__ = ["Caller", "FanOut", "FanOutResult", "Recorder", "Slots"]

#: In-flight requests get this long to finish once the run stops.
STOP_GRACE_S = 1.5


class Caller(Protocol):
    """One API call: an ``Answer``, or a ``CallError`` raised."""

    async def query(self, space: str, number: str, *, attempt: int) -> Answer: ...


class Slots(Protocol):
    """A shared budget's slots (``quota.Member``): one per request, retries included."""

    async def acquire(self) -> float: ...

    def unused(self) -> None: ...


class Recorder(Protocol):
    """Where answers are kept as they arrive (``cache.Ledger``)."""

    def put_answer(self, key: Key, answer: Answer) -> None: ...

    def put_error(
        self,
        key: Key,
        *,
        code: str,
        message: str,
        http_status: int | None,
        request_id: str | None,
        fetched_at: float,
    ) -> None: ...


@dataclass
class FanOutResult:
    """Outcomes by key (keys left unanswered by a stop or a fatal error are absent)."""

    outcomes: dict[Key, KeyOutcome] = field(default_factory=dict)
    fatal: CallError | None = None
    #: the service looks unreachable: every attempt so far failed on the client side
    unreachable: CallError | None = None
    #: a failure of the run itself (the quota store or the credentials lost): stop, raise it
    failure: EnrichError | None = None


class FanOut:
    """Calls ``keys`` with ``workers`` concurrent workers through one throttle and gate."""

    def __init__(
        self,
        keys: list[Key],
        *,
        caller: Caller,
        throttle: Throttle,
        gate: ConcurrencyGate,
        policy: RetryPolicy,
        recorder: Recorder,
        log: Log,
        workers: int,
        single_space: bool,
        progress: Progress | None = None,
        stop: asyncio.Event | None = None,
        rand: Callable[[], float] = random.random,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.time,
        on_progress: Callable[[Progress], None] | None = None,
        slots: Slots | None = None,
    ) -> None:
        self.keys = keys
        self.slots = slots
        self.quota_wait_s = 0.0
        self.answered = 0  # attempts the service answered (anything but a client-side failure)
        self.client_failures = 0
        self.caller = caller
        self.throttle = throttle
        self.gate = gate
        self.policy = policy
        self.recorder = recorder
        self.log = log
        self.workers = max(1, min(workers, len(keys)))
        self.single_space = single_space
        self.progress = progress if progress is not None else Progress(total=len(keys))
        self.stop = stop if stop is not None else asyncio.Event()
        self.rand = rand
        self.sleep = sleep
        self.clock = clock
        self.on_progress = on_progress
        self.result = FanOutResult()
        #: CustSpaceIds the service rejected, with the error that said so
        self.dead_spaces: dict[str, CallError] = {}
        self._queue: Iterator[Key] = iter(keys)

    @property
    def stopping(self) -> bool:
        """The run is stopping (a signal, or a fatal error): no new request leaves."""
        return (
            self.stop.is_set()
            or self.result.fatal is not None
            or self.result.failure is not None
            or self.result.unreachable is not None
        )

    async def run(self) -> FanOutResult:
        """Run the workers until every key is done or the run stops (then a short grace)."""
        tasks = [asyncio.ensure_future(self._worker()) for _ in range(self.workers)]
        all_done: asyncio.Future[Any] = asyncio.gather(*tasks)
        stopper: asyncio.Future[Any] = asyncio.ensure_future(self.stop.wait())
        try:
            await asyncio.wait({all_done, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if not all_done.done():
                # stopping: in-flight requests get a short grace, then are abandoned
                await asyncio.wait({all_done}, timeout=STOP_GRACE_S)
        finally:
            stopper.cancel()
            for t in tasks:
                t.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await all_done
        return self.result

    async def _worker(self) -> None:
        while (key := self._take_key()) is not None:
            await self._one_key(key)

    def _take_key(self) -> Key | None:
        """The next key to call, or None when there is none or the run is stopping."""
        if self.stopping:
            return None
        return next(self._queue, None)

    async def _one_key(self, key: Key) -> None:
        space = key[0]
        attempts = 0
        while not self.stopping:
            if space in self.dead_spaces:
                self._finish(key, KeyOutcome.rejected(self.dead_spaces[space], attempts=attempts))
                return
            got = await self._attempt_in_slot(key, attempts + 1)
            if got is None:  # no request left: the run is stopping, or the space was rejected
                continue
            attempts += 1
            if isinstance(got, Answer):
                self._on_answer(key, got, attempts)
                return
            delay = self._on_failure(key, got, attempts)
            if delay is None:
                return
            await self._wait_or_stop(delay)

    async def _attempt_in_slot(self, key: Key, attempt: int) -> Answer | CallError | None:
        """Wait for a slot, then make one attempt; None when the slot went unused."""
        await self.gate.acquire()
        try:
            if not await self._wait_for_slot(key[0]):
                return None
            return await self._attempt(key, attempt)
        except EnrichError as exc:  # the run cannot go on: stop it, the runner raises this
            if self.result.failure is None:
                self.result.failure = exc
            self.stop.set()
            return None
        finally:
            await self.gate.release()

    async def _wait_for_slot(self, space: str) -> bool:
        """The throttle's release, then the shared budget's slot; False (slots given
        back) when the request must not leave."""
        await self.throttle.acquire()
        if self.slots is not None and not self._gone(space):
            try:
                # not ``self.quota_wait_s += await …``: that reads the sum before the
                # await and loses the waits of the requests that waited meanwhile
                waited = await self.slots.acquire()
            except BaseException:
                self.throttle.unused()
                raise
            self.quota_wait_s += waited
            if self._gone(space):
                self.slots.unused()
        if self._gone(space):
            # stopped, or rejected while this one waited for its slot
            self.throttle.unused()
            return False
        return True

    def _gone(self, space: str) -> bool:
        return self.stopping or space in self.dead_spaces

    async def take_extra_slot(self) -> None:
        """A request the caller sends on its own (a resend after expired credentials):
        paced and counted like any other."""
        await self.throttle.acquire()
        if self.slots is not None:
            waited = await self.slots.acquire()
            self.quota_wait_s += waited
        self.throttle.on_success()
        self.progress.api_calls += 1

    async def _attempt(self, key: Key, attempt: int) -> Answer | CallError:
        """One request, counted and timed."""
        progress = self.progress
        progress.api_calls += 1
        if attempt > 1:
            progress.retries += 1
        loop = asyncio.get_running_loop()
        started = loop.time()
        if progress.first_call is None:
            progress.first_call = started
        progress.last_call = started
        got: Answer | CallError
        try:
            got = await self.caller.query(key[0], key[1], attempt=attempt)
        except CallError as exc:
            got = exc
        ended = loop.time()
        progress.last_answer = ended
        self.gate.observe(ended - started)
        return got

    def _on_answer(self, key: Key, answer: Answer, attempts: int) -> None:
        self.answered += 1
        self.throttle.on_success()
        self.recorder.put_answer(key, answer)
        self._finish(key, KeyOutcome.answered(answer, attempts=attempts))

    def _on_failure(self, key: Key, err: CallError, attempts: int) -> float | None:
        """Act on the policy's verdict; the delay before the next try, or None when done."""
        self.progress.failed_attempts += 1
        verdict = self.policy.verdict(err, attempts, single_space=self.single_space)
        if self._nothing_gets_through(err):
            return None
        if verdict.throttle:
            self.progress.throttled += 1
            self.throttle.on_throttle()
        else:
            self.throttle.on_success()
        if verdict.decision == "fatal":
            if self.result.fatal is None:
                self.result.fatal = err
            self.stop.set()
            return None
        if verdict.decision == "fatal_space":
            self._reject_space(key[0], err)
        if verdict.decision in ("final", "fatal_space"):
            self._give_up(key, err, attempts, answered_at=self._answered_at(key, err, verdict))
            return None
        return self._retry_delay(key, err, attempts)

    def _nothing_gets_through(self, err: CallError) -> bool:
        """After the policy's count of client-side failures with no answer: stop."""
        if not self.policy.unreachable_sign(err):
            self.answered += 1
            return False
        self.client_failures += 1
        if self.answered or self.client_failures < self.policy.unreachable_after:
            return False
        if self.result.unreachable is None:
            self.result.unreachable = err
        self.stop.set()
        return True

    def _answered_at(self, key: Key, err: CallError, verdict: Verdict) -> float | None:
        """When the service gave this error (kept in the ledger when worth it), else None."""
        if not verdict.answered:
            return None
        at = self.clock()
        if verdict.cache:
            self.recorder.put_error(
                key,
                code=err.code,
                message=err.message,
                http_status=err.http_status,
                request_id=err.request_id,
                fetched_at=at,
            )
        return at

    def _reject_space(self, space: str, err: CallError) -> None:
        if space in self.dead_spaces:  # once per space: several may have been in flight
            return
        self.dead_spaces[space] = err
        self.log.warning(
            "space_rejected",
            f"CustSpaceId {space!r} rejected ({err.code}); no further calls for its numbers",
            cust_space_id=space,
            code=err.code,
        )

    def _retry_delay(self, key: Key, err: CallError, attempts: int) -> float:
        delay = self.policy.backoff_s(attempts, err, rand=self.rand)
        number = mask_phone(key[1])
        self.log.info(
            "retry",
            f"retrying {number} after {err.code} (attempt {attempts}, in {delay:.1f}s)",
            phone=number,
            code=err.code,
            attempt=attempts,
            delay_s=round(delay, 3),
        )
        return delay

    def _give_up(
        self, key: Key, err: CallError, attempts: int, *, answered_at: float | None
    ) -> None:
        self._finish(key, KeyOutcome.failed(err, attempts=attempts, fetched_at=answered_at))

    def _finish(self, key: Key, outcome: KeyOutcome) -> None:
        self.result.outcomes[key] = outcome
        self.progress.count(outcome)
        if self.on_progress is not None:
            self.on_progress(self.progress)

    async def _wait_or_stop(self, delay: float) -> None:
        if delay <= 0:
            return
        sleeper: asyncio.Future[Any] = asyncio.ensure_future(self.sleep(delay))
        stopper: asyncio.Future[Any] = asyncio.ensure_future(self.stop.wait())
        try:
            await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            stopper.cancel()
