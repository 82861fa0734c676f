"""The run's throttle: one gate that every request passes, retries included.

``Throttle`` paces request *starts* with a ``LeakyBucket`` of its own that holds a
single request, so there is never a burst (a plain ``aiolimiter.AsyncLimiter(10, 1)``
lets 19 through in the first second). It paces a few percent under ``--rate``
because a request may reach the service some milliseconds after it was released.
The bucket also holds a few milliseconds of slack (``timer_slack_s``, never half a
request, and never enough to let one more start in a second than the pace alone
would): the event loop wakes a waiter a millisecond or two late, and a bucket of
exactly one request would drop that time on every release (10/s paced at about
9.6/s instead of 9.75/s). With the slack, no more than ``1 + pace × (1 s + slack)``
requests start in any second, still at most ``--rate``.

When the service throttles, the pace drops multiplicatively, then climbs back
additively — quickly while well below the ceiling, very slowly near it — so a run
that shares the account with another process settles just under its share and
probes above it only rarely. The ceiling is the rate the service *admitted* of ours
in the window that was full (our successful requests released in the second before
the throttled one), not the pace at the throttle: beside a process that takes half
the limit, a run at full pace is admitted 5/s, so it goes straight to just under 5/s
instead of halving and climbing back over its share a few times. With no success
in that window, the first throttle halves the pace and the ceiling is the old pace.

On the first decrease only, the next release waits until the service's window has
room again: of ours, the window may still hold those admitted in the last second
and those still in flight; nothing is sent until enough of them are a window old
to leave room for one more (at most a window, once per run).

A throttle answer to a request released less than a window after the last decrease
says nothing about the new pace (the service's sliding window still held requests
sent at the old one), so it does not lower the pace again. Answers are matched to
releases in order (first released, first answered), which is close enough at any
steady latency and needs no help from the caller.

``LeakyBucket`` is the few lines of bucket the Throttle needs, owned here rather than
reached into inside a third-party limiter: a level that leaks at the pace, a FIFO
queue of waiters on the event loop and one timer for the first of them; an unused
slot can be given back, the pace changed (the time elapsed so far accounted at the
old one) and releases held for a delay.

``ConcurrencyGate`` bounds requests in flight to what the pace needs at the
observed latency (rate × latency × headroom), within a cap.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

__all__ = ["AdaptParams", "ConcurrencyGate", "LeakyBucket", "Throttle"]

# A wait this short is no wait: a timer set for it could fire again and again on a
# clock that has not moved (float rounding), never letting the waiter go.
_EPSILON_S = 1e-9


class _Timer(Protocol):
    def cancel(self) -> None: ...


class LeakyBucket:
    """Requests leak out at ``rate``/s; one fits while the level is at most ``capacity - 1``.

    ``capacity`` is one request plus any slack (below 2: never two at once). Waiters
    are served first come, first served, by a single timer set for the first of them.
    ``clock`` (seconds) defaults to the running loop's time and ``call_later`` to the
    running loop's ``call_later``; tests pass their own.
    """

    def __init__(
        self,
        rate: float,
        capacity: float,
        *,
        clock: Callable[[], float] | None = None,
        call_later: Callable[[float, Callable[[], None]], _Timer] | None = None,
    ) -> None:
        self._check(rate, capacity)
        self._rate = rate
        self._capacity = capacity
        self._clock = clock
        self._call_later = call_later
        self._level = 0.0
        self._checked: float | None = None  # when the level was last leaked
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._timer: _Timer | None = None

    @staticmethod
    def _check(rate: float, capacity: float) -> None:
        if rate <= 0 or capacity < 1:
            raise ValueError("a bucket needs rate > 0 and capacity >= 1")

    @property
    def rate(self) -> float:
        """Requests per second leaking out."""
        return self._rate

    @property
    def capacity(self) -> float:
        """One request plus the slack."""
        return self._capacity

    @property
    def level(self) -> float:
        """The level now (leaked up to now)."""
        self._leak()
        return self._level

    @property
    def waiting(self) -> int:
        """Waiters not yet let go (cancelled ones may still count until the next wake)."""
        return len(self._waiters)

    def _now(self) -> float:
        return self._clock() if self._clock else asyncio.get_running_loop().time()

    def _leak(self) -> None:
        now = self._now()
        if self._checked is not None:
            self._level = max(0.0, self._level - (now - self._checked) * self._rate)
        self._checked = now

    def wait_s(self) -> float:
        """Seconds until one more request fits (0 when it fits now)."""
        self._leak()
        wait = (self._level + 1.0 - self._capacity) / self._rate
        return wait if wait > _EPSILON_S else 0.0

    async def acquire(self) -> None:
        """Wait for room for one request, then take it."""
        if not self._waiters and self.wait_s() == 0:
            self._level += 1.0
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._wake()
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.give_back()  # let go, then cancelled before it could use its slot
            else:
                self._wake()  # the next waiter may be first now
            raise

    def give_back(self) -> None:
        """A request taken was not sent: its room is free again."""
        self._leak()
        self._level = max(0.0, self._level - 1.0)
        self._wake()

    def set_rate(self, rate: float, capacity: float) -> None:
        """Leak at ``rate`` from now on; the time elapsed so far leaks at the old rate."""
        self._check(rate, capacity)
        self._leak()
        self._rate, self._capacity = rate, capacity
        self._wake()

    def hold(self, delay_s: float) -> None:
        """Let nothing go for ``delay_s`` from now (or longer, if already waiting longer)."""
        self._leak()
        self._level = max(self._level, self._capacity - 1.0 + delay_s * self._rate)
        self._wake()

    def _wake(self) -> None:
        """Let go every waiter that fits now, and set the timer for the next one."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        waiters = self._waiters
        while waiters:
            if waiters[0].done():  # cancelled while waiting
                waiters.popleft()
                continue
            wait = self.wait_s()
            if wait > 0:
                call_later = self._call_later or asyncio.get_running_loop().call_later
                self._timer = call_later(wait, self._wake)
                return
            self._level += 1.0
            waiters.popleft().set_result(None)


@dataclass(frozen=True, slots=True, kw_only=True)
class AdaptParams:
    """How the pace reacts to throttle answers (tuned with ``bench/``)."""

    headroom: float = 0.975  # pace at this share of --rate
    # a release may come this early, so a timer that fires late loses no slot
    timer_slack_s: float = 0.005
    first_decrease: float = 0.5  # multiply the pace by this on a throttle with no ceiling known
    decrease: float = 0.85  # … and by this on a later one
    min_share: float = 0.05  # never below this share of --rate
    window_s: float = 1.0  # the service's window: one decrease per window of releases at most
    fast_step: float = 0.10  # share of --rate regained per second, far below the last ceiling
    slow_step: float = 0.0005  # … and near it (within ``near``): +1 % of --rate per 20 s
    near: float = 0.92
    forget_s: float = 60.0  # a throttle this old no longer marks a ceiling
    admitted_ceiling: bool = True  # the ceiling is the rate admitted, not the pace throttled
    # after the first decrease (or every one, or none), hold until a slot frees
    drain: Literal["first", "all", "none"] = "first"


class Throttle:
    """Paces request starts: never more than the pace, no burst, adaptive on throttling."""

    def __init__(
        self,
        rate: float,
        *,
        params: AdaptParams | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.params = params or AdaptParams()
        self.rate = rate
        self.max_pace = rate * self.params.headroom
        self.pace = self.max_pace
        self._bucket = LeakyBucket(self.pace, self._capacity(self.pace))
        self._clock = clock
        self._last_decrease = -math.inf
        self._last_increase = -math.inf
        self._ceiling: float | None = None
        self._released: deque[float] = deque()  # release times of requests not yet answered
        self._admitted: deque[float] = deque()  # release times of recent successful requests
        self.throttle_events = 0

    def _now(self) -> float:
        return self._clock() if self._clock else asyncio.get_running_loop().time()

    async def acquire(self) -> None:
        """Wait for this request's slot; answer it with one ``on_success``/``on_throttle``."""
        await self._bucket.acquire()
        self._released.append(self._now())

    def unused(self) -> None:
        """The slot just acquired was not used (the request never left): give it back."""
        if self._released:
            self._released.pop()
        self._bucket.give_back()

    def _answered(self, now: float) -> float:
        """Release time of the request this answer is for (oldest unanswered first)."""
        return self._released.popleft() if self._released else now

    def _capacity(self, pace: float) -> float:
        """The bucket: one request, plus the timer slack at this pace.

        At most half a request (never two at once), and less than what separates
        ``1 + pace`` from the next whole request under ``--rate`` (at ``--rate 10.25``
        the pace is 9.99/s: a full 5 ms would let an 11th start within a second).
        """
        room = max(0.0, math.floor(self.rate) - pace) / 2
        return 1.0 + min(0.5, pace * self.params.timer_slack_s, room)

    def _set_pace(self, pace: float) -> None:
        self.pace = pace
        self._bucket.set_rate(pace, self._capacity(pace))

    def on_throttle(self) -> None:
        """A throttle answer: slow the whole run down (once per window)."""
        now = self._now()
        released = self._answered(now)
        p = self.params
        if released < self._last_decrease + p.window_s:
            return  # sent under (or right after) the old pace: already acted on
        if self._ceiling is not None and now - self._last_decrease > p.forget_s:
            self._ceiling = None
        first = self._ceiling is None
        factor = p.first_decrease if first else p.decrease
        self.throttle_events += 1
        pace = self.pace * factor
        # our requests the service admitted in the window that was full at this release
        mine = [t for t in self._admitted if released - p.window_s < t <= released]
        if p.admitted_ceiling and mine:
            self._ceiling = len(mine) / p.window_s
            pace = min(pace, self._ceiling * p.near)
        else:
            self._ceiling = self.pace
        self._last_decrease = now
        self._last_increase = now
        self._set_pace(max(self.max_pace * p.min_share, pace))
        if mine and (p.drain == "all" or (p.drain == "first" and first)):
            # The service's window holds what it admitted of ours (as many as ``mine``) and
            # may hold any request still in flight: send nothing before enough of those are
            # a window old to leave room for one more.
            recent = sorted(
                t for t in itertools.chain(self._admitted, self._released) if t > now - p.window_s
            )
            if len(recent) >= len(mine):
                self._hold(recent[len(recent) - len(mine)] + p.window_s - now)

    def _hold(self, delay: float) -> None:
        """Release nothing for ``delay`` seconds (at most a window), then go on at the pace."""
        if delay <= 0:
            return
        self._bucket.hold(min(delay, self.params.window_s))

    def on_success(self) -> None:
        """An answer that was not a throttle: climb back towards ``--rate``."""
        now = self._now()
        released = self._answered(now)
        admitted = self._admitted
        admitted.append(released)
        while admitted[0] < released - 2 * self.params.window_s:
            admitted.popleft()
        if self.pace >= self.max_pace:
            return
        p = self.params
        elapsed = now - self._last_increase
        if elapsed < 0.25:
            return
        self._last_increase = now
        if self._ceiling is not None and now - self._last_decrease > p.forget_s:
            self._ceiling = None
        near = self._ceiling is not None and self.pace >= self._ceiling * p.near
        step = (p.slow_step if near else p.fast_step) * self.max_pace * elapsed
        if self._ceiling is not None and not near:
            # climb fast, but stop at the edge of the slow zone
            target = min(self.pace + step, self._ceiling * p.near)
            target = max(target, self.pace)
        else:
            target = self.pace + step
        self._set_pace(min(self.max_pace, target))


class ConcurrencyGate:
    """Bounds requests in flight to pace × latency × headroom (or a fixed number)."""

    def __init__(
        self,
        *,
        pace: Callable[[], float],
        fixed: int | None = None,
        cap: int = 512,
        floor: int = 2,
        headroom: float = 1.5,
        initial_latency_s: float = 1.0,
    ) -> None:
        self._pace = pace
        self._fixed = fixed
        self._cap = cap
        self._floor = floor
        self._headroom = headroom
        self.latency_s = initial_latency_s
        self.in_flight = 0
        self.peak = 0
        self._cond = asyncio.Condition()

    @property
    def limit(self) -> int:
        """The current bound on requests in flight."""
        if self._fixed is not None:
            return self._fixed
        want = math.ceil(self._pace() * self.latency_s * self._headroom) + 1
        return max(self._floor, min(self._cap, want))

    def observe(self, latency_s: float) -> None:
        """Feed one observed latency (EWMA, reacting faster to slow-downs)."""
        alpha = 0.3 if latency_s > self.latency_s else 0.05
        self.latency_s += alpha * (latency_s - self.latency_s)

    async def acquire(self) -> None:
        """Wait for a place in flight."""
        async with self._cond:
            await self._cond.wait_for(lambda: self.in_flight < self.limit)
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)

    async def release(self) -> None:
        """Give the place back."""
        async with self._cond:
            self.in_flight -= 1
            self._cond.notify_all()
