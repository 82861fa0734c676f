"""The throttle: no burst, never over the rate in a sliding second, adaptive."""

from __future__ import annotations

import asyncio
import itertools

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


def test_multiplicative_decrease_once_per_window_then_additive_recovery() -> None:
    asyncio.run(_adaptive())


async def _adaptive() -> None:
    clock = FakeClock()
    p = AdaptParams()
    th = Throttle(10, params=p, clock=clock)
    full = 10 * p.headroom
    assert th.pace == full
    th.on_throttle()  # no ceiling known yet: the first decrease is the deep one
    th.on_throttle()  # same window: no second decrease
    assert th.pace == full * p.first_decrease
    assert th.throttle_events == 1
    clock.t = 1.5
    th.on_throttle()
    assert th.pace == full * p.first_decrease * p.decrease
    # recovery: climbs, never above the full pace, and needs time (no jump)
    paces = []
    for _ in range(400):
        clock.t += 0.5
        th.on_success()
        paces.append(th.pace)
    assert paces[0] < full
    assert all(b >= a for a, b in itertools.pairwise(paces))
    assert paces[-1] == full


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


def test_climb_is_fast_far_below_the_ceiling_and_slow_near_it() -> None:
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
    for _ in range(8):  # two seconds
        clock.t += 0.25
        th.on_success()
    # back to the edge of the slow zone, and no further than the slow step allows
    edge = ceiling * p.near
    assert edge <= th.pace <= edge + p.slow_step * full * 2
    for _ in range(40):  # ten more seconds
        clock.t += 0.25
        th.on_success()
    slow_gain = th.pace - edge
    assert 0 < slow_gain <= p.slow_step * full * 12 + 1e-9
    assert th.pace < ceiling


def test_after_a_throttle_the_ceiling_is_the_rate_admitted_not_the_pace() -> None:
    asyncio.run(_admitted())


async def _admitted() -> None:
    # beside another process that takes half the service's 10/s, only 5 of ours a
    # second are admitted: the pace drops to (just under) 5/s, not to half the pace,
    # and climbs fast only up to the edge of that ceiling
    clock = FakeClock()
    p = AdaptParams()
    th = Throttle(10, params=p, clock=clock)
    for i in range(6):  # six releases, 0.1 s apart from t = 2.0
        clock.t = 2.0 + i / 10
        await th.acquire()
    clock.t = 2.7
    for _ in range(4):
        th.on_success()  # four of them admitted …
    th.on_throttle()  # … the fifth throttled
    assert th.pace == 4 * p.near
    # a throttle with no success in the window before it falls back to the pace
    other = Throttle(10, params=p, clock=clock)
    other.on_throttle()
    assert other.pace == 10 * p.headroom * p.first_decrease
    for _ in range(40):  # ten seconds
        clock.t += 0.25
        th.on_success()
    assert 4 * p.near <= th.pace < 4  # never past the admitted rate in ten seconds


def test_the_first_decrease_holds_releases_until_the_window_has_room() -> None:
    asyncio.run(_drain())


async def _drain() -> None:
    loop = asyncio.get_running_loop()
    p = AdaptParams()
    th = Throttle(20, params=p)
    start = loop.time()
    for _ in range(4):
        await th.acquire()  # four released 1/19.5 s apart
    th.on_success()
    th.on_success()
    th.on_throttle()  # two admitted, one throttled, one still in flight
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
