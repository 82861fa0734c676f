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

When the service throttles, the Throttle first asks what kind of throttle it is,
from the answers to our requests released in the second before the throttled one:

- *Noise, or the very edge of the limit*: nearly all of them were admitted (at least
  ``noise_share``), so the service's window was not full of ours. The pace is only
  trimmed by 10 % and climbs straight back. What was admitted is a floor of what the
  service takes, not a ceiling: taking it for one (as this module once did) ratcheted
  the pace down under random throttles, to 3.5/s at ``--rate 10`` with 3 % of them.
  In the run's first second (the window is not yet full of ours) a throttle counts as
  noise when no other was refused before it, or when some were admitted since the
  first refused: a full window refuses everything sent into it.
- *A real limit*: the pace drops to just under (``near``) the rate the service
  *admitted* of ours in that window before it first said no: beside a process that
  takes half the limit, a run at full pace is admitted 5/s, so it goes straight to
  just under 5/s. That rate is the *ceiling*. With no success in that window, the
  first throttle halves the pace and the ceiling is the old pace. Under a ceiling, a
  throttle is a real limit too when a whole request a second fewer than the edge
  sends was admitted (the other process takes more now); one refused among what the
  edge sends trims the pace, and the ceiling only if it happens again within
  ``trim_again_s`` (a single one is the window's jitter).

Under a ceiling the pace climbs fast (×``growth`` per clean second) up to its edge
and stays there. Once the ceiling has been quiet for ``quiet_s`` it is *probed*: one
window of requests is sent a little above it (``probe_over``/``probe_step``), then the
pace pauses long enough to send no more over the edge than the probe did, and waits
at the edge for the answers. If the service refused one of them, or admitted no more
than the ceiling (beside another process it may refuse *that* process's requests
instead of ours), the ceiling holds and the next probe waits twice as long (up to
``quiet_max_s``). If more got through, the next probe follows at once, higher
(×``probe_climb``; there, one refused among many admitted is taken for noise), until
one reaches ``--rate``: the ceiling is gone, and a run left alone is at full pace a
few seconds after the other process stopped instead of minutes. A real limit within
``relearn_s`` of that, at no more than the first probe's pace, says the probes were
let in at another process's expense: the old ceiling comes back and the wait keeps
growing.

On the first decrease only, the next release waits until the service's window has
room again: of ours, the window may still hold those admitted in the last second
and those still in flight; nothing is sent until enough of them are a window old
to leave room for one more (at most a window).

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
    near: float = 0.92  # under a known ceiling, pace at most this share of it
    growth: float = 1.5  # with no ceiling, the pace grows by this factor per clean second …
    fast_step: float = 0.10  # … and by at least this share of --rate per second
    quiet_s: float = 2.5  # a ceiling this long without a throttle is probed …
    quiet_growth: float = 2.0  # … the wait growing by this factor after each probe refused …
    quiet_max_s: float = 6.0  # … up to this (issue 12: back to its share within seconds)
    # a probe sends one window above the ceiling: this share of it, or this many more a
    # second; each probe that gets through is followed at once by one this much higher
    probe_over: float = 1.25
    probe_step: float = 1.5
    probe_climb: float = 1.5
    # … and got through if the service admitted this share of what it sent over the ceiling
    probe_gain: float = 0.67
    # a throttle with at least this share of our answered requests admitted in its window
    # is noise, or the very edge of the limit: it only trims the pace (and a ceiling)
    noise_share: float = 0.75
    noise_sample: int = 3  # … judged over at least this many answers
    probe_noise_share: float = 0.9  # … and during the probes after one got through
    trim: float = 0.9
    trim_ceiling: float = 0.95  # … and a ceiling, when trimmed at its edge twice in …
    trim_again_s: float = 5.0
    # a real limit this soon after the probes got through to --rate says they were wrong
    # (what was admitted above the ceiling was taken from another process): it stands
    relearn_s: float = 10.0
    admitted_ceiling: bool = True  # the ceiling is the rate admitted, not the pace throttled
    # after the first decrease (or every one, or none), hold until a slot frees
    drain: Literal["first", "all", "none"] = "first"


@dataclass(slots=True)
class _Probe:
    """One window sent above the ceiling; ``base`` is the ceiling the probes started from."""

    start: float
    step: int
    base: float
    out: bool = False  # the window is over


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
        self._last_decrease = -math.inf  # a real limit: the pace cut to under a ceiling
        self._last_trim = -math.inf  # a noise-like throttle
        self._last_growth = -math.inf
        self._ceiling: float | None = None
        self._quiet_s = self.params.quiet_s
        self._probe: _Probe | None = None
        self._passed: tuple[float, float] | None = None  # (when, base) of probes through to --rate
        self._released: deque[float] = deque()  # release times of requests not yet answered
        self._admitted: deque[float] = deque()  # release times of recent successful requests
        self._refused: deque[float] = deque()  # … and of recent throttled ones
        self._first: float | None = None  # the run's first release
        self.throttle_events = 0

    def _now(self) -> float:
        return self._clock() if self._clock else asyncio.get_running_loop().time()

    async def acquire(self) -> None:
        """Wait for this request's slot; answer it with one ``on_success``/``on_throttle``."""
        await self._bucket.acquire()
        now = self._now()
        self._released.append(now)
        if self._first is None:
            self._first = now
        probe = self._probe
        if probe is not None and not probe.out and now >= probe.start + self.params.window_s:
            self._probe_out()

    def _probe_out(self) -> None:
        """The probe window is out: back under the ceiling to await its answers.

        First a pause as long as the edge pace takes to send what the probe sent over
        it, so that the service's window does not stay full of the probe's requests.
        """
        probe = self._probe
        assert probe is not None
        probe.out = True
        top, edge = self.pace, min(self.pace, self._edge())
        self._set_pace(edge)
        self._hold((top - edge) * self.params.window_s / edge)

    def unused(self) -> None:
        """The slot just acquired was not used (the request never left): give it back."""
        if self._released:
            self._released.pop()
        self._bucket.give_back()

    def _answered(self, now: float) -> float:
        """Release time of the request this answer is for (oldest unanswered first)."""
        return self._released.popleft() if self._released else now

    def _in_window(self, times: deque[float], released: float) -> int:
        """How many of ``times`` fall in the window that ends at ``released``."""
        start = released - self.params.window_s
        return sum(1 for t in times if start < t <= released)

    def _remember(self, times: deque[float], released: float) -> None:
        times.append(released)
        while times[0] < released - 2 * self.params.window_s:
            times.popleft()

    def _capacity(self, pace: float) -> float:
        """The bucket: one request, plus the timer slack at this pace.

        At most half a request (never two at once), and less than what separates
        ``1 + pace`` from the next whole request under ``--rate`` (at ``--rate 10.25``
        the pace is 9.99/s: a full 5 ms would let an 11th start within a second).
        """
        room = max(0.0, math.floor(self.rate) - pace) / 2
        return 1.0 + min(0.5, pace * self.params.timer_slack_s, room)

    def _set_pace(self, pace: float) -> None:
        self.pace = max(self.max_pace * self.params.min_share, min(self.max_pace, pace))
        self._bucket.set_rate(self.pace, self._capacity(self.pace))

    def _edge(self) -> float:
        """The pace just under the known ceiling (``max_pace`` with none known)."""
        if self._ceiling is None:
            return self.max_pace
        return self._ceiling * self.params.near

    def _top(self, ceiling: float, step: int) -> float:
        """The pace of probe ``step`` above ``ceiling``."""
        p = self.params
        if step == 0:
            top = max(ceiling * p.probe_over, ceiling + p.probe_step / p.window_s)
        else:
            top = ceiling * p.probe_climb
        return min(self.max_pace, top)

    # -- throttles -------------------------------------------------------------------

    def on_throttle(self) -> None:
        """A throttle answer: slow the whole run down (once per window)."""
        now = self._now()
        released = self._answered(now)
        p = self.params
        self._remember(self._refused, released)
        if released < self._last_decrease + p.window_s:
            return  # sent under (or right after) the old pace: already acted on
        # what the service admitted of ours before it first said no in this window
        start = released - p.window_s
        anchor = min((t for t in self._refused if t > start), default=released)
        mine = self._in_window(self._admitted, anchor)
        probe = self._probe
        if probe is not None and released >= probe.start:
            if probe.step == 0 or not self._noise_like(released, p.probe_noise_share):
                self._probe_refused(now)
            # (past a probe that got through, one refused among many admitted is noise)
        elif (
            self._relearn(now, mine) is None
            and not self._share_dropped(mine)
            and self._noise_like(released)
        ):
            self._trim(now, released, mine)
        else:
            self._decrease(now, mine)

    def _share_dropped(self, mine: int) -> bool:
        """Under a ceiling, a whole request a second fewer admitted than its edge sends."""
        if self._ceiling is None:
            return False
        return mine <= (self._edge() - 1 / self.params.window_s) * self.params.window_s

    def _noise_like(self, released: float, share: float | None = None) -> bool:
        """Nearly all of ours answered in the window before this one were admitted.

        In the run's first window (not yet full of our requests), a throttle with no other
        refused before it, or with some admitted since the first one refused: beside
        another process, a run starting at full pace is admitted its share and then
        refused again and again.
        """
        p = self.params
        mine = self._in_window(self._admitted, released)
        refused = self._in_window(self._refused, released)
        if self._first is None or released < self._first + p.window_s:
            # a full window refuses everything after it fills; noise falls here and there
            first = min(t for t in self._refused if t > released - p.window_s)
            between = sum(1 for t in self._admitted if first < t < released)
            return mine > 0 and (refused <= 1 or between >= 2)
        answered = mine + refused
        return answered >= p.noise_sample and mine >= (share or p.noise_share) * answered

    def _trim(self, now: float, released: float, mine: int) -> None:
        """Noise, or the very edge of the limit: trim the pace a little, and climb back.

        What was admitted is only a floor of what the service takes, so it is no new
        ceiling (taking it for one ratcheted the pace down under random throttles). At
        the edge of a known ceiling the ceiling is trimmed too: it may be a little high.
        """
        p = self.params
        if released < self._last_trim + p.window_s:
            return
        again = now - self._last_trim < p.trim_again_s
        self.throttle_events += 1
        self._last_trim = now
        self._last_growth = now
        pace = self.pace * p.trim
        if again and self._ceiling is not None and self.pace >= 0.98 * self._edge():
            # refused at the edge again and again: the ceiling is a little high (whole
            # requests: one fewer admitted in a window can be the window's phase)
            self._ceiling = min(self._ceiling * p.trim_ceiling, (mine + 1) / p.window_s)
            pace = min(pace, self._edge())
        self._set_pace(pace)

    def _probe_refused(self, now: float) -> None:
        """The probe window was refused, or got no more through: the ceiling holds."""
        p = self.params
        probe = self._probe
        assert probe is not None
        self.throttle_events += 1
        if probe.step <= 1:
            # refused right after one probe got through: that one was most likely let in
            # at another process's expense, so the ceiling it seemed to lift still holds
            self._ceiling = probe.base
            self._quiet_s = min(self._quiet_s * p.quiet_growth, p.quiet_max_s)
        self._probe = None
        self._last_decrease = now
        self._last_growth = now
        self._set_pace(min(self.pace, self._edge()))

    def _relearn(self, now: float, mine: int) -> float | None:
        """The ceiling the last probes started from, if this limit says they were wrong."""
        if self._passed is None:
            return None
        when, base = self._passed
        top = self._top(base, 0)
        # (a first probe that already went to --rate cannot tell this from noise)
        window = self.params.window_s
        if now - when < self.params.relearn_s and mine <= top * window and top < self.max_pace:
            return min(base, mine / window) if mine else base
        return None

    def _decrease(self, now: float, mine: int) -> None:
        """A real limit: cut the pace to under the rate the service admitted."""
        p = self.params
        first = self._ceiling is None
        # halve the pace on a first throttle that says nothing of the rate admitted
        factor = p.first_decrease if first and not mine else p.decrease
        self.throttle_events += 1
        pace = self.pace * factor
        relearnt = self._relearn(now, mine)
        if self._passed is not None:
            self._passed = None
            self._quiet_s = (
                min(self._quiet_s * p.quiet_growth, p.quiet_max_s) if relearnt else p.quiet_s
            )
        if relearnt is not None:
            first = False
            self._ceiling = relearnt
            pace = relearnt * p.near
        elif p.admitted_ceiling and mine:
            self._ceiling = mine / p.window_s
            pace = min(pace, self._ceiling * p.near)
        else:
            self._ceiling = self.pace
        self._probe = None
        self._last_decrease = now
        self._last_growth = now
        self._set_pace(pace)
        if mine and (p.drain == "all" or (p.drain == "first" and first)):
            # The service's window holds what it admitted of ours (as many as ``mine``) and
            # may hold any request still in flight: send nothing before enough of those are
            # a window old to leave room for one more.
            recent = sorted(
                t for t in itertools.chain(self._admitted, self._released) if t > now - p.window_s
            )
            if len(recent) >= mine:
                self._hold(recent[len(recent) - mine] + p.window_s - now)

    def _hold(self, delay: float) -> None:
        """Release nothing for ``delay`` seconds (at most a window), then go on at the pace."""
        if delay > 0:
            self._bucket.hold(min(delay, self.params.window_s))

    # -- successes -------------------------------------------------------------------

    def on_success(self) -> None:
        """An answer that was not a throttle: climb back towards ``--rate``."""
        now = self._now()
        released = self._answered(now)
        self._remember(self._admitted, released)
        probe = self._probe
        if probe is not None and released >= probe.start + self.params.window_s:
            self._probe_answered(now, released, probe)
        elif probe is None and self.pace < self.max_pace:
            self._climb(now)

    def _probe_answered(self, now: float, released: float, probe: _Probe) -> None:
        """The probe window answered, none refused: did more than the ceiling get through?

        Beside another process the service may refuse *its* requests instead of ours, so
        "none refused" alone does not say the ceiling has gone; more of ours admitted does.
        """
        p = self.params
        ceiling = self._ceiling
        assert ceiling is not None
        top = self._top(ceiling, probe.step)
        got = self._in_window(self._admitted, released) / p.window_s
        need = ceiling + p.probe_gain * (top - ceiling)
        if top >= self.max_pace:
            need = min(need, 0.9 * top)  # near --rate, whole requests cannot tell more
        if got < need:
            self._probe_refused(now)
        elif top >= self.max_pace:
            self._passed = (now, probe.base)
            self._ceiling = self._probe = None
            self._last_growth = now
            self._set_pace(top)
        else:
            self._ceiling = max(ceiling, got)
            self._probe = _Probe(now, probe.step + 1, probe.base)
            self._set_pace(self._top(self._ceiling, probe.step + 1))

    def _climb(self, now: float) -> None:
        """Multiplicative growth up to the ceiling's edge; a quiet ceiling is probed."""
        p = self.params
        elapsed = now - self._last_growth
        if elapsed < 0.25:
            return
        self._last_growth = now
        elapsed = min(elapsed, 1.0)  # no leap after a long silence
        step = max(self.pace * (p.growth**elapsed - 1), p.fast_step * self.max_pace * elapsed)
        target = self.pace + step
        ceiling = self._ceiling
        if ceiling is not None:
            edge = self._edge()
            if now - self._last_decrease >= self._quiet_s and self.pace >= edge:
                self._probe = _Probe(now, 0, ceiling)
                target = self._top(ceiling, 0)
            else:
                target = min(target, max(edge, self.pace))
        self._set_pace(target)


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
