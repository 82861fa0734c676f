"""The fan-out driven by a fake Caller: no HTTP server, milliseconds per test.

The Caller protocol is the seam where the network begins (httpx's MockTransport is
the model); the throttle, the gate, the policy and the ledger are the real ones.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from enrich.cache import Ledger
from enrich.errors import CallError
from enrich.fanout import FanOut
from enrich.limiter import ConcurrencyGate, Throttle
from enrich.logs import Log
from enrich.retry import RetryPolicy
from enrich.types import Answer, Key, Profile

Script = list[Answer | CallError]


def ok(name: str = "x") -> Answer:
    return Answer(Profile(about=name), f"req-{name}", 1_700_000_000.0)


def api_error(code: str, status: int = 400) -> CallError:
    return CallError(code, f"{code} message", http_status=status, request_id=f"rid-{code}")


@dataclass
class FakeCaller:
    """Answers each key from its script, one entry per attempt (the last one repeats)."""

    scripts: dict[Key, Script] = field(default_factory=dict)
    default: Answer | CallError = field(default_factory=ok)
    calls: list[tuple[str, str, int]] = field(default_factory=list)
    hold: asyncio.Event | None = None  # when set, every call waits for it
    on_call: Callable[[tuple[str, str, int]], None] | None = None

    async def query(self, space: str, number: str, *, attempt: int) -> Answer:
        call = (space, number, attempt)
        self.calls.append(call)
        if self.on_call is not None:
            self.on_call(call)
        if self.hold is not None:
            await self.hold.wait()
        else:
            await asyncio.sleep(0)
        script = self.scripts.get((space, number), [self.default])
        got = script[min(attempt, len(script)) - 1]
        if isinstance(got, CallError):
            raise got
        return got


class Sleeps:
    """The sleep seam: records the backoffs and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(0)


def fan_out(
    keys: list[Key],
    caller: FakeCaller,
    *,
    ledger: Ledger,
    workers: int = 4,
    rate: float = 10_000.0,
    single_space: bool = True,
    max_attempts: int = 6,
    sleep: Sleeps | None = None,
) -> FanOut:
    throttle = Throttle(rate)
    gate = ConcurrencyGate(pace=lambda: throttle.pace, fixed=workers)
    return FanOut(
        keys,
        caller=caller,
        throttle=throttle,
        gate=gate,
        policy=RetryPolicy(max_attempts=max_attempts),
        recorder=ledger,
        log=Log(fmt="json", stream=io.StringIO()),
        workers=workers,
        single_space=single_space,
        rand=lambda: 0.5,
        sleep=sleep or Sleeps(),
        clock=lambda: 1_700_000_100.0,
    )


def keys_of(n: int, space: str = "s1") -> list[Key]:
    return [(space, f"861380000{i:04d}") for i in range(n)]


@pytest.fixture
def ledger() -> Ledger:
    return Ledger(None)


def test_every_key_called_once_in_order_with_one_worker(ledger: Ledger) -> None:
    keys = keys_of(5)
    caller = FakeCaller()
    result = asyncio.run(fan_out(keys, caller, ledger=ledger, workers=1).run())
    assert [(s, n) for s, n, _ in caller.calls] == keys
    assert list(result.outcomes) == keys
    assert all(o.status == "ok" and o.attempts == 1 for o in result.outcomes.values())
    assert result.fatal is None
    # each answer was recorded as it came
    assert set(ledger.lookup(keys, not_before=0)) == set(keys)


def test_retries_are_counted_and_backed_off(ledger: Ledger) -> None:
    keys = keys_of(3)
    flaky = keys[1]
    script: Script = [
        CallError("Client.Timeout", "t"),
        api_error("ServiceUnavailable", 503),
        ok("late"),
    ]
    caller = FakeCaller(scripts={flaky: script})
    sleeps = Sleeps()
    fan = fan_out(keys, caller, ledger=ledger, sleep=sleeps)
    result = asyncio.run(fan.run())
    assert result.outcomes[flaky].attempts == 3
    assert result.outcomes[flaky].request_id == "req-late"
    assert fan.progress.api_calls == 5
    assert fan.progress.retries == 2
    assert fan.progress.done == 3 and fan.progress.ok == 3
    assert sleeps.delays == [0.5 * 0.5, 0.5 * 1.0]  # full jitter at rand()=0.5


def test_retries_run_out_into_a_final_error_that_is_not_cached(ledger: Ledger) -> None:
    keys = keys_of(2)
    caller = FakeCaller(scripts={keys[0]: [api_error("System.LimitControl")]})
    fan = fan_out(keys, caller, ledger=ledger, max_attempts=3)
    result = asyncio.run(fan.run())
    out = result.outcomes[keys[0]]
    assert (out.status, out.error_code, out.attempts) == ("error", "System.LimitControl", 3)
    assert fan.progress.throttled == 3
    # a transient failure is never kept: a rerun asks again
    assert keys[0] not in ledger.lookup(keys, not_before=0)


def test_a_final_api_error_is_cached_with_its_request_id(ledger: Ledger) -> None:
    keys = keys_of(2)
    forbidden = CallError("Client.HTTP403", "forbidden", http_status=403)
    caller = FakeCaller(scripts={keys[0]: [api_error("MissingParameter")], keys[1]: [forbidden]})
    result = asyncio.run(fan_out(keys, caller, ledger=ledger).run())
    first = result.outcomes[keys[0]]
    assert (first.error_code, first.request_id, first.attempts) == (
        "MissingParameter", "rid-MissingParameter", 1)  # fmt: skip
    assert first.fetched_at == 1_700_000_100.0  # the clock seam: when the service said it
    cached = ledger.lookup(keys, not_before=0)
    assert cached[keys[0]].error_code == "MissingParameter"
    # a client-side final error has no answer time and is not kept
    assert result.outcomes[keys[1]].fetched_at is None
    assert keys[1] not in cached


def test_throttle_answers_slow_the_run_down(ledger: Ledger) -> None:
    keys = keys_of(4)
    caller = FakeCaller(scripts={keys[2]: [api_error("System.LimitControl"), ok()]})
    fan = fan_out(keys, caller, ledger=ledger, workers=1)
    before = fan.throttle.pace
    result = asyncio.run(fan.run())
    assert fan.progress.throttled == 1
    assert fan.throttle.throttle_events == 1
    assert fan.throttle.pace < before
    assert result.outcomes[keys[2]].status == "ok"


def test_stop_ends_the_fan_out_without_new_requests(ledger: Ledger) -> None:
    keys = keys_of(50)
    caller = FakeCaller()
    fan = fan_out(keys, caller, ledger=ledger, workers=2)

    def stop_after_ten(call: tuple[str, str, int]) -> None:
        if len(caller.calls) == 10:
            fan.stop.set()

    caller.on_call = stop_after_ten
    result = asyncio.run(fan.run())
    assert len(caller.calls) == 10
    assert len(result.outcomes) == 10  # the ten in flight were allowed to finish
    assert result.fatal is None


def test_a_fatal_error_mid_flight_stops_the_run(ledger: Ledger) -> None:
    keys = keys_of(40)
    fatal_key = keys[5]
    caller = FakeCaller(scripts={fatal_key: [api_error("Ram.PermissionDeny")]})
    fan = fan_out(keys, caller, ledger=ledger, workers=4)
    result = asyncio.run(fan.run())
    assert result.fatal is not None and result.fatal.code == "Ram.PermissionDeny"
    assert fatal_key not in result.outcomes  # fatal: nothing reported for it
    # only what was already in flight went out after it: at most workers - 1 more
    index = caller.calls.index((*fatal_key, 1))
    assert len(caller.calls) - index - 1 <= 3
    assert len(caller.calls) < len(keys)


def test_rejected_space_with_a_single_space_is_fatal(ledger: Ledger) -> None:
    keys = keys_of(10)
    caller = FakeCaller(scripts={keys[0]: [api_error("Unknown.ResourceOwnerId")]})
    result = asyncio.run(fan_out(keys, caller, ledger=ledger, workers=1).run())
    assert result.fatal is not None and result.fatal.code == "Unknown.ResourceOwnerId"
    assert len(caller.calls) == 1


def test_a_space_rejected_while_others_wait_for_a_slot_gets_no_more_calls(
    ledger: Ledger,
) -> None:
    bad = keys_of(20, space="foreign-space")
    good = keys_of(5, space="s-good")
    keys = [bad[0], *good[:2], *bad[1:], *good[2:]]
    hold = asyncio.Event()
    caller = FakeCaller(scripts={k: [api_error("Unknown.ResourceOwnerId")] for k in bad}, hold=hold)

    async def go() -> FanOut:
        # a slow pace: while the first answer is held, other workers wait for their slots
        fan = fan_out(keys, caller, ledger=ledger, workers=8, rate=40.0, single_space=False)
        task = asyncio.ensure_future(fan.run())
        await asyncio.sleep(0.1)
        hold.set()
        await task
        return fan

    fan = asyncio.run(go())
    result = fan.result
    assert result.fatal is None
    bad_calls = [c for c in caller.calls if c[0] == "foreign-space"]
    # the first was in flight; a few more may have left before its answer came
    assert len(bad_calls) < 8
    assert all(result.outcomes[k].status == "ok" for k in good)
    rejected = [result.outcomes[k] for k in bad]
    assert all(o.error_code == "Unknown.ResourceOwnerId" for o in rejected)
    # rows never called carry no RequestId of their own; called ones keep theirs
    called = {(s, n) for s, n, _ in bad_calls}
    for k in bad:
        expected = "rid-Unknown.ResourceOwnerId" if k in called else None
        assert result.outcomes[k].request_id == expected
    assert list(fan.dead_spaces) == ["foreign-space"]
    events = [json.loads(line)["event"] for line in fan.log.stream.getvalue().splitlines()]
    assert events.count("space_rejected") == 1  # said once, however many were in flight
    assert fan.progress.done == len(keys)


def test_nothing_gets_through_stops_after_the_policys_count(ledger: Ledger) -> None:
    keys = keys_of(200)
    caller = FakeCaller(default=CallError("Client.Connection", "refused"))
    fan = fan_out(keys, caller, ledger=ledger, workers=4)
    result = asyncio.run(fan.run())
    assert result.unreachable is not None and result.unreachable.code == "Client.Connection"
    # 50 failed attempts, plus the few already in flight
    assert 50 <= len(caller.calls) <= 50 + 4
    # only numbers whose tries ran out before then are reported; the rest are not
    assert all(o.attempts == 6 for o in result.outcomes.values())
    assert len(result.outcomes) < 50 // 6 + 1


def test_one_answer_means_the_service_is_reachable(ledger: Ledger) -> None:
    keys = keys_of(30)
    refused = CallError("Client.Connection", "refused")
    # the first number answers; every other gets a connection error on each of 3 tries
    caller = FakeCaller(scripts={k: [refused] for k in keys[1:]})
    fan = fan_out(keys, caller, ledger=ledger, workers=1, max_attempts=3)
    result = asyncio.run(fan.run())
    assert result.unreachable is None
    assert len(caller.calls) == 1 + 29 * 3  # every retry made: a flaky service, not a dead one
    assert sum(o.error_code == "Client.Connection" for o in result.outcomes.values()) == 29
