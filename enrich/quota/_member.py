"""A run's membership of a budget: its slots, its heartbeat, and a store that goes away.

The requests of one run wait in :meth:`Member.acquire`. One of them at a time asks
the store (for as many slots as requests are waiting, which the store trims to a
short batch) and the others take the slots it got; the next ask waits until the
last slot held has come, so a run never holds more than one batch of the
budget's future. That keeps the budget's next free slot close to the present,
and a run that joins gets its first slot within one spacing.

A slot is granted ``lead_s`` ahead of the store's clock. A run whose requests
take slots faster than one a lead (measured over the last ``_DEMAND_S``) asks
for twice as many as they took in one lead, and asks for the next ones as soon as its
last held slot is within ``lead_s`` of now, before its requests come back for
them: otherwise every batch would begin ``lead_s`` after the last one ended, and a
fast run with few requests waiting could not reach a high ``--rate``. It asks for
no more than twice what its requests have been taking, so the store's view of it
stays close to true, and a slot whose moment is more than ``lead_s`` past is dropped, never sent
late (sent late, it could bunch with the slots after it). A run at the account's
10/s never asks ahead.

A lost store is retried every ``retry_s``; no slot is granted meanwhile, and after
``lost_timeout_s`` without the store :meth:`Member.acquire` raises
:class:`QuotaLostError`. The ``on_event`` hook hears when it was lost, every
10 s while it is still lost, and when it came back.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import os
import socket
import uuid
from collections import deque
from collections.abc import Callable
from types import TracebackType

from enrich.errors import InputError
from enrich.quota._core import QuotaParams
from enrich.quota._types import (
    Backend,
    BudgetStatus,
    EventKind,
    MemberInfo,
    QuotaEvent,
    QuotaLostError,
    StoreUnavailable,
)

__all__ = ["EventHook", "Member", "Quota"]

EventHook = Callable[[QuotaEvent], None]
_WAITING_EVERY_S = 10.0
#: A fast run's demand is the slots its requests took over this many seconds.
_DEMAND_S = 0.1
#: Leaving and closing wait at most this long each (a run's exit is never held up).
_EXIT_S = 1.0


class Quota:
    """A quota store that several runs share; make one with :func:`enrich.quota.open_quota`.

    ``async with quota:`` closes it at the end (or call :meth:`aclose`).
    """

    def __init__(self, backend: Backend, *, params: QuotaParams,
                 on_event: EventHook | None = None) -> None:
        self._backend = backend
        self._params = params
        self._on_event = on_event

    @property
    def params(self) -> QuotaParams:
        return self._params

    @property
    def backend(self) -> Backend:
        return self._backend

    def describe(self) -> str:
        """The store, for messages and the summary: a path, or a URL without its password."""
        return self._backend.describe()

    def join(self, budget: str, *, rate: float, pid: int | None = None,
             host: str | None = None, input: str = "") -> Member:
        """A membership of ``budget`` at ``rate`` per second; use it as ``async with``.

        Entering registers it (the first contact with the store: an unreachable store
        is an :class:`~enrich.errors.InputError`) and starts its heartbeat; leaving
        removes it, so the others take its share at once.
        """
        if not rate > 0 or rate == float("inf"):
            raise ValueError(f"rate must be a positive number, not {rate!r}")
        pid = os.getpid() if pid is None else pid
        host = socket.gethostname() if host is None else host
        info = MemberInfo(id=f"{host}:{pid}:{uuid.uuid4().hex[:12]}", budget=budget,
                          rate=float(rate), pid=pid, host=host, input=input, joined=0.0)
        return Member(self._backend, info, params=self._params, on_event=self._on_event)

    async def status(self) -> list[BudgetStatus]:
        """Every budget with live runs, by name, with its runs (oldest first).

        A store that does not exist yet has none; an unreachable one is an
        :class:`~enrich.errors.InputError`.
        """
        try:
            return await self._backend.status()
        except StoreUnavailable as err:
            raise InputError(f"{_failed(self._backend)}: {err}") from None

    async def aclose(self) -> None:
        """Close the store's connection; bounded, so that a run never waits at its exit
        for a server that stopped answering (it holds nothing there that outlives
        ``ttl_s``)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_EXIT_S):
                await self._backend.aclose()

    async def __aenter__(self) -> Quota:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class Member:
    """One run on one budget: every request of the run takes a slot with :meth:`acquire`."""

    def __init__(self, backend: Backend, info: MemberInfo, *, params: QuotaParams,
                 on_event: EventHook | None) -> None:
        self._backend = backend
        self._info = info
        self._params = params
        self._on_event = on_event
        self._slots: deque[float] = deque()  # granted deadlines (loop time), in order
        self._last_deadline = 0.0
        self._waiting = 0
        self._fetch = asyncio.Lock()
        self._beat: asyncio.Task[None] | None = None
        self._leaving = False
        self._ahead: asyncio.Task[None] | None = None
        # slots of one lead at this --rate: more than 1 only above --rate 1 / lead_s
        self._deep = max(1, math.ceil(params.lead_s * info.rate))
        self._taken: deque[float] = deque()  # when the last _DEMAND_S's slots were taken
        self._outage_since: float | None = None
        self._outage_reason = ""
        self._outage_told = 0.0
        #: seconds the run's requests spent in :meth:`acquire`, added up
        self.waited_s = 0.0
        #: slots taken, and of those given back unused
        self.granted = 0
        self.unused_slots = 0
        #: slots the store granted this run (taken or not)
        self.received = 0

    @property
    def id(self) -> str:
        return self._info.id

    @property
    def budget(self) -> str:
        return self._info.budget

    @property
    def rate(self) -> float:
        return self._info.rate

    async def __aenter__(self) -> Member:
        try:
            joined = await self._backend.register(self._info)
        except StoreUnavailable as err:
            raise InputError(f"{_failed(self._backend)}: {err}; "
                             "check --quota, or run with --quota off") from None
        self._info = dataclasses.replace(self._info, joined=joined)
        self._beat = asyncio.create_task(self._heartbeat(), name=f"quota-heartbeat-{self.id}")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        self._leaving = True  # the heartbeat stops even if a client swallows its cancel
        beat, self._beat = self._beat, None
        for task in (self._ahead, beat):
            if task is None:
                continue
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError, QuotaLostError):
                async with asyncio.timeout(_EXIT_S):
                    await task
        self._ahead = None
        # best effort and short: a member that cannot leave expires after ttl_s anyway
        with contextlib.suppress(StoreUnavailable, TimeoutError):
            async with asyncio.timeout(_EXIT_S):
                await self._backend.leave(self._info)

    async def acquire(self) -> float:
        """Wait for this run's next slot of the budget; return the seconds waited.

        Every request takes one, retries included, right before it is sent. Raises
        :class:`QuotaLostError` once the store has been unreachable for
        ``lost_timeout_s``; no slot is ever granted without it.
        """
        if self._beat is None:
            raise RuntimeError("a Member takes slots inside `async with quota.join(...)` only")
        loop = asyncio.get_running_loop()
        start = loop.time()
        self._waiting += 1
        try:
            deadline = await self._next_deadline(loop)
        finally:
            self._waiting -= 1
        if self._deep > 1:
            self._taken.append(start)
            while self._taken[0] < start - _DEMAND_S:
                self._taken.popleft()
            self._ask_ahead(loop)
        try:
            delay = deadline - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
        except asyncio.CancelledError:
            if deadline > loop.time():  # still ahead: the next request of this run takes it
                self._slots.appendleft(deadline)
            raise
        waited = loop.time() - start
        self.waited_s += waited
        self.granted += 1
        return waited

    def unused(self) -> None:
        """A slot was taken but no request was sent with it.

        Only counted: its moment has passed, and granting it again later could put
        one more request than the budget into some sliding second.
        """
        self.unused_slots += 1

    def _demand(self) -> int:
        """Slots to ask for: twice what this run's requests took in one lead over the
        last ``_DEMAND_S`` (room to speed up), at least 1, at most one lead's slots at
        its ``--rate``."""
        if self._deep == 1:
            return 1
        per_s = len(self._taken) / _DEMAND_S
        return max(1, min(self._deep, math.ceil(2 * per_s * self._params.lead_s)))

    async def _next_deadline(self, loop: asyncio.AbstractEventLoop) -> float:
        late = loop.time() - self._params.lead_s
        while self._slots and self._slots[0] < late:  # its moment is past: never sent late
            self._slots.popleft()
            self.unused_slots += 1
        while not self._slots:
            async with self._fetch:
                if self._slots:
                    break
                delay = self._ask_in(loop)
                if delay > 0:
                    await asyncio.sleep(delay)
                deadlines = await self._take(max(self._demand(), self._waiting))
                self._keep(deadlines)
        return self._slots.popleft()

    def _ask_in(self, loop: asyncio.AbstractEventLoop) -> float:
        """Seconds until the next batch is asked for: at most one batch of the budget's
        future at a time, asked for as far ahead of its last slot as a slot is granted
        ahead of the store's clock (now or past: ask now)."""
        return self._last_deadline - self._params.lead_s - loop.time()

    def _keep(self, deadlines: list[float]) -> None:
        self._slots.extend(deadlines)
        self._last_deadline = deadlines[-1]
        self.received += len(deadlines)

    def _ask_ahead(self, loop: asyncio.AbstractEventLoop) -> None:
        """A fast run: once its last held slot is within ``lead_s``, the next batch is
        asked for now, while its requests wait for the slots they hold."""
        if self._fetch.locked() or self._leaving:
            return
        if self._ahead is not None and not self._ahead.done():
            return
        want = self._demand()
        if want == 1 or len(self._slots) >= want:
            return  # a run that takes a slot a lead or less: asked for when needed
        if self._ask_in(loop) > 0:
            return
        self._ahead = asyncio.create_task(self._take_ahead(), name=f"quota-ahead-{self.id}")

    async def _take_ahead(self) -> None:
        async with self._fetch:
            if self._ask_in(asyncio.get_running_loop()) > 0:
                return  # a request that found no slot asked first
            try:
                deadlines = await self._take(max(self._demand(), self._waiting))
            except Exception:
                return  # the next request that finds no slot asks, and raises it
            self._keep(deadlines)

    async def _take(self, want: int) -> list[float]:
        loop = asyncio.get_running_loop()
        while True:
            try:
                deadlines = await self._backend.take(self._info, want)
            except StoreUnavailable as err:
                self._lost(err, loop.time())
                assert self._outage_since is not None
                outage = loop.time() - self._outage_since
                if outage >= self._params.lost_timeout_s:
                    raise QuotaLostError(
                        f"{_failed(self._backend)} for {outage:.0f} s ({err}); no request "
                        "is sent without it: check the store, or run with --quota off"
                    ) from None
                await asyncio.sleep(min(self._params.retry_s,
                                        self._params.lost_timeout_s - outage))
                continue
            self._restored(loop.time())
            return deadlines

    async def _heartbeat(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._leaving:
            await asyncio.sleep(self._params.heartbeat_s)
            try:
                await self._backend.heartbeat(self._info)
            except StoreUnavailable as err:
                self._lost(err, loop.time())
            else:
                self._restored(loop.time())

    def _lost(self, err: StoreUnavailable, now: float) -> None:
        self._outage_reason = str(err)
        if self._outage_since is None:
            self._outage_since = self._outage_told = now
            self._tell("lost", f"{_failed(self._backend)} ({err}); requests wait for it, "
                       f"up to {self._params.lost_timeout_s:.0f} s", 0.0)
        elif now - self._outage_told >= _WAITING_EVERY_S:
            self._outage_told = now
            outage = now - self._outage_since
            self._tell("waiting", f"{_failed(self._backend)} still, after {outage:.0f} s "
                       f"({err})", outage)

    def _restored(self, now: float) -> None:
        if self._outage_since is not None:
            outage = now - self._outage_since
            self._outage_since = None
            self._tell("restored", f"quota store {self._backend.describe()} back after "
                       f"{outage:.1f} s", outage)

    def _tell(self, kind: EventKind, message: str, outage: float) -> None:
        if self._on_event is not None:
            self._on_event(QuotaEvent(kind=kind, store=self._backend.describe(),
                                      message=message, outage_s=outage))


def _failed(backend: Backend) -> str:
    """``quota store redis://h:6379/0 unreachable`` or ``quota store /x.sqlite3 unusable``."""
    return f"quota store {backend.describe()} {'unreachable' if backend.remote else 'unusable'}"
