"""Real ``enrich run`` processes on one quota store (SPEC.md "Sharing the account's quota").

tests/test_quota.py drives the store with members of its own; here the members are
whole runs (``python -m enrich run …``), one OS process each, against ONE emulator
with the account's strict limit (10 in any sliding second, per AccessKeyId; every
run uses the same key, so the emulator sees the account's traffic as one). All runs
of a case share one store: a SQLite file, or a real redis-server for two "hosts"
(each its own HOME and cache folder). Every run has its own ``--cache`` and its own
numbers (``86139<run><serial>``), so no run answers another's from a cache.

Asserted in every case, at the emulator, all runs together:

- at most 10 arrivals in any sliding second (``max_in_window``) and no
  ``System.LimitControl`` answer: the runs never add up to more than the budget,
  whoever starts, joins, or is killed;
- while several runs have work, each gets its share of the arrivals (two runs:
  at least 40 %; three: at least 80 % of a third) and together they keep the
  budget busy;
- each finished run's summary names the store (``quota``) and has waited for
  slots (``quota_wait_s`` > 0).

The emulator records an arrival's AccessKeyId but not its number, so the test wraps
its ``stats.next_attempt`` (called, for every admitted request, in the same
synchronous step as the arrival is recorded) to note the moment and the number:
that attributes each arrival to its run.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from redis_server import RedisServer

from enrich.cache import Ledger
from enrich.emulator import EmulatorServer
from enrich.emulator.stats import max_in_window
from enrich.fanout import FanOut
from enrich.limiter import ConcurrencyGate, Throttle
from enrich.logs import Log
from enrich.quota import QuotaParams
from enrich.retry import RetryPolicy
from enrich.types import Answer, Profile

RATE = 10
PACE = 10 * QuotaParams().headroom  # the quota's pace at --rate 10
LATENCY_S = 0.05
RUN_TIMEOUT_S = 40.0


# -- the emulator's arrivals, by run -------------------------------------------------


class Arrivals:
    """``(monotonic time, run index)`` of every admitted request at ``server``."""

    def __init__(self, server: EmulatorServer) -> None:
        self.server = server
        self.tagged: list[tuple[float, int]] = []
        original = server.stats.next_attempt

        def next_attempt(key: tuple[str, str]) -> int:
            self.tagged.append((time.monotonic(), run_of(key[1])))
            return original(key)

        server.stats.next_attempt = next_attempt  # type: ignore[method-assign]

    def of(self, run: int) -> list[float]:
        return [t for t, r in list(self.tagged) if r == run]

    def first(self, run: int, timeout: float = 20.0) -> float:
        """The moment of ``run``'s first request (waits for it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            mine = self.of(run)
            if mine:
                return mine[0]
            time.sleep(0.02)
        raise AssertionError(f"run {run} sent nothing within {timeout} s")

    def assert_within_budget(self) -> None:
        """SPEC: never more than --rate in any sliding second, no throttled answer."""
        times = [t for t, _ in self.server.stats.arrivals]
        assert max_in_window(times) <= RATE, max_in_window(times)
        codes = self.server.stats.codes
        print(f"max in 1 s: {max_in_window(times)}, answers: {dict(codes)}")
        assert codes.get("System.LimitControl", 0) == 0, codes
        assert set(codes) == {"OK"}, codes
        assert len(times) == len(self.tagged)  # every arrival attributed to a run

    def assert_split(self, runs: list[int], start: float, end: float, *,
                     least_share: float, least_rate: float = 0.9 * PACE) -> None:
        """While ``runs`` all have work (``[start, end)``), each gets its share, and
        together they use the budget."""
        assert end - start >= 1.0, f"the runs overlapped only {end - start:.2f} s"
        counts = {r: sum(1 for t in self.of(r) if start <= t < end) for r in runs}
        total = sum(counts.values())
        print(f"[{start:.2f}, {end:.2f}): {counts} = {total / (end - start):.2f}/s")
        assert total >= least_rate * (end - start) - 1, (counts, end - start)
        for r, n in counts.items():
            assert n >= least_share * total, (r, counts)


def run_of(phone: str) -> int:
    return int(phone[5:7])


def phones(run: int, n: int) -> list[str]:
    """``n`` distinct valid Chinese mobile numbers of ``run``: 86 139 <run:2> <serial:6>."""
    return [f"86139{run:02d}{i:06d}" for i in range(n)]


# -- runs ------------------------------------------------------------------------


@dataclass
class Run:
    index: int
    proc: subprocess.Popen[str]
    summary: Path
    n: int


#: every run a test started, so none outlives its test (a failed assertion included)
_STARTED: list[subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def _no_run_left_behind() -> Iterator[None]:
    yield
    while _STARTED:
        proc = _STARTED.pop()
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def start_run(tmp: Path, server: EmulatorServer, index: int, n: int, quota: str, *,
              home: Path | None = None) -> Run:
    """``enrich run`` over ``n`` numbers of its own, its own cache, on store ``quota``."""
    folder = tmp / f"run{index}"
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / "in.csv"
    source.write_text("phone\n" + "".join(f"{p}\n" for p in phones(index, n)))
    env = {**os.environ, "ALIBABA_CLOUD_ACCESS_KEY_ID": "testAKID",
           "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "testSecret"}
    if home is not None:  # another "host": its own HOME and cache folder
        (home / ".cache").mkdir(parents=True, exist_ok=True)
        env.update(HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"))
    summary = folder / "summary.json"
    cmd = [sys.executable, "-m", "enrich", "run", str(source), "-o", str(folder / "out.csv"),
           "--summary", str(summary), "--endpoint", server.url, "--cust-space-id", "c1",
           "--no-progress", "--log-format", "json", "--cache", str(folder / "cache.sqlite3"),
           "--quota", quota]
    proc = subprocess.Popen(cmd, env=env, cwd=folder, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _STARTED.append(proc)
    return Run(index, proc, summary, n)


def finish(run: Run) -> dict[str, Any]:
    """Wait for ``run``; it succeeded, and answered every number: its summary."""
    try:
        _, err = run.proc.communicate(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        run.proc.kill()
        _, err = run.proc.communicate()
        raise AssertionError(f"run {run.index} did not finish: {err[-2000:]}") from None
    assert run.proc.returncode == 0, err[-2000:]
    assert "Traceback" not in err, err[-2000:]
    for line in err.splitlines():
        json.loads(line)  # --log-format json: every stderr line is an event
    summary: dict[str, Any] = json.loads(run.summary.read_text())
    assert summary["ok"] + summary["no_profile"] == run.n, summary
    assert summary["api_calls"] == run.n, json.dumps(summary)
    assert summary["throttled"] == 0, summary
    return summary


def assert_shared(summary: dict[str, Any], store: str) -> None:
    assert summary["quota"] == store, summary["quota"]
    assert summary["quota_wait_s"] > 0, summary


@pytest.fixture
def strict(emulator: Callable[..., EmulatorServer]) -> Arrivals:
    """ONE emulator with the account's strict limit, its arrivals attributed by run."""
    return Arrivals(emulator(rate_limit=RATE, latency_s=LATENCY_S))


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A real redis-server on 127.0.0.1 (tests/redis_server.py; never skipped)."""
    try:
        server = RedisServer(tmp_path / "redis")
    except RuntimeError as exc:
        pytest.fail(str(exc))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def overlap(arrivals: Arrivals, runs: list[int]) -> tuple[float, float]:
    """``[start, end)`` in which every run of ``runs`` had work: its first to its last."""
    spans = [arrivals.of(r) for r in runs]
    return max(s[0] for s in spans), min(s[-1] for s in spans)


# -- the cases ------------------------------------------------------------------------


def test_two_runs_started_together_split_the_budget(tmp_path: Path, strict: Arrivals) -> None:
    store = str(tmp_path / "quota.sqlite3")
    runs = [start_run(tmp_path, strict.server, i, 20, store) for i in (0, 1)]
    summaries = [finish(r) for r in runs]
    strict.assert_within_budget()
    strict.assert_split([0, 1], *overlap(strict, [0, 1]), least_share=0.4)
    for summary in summaries:
        assert_shared(summary, store)


def test_three_runs_take_turns(tmp_path: Path, strict: Arrivals) -> None:
    store = str(tmp_path / "quota.sqlite3")
    runs = [start_run(tmp_path, strict.server, i, 15, store) for i in (0, 1, 2)]
    summaries = [finish(r) for r in runs]
    strict.assert_within_budget()
    strict.assert_split([0, 1, 2], *overlap(strict, [0, 1, 2]), least_share=0.8 / 3)
    for summary in summaries:
        assert_shared(summary, store)


def test_a_late_joiner_gets_its_share_at_once_and_the_first_run_had_it_all(
    tmp_path: Path, strict: Arrivals
) -> None:
    store = str(tmp_path / "quota.sqlite3")
    first = start_run(tmp_path, strict.server, 0, 30, store)
    time.sleep(1.5)
    late = start_run(tmp_path, strict.server, 1, 20, store)
    summaries = [finish(first), finish(late)]
    strict.assert_within_budget()
    alone, joined = strict.of(0)[0], strict.of(1)[0]
    before = [t for t in strict.of(0) if t < joined]
    assert len(before) >= 5, "the second run was not late"
    # alone, the first run had the whole budget
    assert len(before) >= 0.9 * PACE * (joined - alone), (len(before), joined - alone)
    strict.assert_split([0, 1], *overlap(strict, [0, 1]), least_share=0.4)
    assert_shared(summaries[1], store)  # the joiner waited: the first run held the budget
    assert summaries[0]["quota"] == store


def test_a_killed_run_leaves_its_share_to_the_others_within_a_second(
    tmp_path: Path, strict: Arrivals
) -> None:
    store = str(tmp_path / "quota.sqlite3")
    runs = [start_run(tmp_path, strict.server, i, 20, store) for i in (0, 1, 2)]
    victim = runs[2]
    strict.first(2)
    time.sleep(1.0)
    victim.proc.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    victim.proc.communicate(timeout=10)
    assert victim.proc.returncode == -signal.SIGKILL
    summaries = [finish(r) for r in runs[:2]]
    strict.assert_within_budget()
    assert not [t for t in strict.of(2) if t > killed + 0.2]
    # while all three had work, turns; a second after the kill, halves of the whole budget
    start, _ = overlap(strict, [0, 1, 2])
    three = [t for t, _ in strict.tagged if start <= t < killed]
    assert len(three) >= 0.9 * PACE * (killed - start) - 1, (len(three), killed - start)
    _, end = overlap(strict, [0, 1])
    strict.assert_split([0, 1], killed + 1.0, end, least_share=0.4)
    for summary in summaries:
        assert_shared(summary, store)


def test_two_hosts_on_one_redis_server_split_the_budget(
    tmp_path: Path, strict: Arrivals, redis_url: str
) -> None:
    runs = [start_run(tmp_path, strict.server, i, 20, redis_url, home=tmp_path / f"host{i}")
            for i in (0, 1)]
    summaries = [finish(r) for r in runs]
    strict.assert_within_budget()
    strict.assert_split([0, 1], *overlap(strict, [0, 1]), least_share=0.4)
    for summary in summaries:
        assert_shared(summary, redis_url)
    # each host kept its own default files: nothing of the quota on either
    for i in (0, 1):
        assert not list((tmp_path / f"host{i}").rglob("quota.sqlite3"))


# -- the summary's quota_wait_s adds up every request's wait ------------------------------


class SlowSlots:
    """A budget whose every slot takes 50 ms: requests wait for slots side by side."""

    def __init__(self) -> None:
        self.waited = 0.0

    async def acquire(self) -> float:
        await asyncio.sleep(0.05)
        self.waited += 0.05
        return 0.05

    def unused(self) -> None:
        raise AssertionError("no slot goes unused here")


class Answers:
    async def query(self, space: str, number: str, *, attempt: int) -> Answer:
        await asyncio.sleep(0)
        return Answer(Profile(about=number), f"req-{number}", 1_700_000_000.0)


def test_quota_wait_adds_up_the_waits_of_requests_waiting_together() -> None:
    """Eight workers wait for their slots at once: ``quota_wait_s`` is the sum of the
    eight waits, not the last one's (``x += await …`` loads ``x`` before the await)."""
    slots = SlowSlots()
    throttle = Throttle(100_000)
    fan = FanOut([("c1", f"8613900{i:06d}") for i in range(32)], caller=Answers(),
                 throttle=throttle, gate=ConcurrencyGate(pace=lambda: throttle.pace, fixed=8),
                 policy=RetryPolicy(), recorder=Ledger(None),
                 log=Log(fmt="json", stream=io.StringIO()), workers=8, single_space=True,
                 slots=slots)
    result = asyncio.run(fan.run())
    assert len(result.outcomes) == 32
    assert fan.quota_wait_s == pytest.approx(slots.waited)  # 32 × 50 ms
    assert fan.progress.api_calls == 32
