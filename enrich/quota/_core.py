"""The slot algorithm, pure: one budget's state in, the granted slots out.

Both stores run exactly this step inside one atomic transaction (SQLite in Python,
Redis in the Lua script of ``_redis.py``, which mirrors it line for line; a test
runs both on the same sequence and compares).

**Pace.** The budget paces at ``headroom × min(rate of the live members)``: the
smallest ``--rate`` wins, a few percent under it for the jitter between a slot and
the request's arrival at the service.

**No burst (GCRA, no tolerance).** ``tat`` is the budget's next free slot. Every
slot granted is ``≥ tat`` and moves ``tat`` to ``slot + 1/pace``, so any two slots
of the budget, whoever holds them, are at least ``1/pace`` apart: at most
``⌈pace⌉ ≤ --rate`` slots in any sliding second, whoever joins or leaves.

When the pace drops (a run with a smaller ``--rate`` joins), the last second
still holds slots at the old pace; the next slot waits until a sliding second of
the new rate has room: with ``K = ⌊new pace⌋`` and the old slots at least
``1/old pace`` apart, ``tat`` moves on by ``1 − K/old pace`` (a pause under a
second, once).

**Clock.** The store's clock: SQLite ``time.monotonic()`` (one host, never
stepped), Redis ``TIME``. Should it go back, the ``stamp`` kept with ``tat`` tells
by how much, and ``tat`` moves back by that, never further, so the real spacing
holds. (A clock that jumps forward can let one slot come early, once.)

**Fairness.** A member's own next slot is at least its last slot plus
``busy / pace``, where ``busy`` counts the members that have work: the one asking,
and each live member that is *backlogged* (it asked for its latest slot within
``backlog_s`` of its previous one, as a member with requests queued does) and has
asked recently (``now ≤ its next slot + idle_grace_s``); the spacing is taken when
the member asks, from the members busy then, so the share of a member that stops
asking passes to the others at their next slot. So two busy members
alternate, three take turns, and a member that asks only now and then takes the
next free slot without slowing the busy ones. A member that stops asking (done,
stopped, killed) stops counting one spacing (plus ``idle_grace_s``) after its last
slot, and a member whose heartbeat is older than ``ttl_s`` is dropped by the
store: nothing a dead member held outlives that (no lock, no lease).

**Batches.** When several requests of one member wait, one transaction may grant
several slots, consecutive in the budget and within ``horizon_s`` of the first, so
that taking a slot costs the store little at high rates. A batch never skips a
free slot of the budget (which would waste it): at two busy members or more it is
one slot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["MemberState", "QuotaParams", "Step", "clamp_ahead", "step", "window_rate"]


#: ``QuotaParams.lead_s``'s default (the Redis script's too).
LEAD_S = 0.03


@dataclass(frozen=True, slots=True, kw_only=True)
class QuotaParams:
    """The tunables of the shared quota (defaults chosen with ``bench/bench_quota.py``)."""

    # pace at this share of the smallest --rate: wider than a lone run's 97.5 %, since
    # runs on one host start and stop beside each other (see README "Sharing …")
    headroom: float = 0.96
    heartbeat_s: float = 0.2  # a member refreshes its heartbeat this often
    ttl_s: float = 0.6  # … and is dropped when it is this old (kill -9, a lost host)
    idle_grace_s: float = 0.05  # a member stops counting as busy this long after its due slot
    backlog_s: float = 0.1  # asked within this of its previous slot: it has requests queued
    horizon_s: float = 0.02  # a batch of slots spans at most this
    # A slot is never granted sooner than this after the store's clock: it reaches its
    # run before its moment and is used on time, whatever the grant took (SQLite on a
    # busy thread, a Redis round trip). A slot granted in the past would leave at once,
    # later than its moment, and bunch with the next one: 11 in a sliding second.
    lead_s: float = LEAD_S
    lost_timeout_s: float = 60.0  # acquire gives up after the store is gone this long
    retry_s: float = 0.5  # try the lost store again this often
    store_timeout_s: float = 2.0  # one store operation (a Redis socket, SQLite's busy wait)


@dataclass(slots=True, kw_only=True)
class MemberState:
    """What the store keeps of one member for the algorithm."""

    rate: float
    next: float = 0.0  # its own earliest next slot
    last: float | None = None  # its latest slot, None before the first
    backlog: bool = True  # it asked for its latest slot right after the previous one


@dataclass(slots=True, kw_only=True)
class Step:
    """The outcome of one :func:`step`: slots granted and the state to write back."""

    slots: list[float]
    tat: float
    me: MemberState
    pace: float
    busy: int


def clamp_ahead(value: float, *, now: float, limit: float) -> float:
    """``value``, or ``now`` if it lies beyond ``now + limit``.

    A member's next slot is never far ahead of the store's clock; one that is comes
    from a clock stepped back and would stall that member (the budget's ``tat`` is
    shifted exactly instead, by the ``stamp`` kept beside it).
    """
    return now if value > now + limit else value


def step(
    *,
    now: float,
    me: str,
    rate: float,
    want: int,
    tat: float,
    last_pace: float,
    stamp: float,
    members: dict[str, MemberState],
    params: QuotaParams,
) -> Step:
    """Grant ``1 ≤ n ≤ want`` slots to member ``me`` (asking at ``rate``) at ``now``.

    ``members`` holds the live members of the budget, ``me`` included if the store
    knows it; ``tat`` is the budget's next free slot, ``last_pace`` the pace it was
    set at and ``stamp`` the clock then (all 0 for a new budget). The caller stores
    ``Step.tat``, ``Step.pace``, ``now`` (the next ``stamp``) and ``Step.me`` back in
    the same transaction.
    """
    mine = members.get(me) or MemberState(rate=rate)
    mine.rate = rate
    mine.backlog = mine.last is None or now <= mine.last + params.backlog_s
    others = {name: state for name, state in members.items() if name != me}
    busy = 1 + sum(
        1 for state in others.values() if state.backlog and now <= state.next + params.idle_grace_s
    )
    pace = params.headroom * min([rate, *(state.rate for state in others.values())])
    gap = 1.0 / pace
    spacing = busy * gap
    if stamp > now:  # the clock went back: keep the budget's spacing in the new clock
        tat -= stamp - now
    if mine.last is not None:  # its own spacing as the budget is now, not as it was at
        mine.next = mine.last + spacing  # its last grant: a member gone gives its share at once
    # a next slot far ahead (a clock step) would only stall this member: forget it
    widest = max(gap, 1.0 / last_pace) if last_pace > 0 else gap
    limit = max(2.0, (len(others) + 2) ** 2 * widest) + params.horizon_s
    mine.next = clamp_ahead(mine.next, now=now, limit=limit)
    if last_pace > 0 and pace < last_pace:  # a smaller --rate joined: clear its window first
        allowed = max(1, math.floor(pace))
        tat = tat + max(0.0, 1.0 - allowed / last_pace)

    slots: list[float] = []
    while len(slots) < max(1, want):
        slot = max(now + params.lead_s, tat, mine.next)
        if slots and (mine.next > tat or slot > slots[0] + params.horizon_s):
            break
        slots.append(slot)
        tat = slot + gap
        mine.next = slot + spacing
        mine.last = slot
    return Step(slots=slots, tat=tat, me=mine, pace=pace, busy=busy)


def window_rate(counts: dict[int, int], *, now: float, joined: float, window_s: int = 10) -> float:
    """Slots per second over the last ``window_s`` seconds from per-second ``counts``.

    ``counts`` maps ``floor(slot time)`` to the slots granted in that second; a member
    younger than the window is averaged over its age (at least one second).
    """
    current = math.floor(now)
    first = current - window_s + 1
    total = sum(n for sec, n in counts.items() if first <= sec <= current)
    span = min(float(window_s - 1) + (now - current), max(1.0, now - joined))
    return total / span if span > 0 else 0.0
