"""The throttle: no burst, never over the rate in a sliding second, adaptive."""

from __future__ import annotations

import asyncio
import collections
import itertools
import random
import selectors

import pytest
from aiolimiter import AsyncLimiter

from enrich.emulator.stats import max_in_window
from enrich.limiter import AdaptParams, ConcurrencyGate, LeakyBucket, Throttle


async def _starts(acquire, n: int) -> list[float]:
    loop = asyncio.get_running_loop()
    out: list[float] = []

    async def one() -> None:
        await acquire()
        out.append(loop.time())

    await asyncio.gather(*(one() for _ in range(n)))
    return out


def test_plain_aiolimiter_bursts_but_throttle_does_not() -> None:
    async def main() -> tuple[int, int]:
        plain = AsyncLimiter(10, 1)
        burst = await _starts(plain.acquire, 19)
        ours = Throttle(10)
        paced = await _starts(ours.acquire, 12)
        return max_in_window(burst), max_in_window(paced)

    plain_max, ours_max = asyncio.run(main())
    assert plain_max == 19  # what AsyncLimiter(10, 1) lets through in its first second
    assert ours_max <= 10


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_multiplicative_decrease_once_per_window_then_recovery() -> None:
    asyncio.run(_adaptive())


async def _adaptive() -> None:
    clock = FakeClock()
    p = AdaptParams()
    th = Throttle(10, params=p, clock=clock)
    full = 10 * p.headroom
    assert th.pace == full
    th.on_throttle()  # nothing admitted, no ceiling known yet: the first decrease is deep
    th.on_throttle()  # same window: no second decrease
    assert th.pace == full * p.first_decrease
    assert th.throttle_events == 1
    clock.t = 1.5
    th.on_throttle()
    assert th.pace == full * p.first_decrease * p.decrease
    # recovery, with every request at the pace admitted: climbs, never above the full
    # pace, and is back there within seconds
    paces = []
    while clock.t < 20:
        clock.t += 1 / th.pace
        th.on_success()
        paces.append((clock.t, th.pace))
    assert paces[0][1] < full
    assert max(pace for _, pace in paces) == full
    assert min(t for t, pace in paces if pace == full) < 12


def test_gate_sizes_from_latency_and_fixed_overrides() -> None:
    async def main() -> tuple[int, int, int]:
        gate = ConcurrencyGate(pace=lambda: 10.0, initial_latency_s=0.1)
        small = gate.limit
        for _ in range(50):
            gate.observe(2.0)
        big = gate.limit
        fixed = ConcurrencyGate(pace=lambda: 10.0, fixed=3).limit
        return small, big, fixed

    small, big, fixed = asyncio.run(main())
    assert small == 3
    assert big >= 30  # 10/s × 2 s × headroom
    assert fixed == 3


def test_throttles_for_requests_sent_before_the_decrease_are_not_counted_again() -> None:
    asyncio.run(_stale())


async def _stale() -> None:
    # at 1 s latency, throttle answers for requests sent at the old pace keep coming
    # for a whole window after the decrease: they must not lower the pace again
    clock = FakeClock()
    p = AdaptParams()
    th = Throttle(1000, params=p, clock=clock)
    for _ in range(6):  # six requests sent at t = 0
        await th.acquire()
    clock.t = 1.0
    th.on_throttle()  # the first answer, a throttle: decrease
    first = th.pace
    clock.t = 1.2
    await th.acquire()  # sent at 1.2, after the decrease but inside its window
    clock.t = 2.1
    for _ in range(5):  # the other five sent at t = 0, answered late
        th.on_throttle()
    th.on_throttle()  # the one sent at 1.2: still the old pace's window
    assert th.pace == first
    assert th.throttle_events == 1
    clock.t = 2.3
    await th.acquire()  # sent a full window after the decrease
    clock.t = 3.3
    th.on_throttle()  # a throttle at the new pace: decrease again
    assert th.pace == first * p.decrease
    assert th.throttle_events == 2


def _at_the_pace(th: Throttle, clock: FakeClock, until: float) -> list[tuple[float, float]]:
    """Every request admitted, answered as it is released at the pace: (time, pace)."""
    paces = []
    while clock.t < until:
        clock.t += 1 / th.pace
        th.on_success()
        paces.append((clock.t, th.pace))
    return paces


def test_climb_is_fast_to_the_edge_of_the_ceiling_which_holds_until_it_is_quiet() -> None:
    asyncio.run(_climb())


async def _climb() -> None:
    clock = FakeClock()
    p = AdaptParams()
    th = Throttle(10, params=p, clock=clock)
    full = 10 * p.headroom
    clock.t = 10.0
    th.on_throttle()  # ceiling: the full pace
    clock.t = 20.0
    th.on_throttle()
    ceiling = full * p.first_decrease
    assert th.pace == ceiling * p.decrease
    edge = ceiling * p.near
    climb = _at_the_pace(th, clock, 21.0)  # fast to the edge …
    assert climb[-1][1] == pytest.approx(edge)
    wait = _at_the_pace(th, clock, 20 + p.quiet_s - 0.3)  # … and not past it while quiet
    assert all(pace == pytest.approx(edge) for _, pace in wait)
    probe = _at_the_pace(th, clock, 20 + p.quiet_s + 0.5)  # then one window above it
    assert probe[-1][1] == pytest.approx(max(ceiling * p.probe_over, ceiling + p.probe_step))


def test_after_a_throttle_the_ceiling_is_the_rate_admitted_not_the_pace() -> None:
    asyncio.run(_admitted())


async def _admitted() -> None:
    # beside another process that takes 6 of the service's 10/s, only 4 of ours a
    # second are admitted: the pace drops to (just under) 4/s, not to half the pace
    clock = FakeClock()
    p = AdaptParams()
    th = Throttle(10, params=p, clock=clock)
    for i in range(6):  # six releases, 0.1 s apart from t = 2.0
        clock.t = 2.0 + i / 10
        await th.acquire()
    clock.t = 2.7
    for _ in range(4):
        th.on_success()  # four of them admitted …
    th.on_throttle()  # … the fifth throttled: in the first second, that may be noise
    assert th.pace == 10 * p.headroom * p.trim
    th.on_throttle()  # … and the sixth: a limit
    assert th.pace == 4 * p.near
    # a throttle with no success in the window before it falls back to the pace
    other = Throttle(10, params=p, clock=clock)
    other.on_throttle()
    assert other.pace == 10 * p.headroom * p.first_decrease
    # still 4/s admitted, whatever the pace: the probes above the ceiling get no more
    # through, so it holds, and each probe waits longer (2.5, 5, 10 s …)
    start, paces = clock.t, []
    while clock.t < start + 18:
        clock.t += 0.25
        th.on_success()
        paces.append(th.pace)
    assert paces[-1] == pytest.approx(4 * p.near)
    above = sum(1 for pace in paces if pace > 4) * 0.25
    assert 0 < above <= 3 * p.window_s  # three probes in 18 s, a window each


def test_a_lone_refusal_at_the_edge_of_a_ceiling_is_jitter_a_repeated_one_lowers_it() -> None:
    asyncio.run(_edge())


async def _edge() -> None:
    clock = FakeClock()
    p = AdaptParams(quiet_s=1000)  # no probe in this test
    th = Throttle(10, params=p, clock=clock)
    for i in range(6):  # as above: a ceiling of 4/s
        clock.t = 2.0 + i / 10
        await th.acquire()
    clock.t = 2.7
    for _ in range(4):
        th.on_success()
    th.on_throttle()
    th.on_throttle()
    edge = 4 * p.near
    _at_the_pace(th, clock, 2.7 + p.trim_again_s + 1)
    assert th.pace == pytest.approx(edge)
    th.on_throttle()  # one refused among what the edge sends: trimmed, then back …
    assert th.pace == pytest.approx(edge * p.trim)
    _at_the_pace(th, clock, clock.t + 2)
    assert th.pace == pytest.approx(edge)  # … to the same edge
    th.on_throttle()  # refused at the edge again soon after: the ceiling was a bit high
    _at_the_pace(th, clock, clock.t + 2)
    assert th.pace == pytest.approx(4 * p.trim_ceiling * p.near)


def test_the_first_decrease_holds_releases_until_the_window_has_room() -> None:
    asyncio.run(_drain())


async def _drain() -> None:
    loop = asyncio.get_running_loop()
    p = AdaptParams()
    th = Throttle(20, params=p)
    start = loop.time()
    for _ in range(5):
        await th.acquire()  # five released 1/19.5 s apart
    th.on_success()
    th.on_success()
    th.on_throttle()
    th.on_throttle()  # two admitted, two throttled, one still in flight
    assert th.pace == 2 * p.near
    await th.acquire()
    # the service holds two of ours and maybe the one in flight: the next waits
    # until the second of those three is a window old
    assert loop.time() - start >= p.window_s + 1 / (20 * p.headroom) - 0.02


def test_the_pace_holds_to_the_millisecond_when_timers_fire_late() -> None:
    # The event loop wakes a timer a millisecond or two late; a bucket of exactly one
    # request would lose that time on every release (about 2 % at 10/s, 10 % at 100/s).
    async def main() -> tuple[list[float], float]:
        th = Throttle(100)
        return await _starts(th.acquire, 121), th.pace

    starts, pace = asyncio.run(main())
    starts.sort()
    achieved = (len(starts) - 1) / (starts[-1] - starts[0])
    assert achieved >= 0.97 * pace  # the one-request bucket: about 0.90
    assert max_in_window(starts) < 100
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) > 0.5 / pace  # never two at once


@pytest.mark.parametrize("rate", [10.25, 5.12])
def test_the_slack_never_lets_one_more_start_in_a_second(rate: float) -> None:
    # 97.5 % of 10.25 is 9.99/s: 1 + 9.99 leaves no room for 5 ms of slack under 10
    async def main() -> list[float]:
        return await _starts(Throttle(rate).acquire, int(rate * 1.3) + 1)

    assert max_in_window(asyncio.run(main())) <= int(rate)


def test_an_unused_slot_is_given_back() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        th = Throttle(2)  # a slot every 0.51 s
        await th.acquire()
        th.on_success()
        await th.acquire()  # waits for its slot, then is not used
        th.unused()
        t = loop.time()
        await th.acquire()  # so this one takes it at once
        return loop.time() - t

    assert asyncio.run(main()) < 0.05


# -- the bucket, on an injected clock and timer (no real time) -------------------------


class FakeTimers:
    """``call_later`` for a ``LeakyBucket``: timers fire when the test says, late if asked."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.pending: list[asyncio.TimerHandle] = []

    def __call__(self, delay: float, callback) -> asyncio.TimerHandle:
        handle = asyncio.TimerHandle(self.clock.t + delay, callback, (), asyncio.get_running_loop())
        self.pending.append(handle)
        return handle

    async def run_until(self, until: float, *, late: float = 0.0) -> None:
        """Fire every timer due by ``until`` (each ``late`` seconds late), in time order."""
        while True:
            due = [h for h in self.pending if not h.cancelled() and h.when() + late <= until]
            if not due:
                break
            handle = min(due, key=lambda h: h.when())
            self.pending.remove(handle)
            self.clock.t = max(self.clock.t, handle.when() + late)
            handle._run()
            await asyncio.sleep(0)  # the waiter let go runs
        self.clock.t = until
        await asyncio.sleep(0)


def _bucket(rate: float, capacity: float = 1.0):
    clock = FakeClock()
    timers = FakeTimers(clock)
    return LeakyBucket(rate, capacity, clock=clock, call_later=timers), clock, timers


def _taker(bucket: LeakyBucket, clock: FakeClock, log: list[float], tag=None):
    async def take() -> None:
        await bucket.acquire()
        log.append(clock.t if tag is None else tag)

    return asyncio.ensure_future(take())


def test_bucket_lets_one_go_per_slot_and_never_two_at_once() -> None:
    async def main() -> list[float]:
        bucket, clock, timers = _bucket(10)
        got: list[float] = []
        tasks = [_taker(bucket, clock, got) for _ in range(5)]
        await asyncio.sleep(0)
        assert got == [0.0]  # the first at once, the others wait
        assert [round(h.when(), 9) for h in timers.pending if not h.cancelled()] == [0.1]
        await timers.run_until(1.0)
        await asyncio.gather(*tasks)
        return got

    assert [round(t, 9) for t in asyncio.run(main())] == [0.0, 0.1, 0.2, 0.3, 0.4]


def test_bucket_slack_absorbs_late_timers_without_letting_more_through() -> None:
    # 5 ms of slack at 10/s: timers firing 3 ms late lose nothing over ten slots …
    async def main(capacity: float, late: float) -> list[float]:
        bucket, clock, timers = _bucket(10, capacity)
        got: list[float] = []
        tasks = [_taker(bucket, clock, got) for _ in range(11)]
        await asyncio.sleep(0)
        await timers.run_until(2.0, late=late)
        await asyncio.gather(*tasks)
        return got

    slack = asyncio.run(main(1.05, 0.003))
    # a slot may go up to 5 ms early, so a timer 3 ms late still lets it go on time
    gaps = [b - a for a, b in itertools.pairwise(slack)]
    assert gaps[1:] == pytest.approx([0.1] * 9)
    assert slack[-1] == pytest.approx(1.0 - 0.005 + 0.003)  # not 30 ms behind
    assert max_in_window(slack) <= 1 + 10 * 1.005
    # … while a bucket of exactly one loses the 3 ms on every slot
    exact = asyncio.run(main(1.0, 0.003))
    assert exact[-1] == pytest.approx(10 * 0.103)


def test_bucket_waiters_are_served_in_order_and_a_cancelled_one_takes_nothing() -> None:
    async def main() -> list[str]:
        bucket, clock, timers = _bucket(10)
        order: list[str] = []
        await bucket.acquire()
        a, b, c = (_taker(bucket, clock, order, tag) for tag in "abc")
        await asyncio.sleep(0)
        b.cancel()
        await asyncio.sleep(0)
        await timers.run_until(0.1)
        assert order == ["a"]
        await timers.run_until(0.2)  # c gets the next slot, not the one after
        assert order == ["a", "c"]
        await asyncio.gather(a, c)
        return order

    assert asyncio.run(main()) == ["a", "c"]


def test_bucket_gives_an_unused_slot_back_at_once() -> None:
    async def main() -> list[float]:
        bucket, clock, _timers = _bucket(2)  # a slot every 0.5 s
        got: list[float] = []
        await bucket.acquire()
        clock.t = 0.1
        waiter = _taker(bucket, clock, got)
        await asyncio.sleep(0)
        assert got == []
        bucket.give_back()  # the first was never sent
        await asyncio.sleep(0)
        assert got == [0.1]
        await waiter
        return got

    assert asyncio.run(main()) == [0.1]


def test_bucket_rate_change_keeps_the_time_already_leaked() -> None:
    async def main() -> float:
        bucket, clock, timers = _bucket(10)
        got: list[float] = []
        await bucket.acquire()  # level 1 at t = 0
        waiter = _taker(bucket, clock, got)
        await asyncio.sleep(0)
        clock.t = 0.05  # half a slot leaked at 10/s …
        bucket.set_rate(1, 1.0)  # … the other half now leaks at 1/s: 0.5 s more
        assert bucket.rate == 1
        await timers.run_until(0.54)
        assert got == []
        await timers.run_until(0.56)
        await waiter
        return got[0]

    assert asyncio.run(main()) == pytest.approx(0.55)


def test_bucket_hold_lets_nothing_go_for_the_delay_then_paces_again() -> None:
    async def main() -> list[float]:
        bucket, clock, timers = _bucket(10, 1.05)
        got: list[float] = []
        await bucket.acquire()
        clock.t = 0.2  # a slot is free …
        bucket.hold(0.3)  # … but nothing goes before 0.5
        tasks = [_taker(bucket, clock, got) for _ in range(2)]
        await asyncio.sleep(0)
        assert got == []
        await timers.run_until(1.0)
        await asyncio.gather(*tasks)
        assert bucket.waiting == 0
        return got

    assert [round(t, 9) for t in asyncio.run(main())] == [0.5, 0.6]


def test_bucket_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        LeakyBucket(0, 1.0)
    with pytest.raises(ValueError):
        LeakyBucket(10, 0.5)


# -- whole runs on virtual time: the Throttle against a modelled service ---------------


class _VirtualSelector(selectors.BaseSelector):
    """Never waits: a select with a timeout moves the loop's clock on by it instead."""

    def __init__(self) -> None:
        self.loop: VirtualTimeLoop | None = None
        self._keys: dict = {}

    def register(self, fileobj, events, data=None):
        fd = fileobj if isinstance(fileobj, int) else fileobj.fileno()
        key = selectors.SelectorKey(fileobj, fd, events, data)
        self._keys[fileobj] = key
        return key

    def unregister(self, fileobj):
        return self._keys.pop(fileobj)

    def select(self, timeout=None):
        assert timeout is not None, "nothing scheduled: the run would wait forever"
        assert self.loop is not None
        if timeout > 0:  # at least a microsecond, as a real clock would have moved
            self.loop.now += max(timeout, 1e-6)
        return []

    def get_map(self):
        return self._keys


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock only moves when every task waits for a timer."""

    def __init__(self) -> None:
        self.now = 0.0
        selector = _VirtualSelector()
        super().__init__(selector)
        selector.loop = self

    def time(self) -> float:
        return self.now


def run_virtual(main):
    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        return runner.run(main)


class Service:
    """Admits at most ``share(t)`` of ours in any sliding second (another process has the
    rest of the limit), and answers a random ``noise`` share of the others with a throttle."""

    def __init__(self, share, *, noise: float = 0.0, seed: int = 0) -> None:
        self.share = share
        self.noise = noise
        self.rng = random.Random(seed)
        self.window: collections.deque[float] = collections.deque()
        self.sent: list[float] = []
        self.refused = 0

    def admits(self, t: float) -> bool:
        self.sent.append(t)
        while self.window and t - self.window[0] >= 1.0:
            self.window.popleft()
        if len(self.window) >= self.share(t):
            self.refused += 1
            return False
        self.window.append(t)
        if self.noise and self.rng.random() < self.noise:
            self.refused += 1
            return False
        return True


async def _drive(th: Throttle, service: Service, seconds: float, latency: float = 0.15):
    """Requests as fast as the Throttle lets them go, answered ``latency`` later: (t, pace)."""
    loop = asyncio.get_running_loop()
    paces = []
    while loop.time() < seconds:
        await th.acquire()
        answer = th.on_success if service.admits(loop.time()) else th.on_throttle
        loop.call_later(latency, answer)
        paces.append((loop.time(), th.pace))
    await asyncio.sleep(latency)
    return paces


def _rate(times: list[float], start: float, end: float) -> float:
    return sum(1 for t in times if start <= t < end) / (end - start)


def _back_at_full(paces, th: Throttle, since: float) -> float:
    """Seconds after ``since`` until the pace is back at ``max_pace``."""
    return min(t for t, pace in paces if t >= since and pace == th.max_pace) - since


def test_once_the_other_process_stops_the_pace_is_back_within_seconds() -> None:
    # Another process takes 7 of the 10/s for 8 s, then stops. The run settles under
    # its 3/s, and after the other stops it is back at its full pace within seconds. (The
    # climb used to be +1 % of --rate per 20 s near a ceiling: 2.8/s for minutes.)
    service = Service(lambda t: 3 if t < 8 else 10)
    th = Throttle(10)
    paces = run_virtual(_drive(th, service, 30))
    assert _rate(service.sent, 2, 8) <= 3.5  # its share, and a probe above it
    assert _back_at_full(paces, th, 8) <= 6
    assert _rate(service.sent, 15, 30) >= 0.97 * th.max_pace
    assert max_in_window(service.sent) <= 10  # never a burst, probes included


def test_after_a_long_throttle_period_the_pace_is_back_within_the_longest_wait() -> None:
    # the longer the other process stays, the longer each probe waits: at most quiet_max_s
    p = AdaptParams()
    service = Service(lambda t: 3 if t < 60 else 10)
    th = Throttle(10, params=p)
    paces = run_virtual(_drive(th, service, 100))
    assert _rate(service.sent, 2, 60) <= 3.2
    assert _back_at_full(paces, th, 60) <= p.quiet_max_s + 6
    assert max_in_window(service.sent) <= 10


def test_random_throttles_cost_little() -> None:
    # 3 % of the answers are throttles at random, whatever the pace: the run keeps its
    # pace (at 10/s it used to fall to 3.5/s, each throttle taken for a lower ceiling)
    service = Service(lambda t: 10, noise=0.03, seed=7)
    th = Throttle(10)
    run_virtual(_drive(th, service, 60))
    assert service.refused >= 10
    assert _rate(service.sent, 0, 60) >= 9.0
    assert max_in_window(service.sent) <= 10


def test_beside_a_steady_process_it_settles_just_under_its_share() -> None:
    service = Service(lambda t: 5)  # the other process takes 5 of the 10/s throughout
    th = Throttle(10)
    refused: list[float] = []
    admits = service.admits

    def watched(t: float) -> bool:
        ok = admits(t)
        if not ok:
            refused.append(t)
        return ok

    service.admits = watched  # type: ignore[method-assign]
    run_virtual(_drive(th, service, 60, latency=1.0))
    assert 4.5 <= _rate(service.sent, 5, 60) <= 5.0
    # after the start, only the probes are refused, and they come further and further apart
    probes = [t for t in refused if t > 3]
    starts = [b for a, b in itertools.pairwise([0.0, *probes]) if b - a > 2]
    assert len(probes) <= 2 * len(starts)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    # … up to the cap on the wait (quiet_max_s), after which they come that far apart
    cap = AdaptParams().quiet_max_s
    assert len(gaps) >= 2 and all(b > a or b >= cap for a, b in itertools.pairwise(gaps))
