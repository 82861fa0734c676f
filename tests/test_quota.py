"""The shared quota on real stores: a SQLite file and a real redis-server on 127.0.0.1.

Every scenario asserts the property SPEC.md asks for: the slots of all members
together never exceed ``--rate`` in any sliding second (``max_in_window`` over the
moments they were handed out), busy members split them evenly, and a member that
joins, leaves or is killed moves the split within a second. Members are asyncio
tasks, and separate OS processes (``python -m enrich.quota._drive``), and, on
Redis, processes of two "hosts" (their own HOME and cache folder).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import os
import random
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from redis_server import RedisServer

from enrich.emulator.stats import max_in_window
from enrich.errors import InputError, UsageError
from enrich.quota import QuotaEvent, QuotaLostError, QuotaParams, open_quota, redact_url
from enrich.quota._core import MemberState, step
from enrich.quota._types import MemberInfo

PACE = 10 * QuotaParams().headroom  # the budget's pace at --rate 10
PACE20 = 20 * QuotaParams().headroom  # … and at --rate 20
SECRET = "s3cret-pw"


# -- helpers -----------------------------------------------------------------


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    """``redis_server(password=None, port=None)`` starts a real redis-server; all stop after."""
    servers: list[RedisServer] = []

    def start(**kwargs: object) -> RedisServer:
        try:
            server = RedisServer(tmp_path / f"redis{len(servers)}", **kwargs)  # type: ignore[arg-type]
        except RuntimeError as exc:
            pytest.fail(str(exc))
        servers.append(server.start())
        return server

    yield start
    for server in servers:
        server.stop()


def count(times: list[float], start: float, end: float) -> int:
    return sum(1 for t in times if start <= t < end)


def drive(store: str, *, duration: float, rate: float = 10.0, host: str | None = None,
          env: dict[str, str] | None = None, tasks: int = 2,
          budget: str = "AK") -> subprocess.Popen[str]:
    """A member in its own process; it joins, says ``ready``, and waits for :func:`go`."""
    cmd = [sys.executable, "-m", "enrich.quota._drive", "--store", store, "--budget", budget,
           "--rate", str(rate), "--tasks", str(tasks), "--start-at", "stdin",
           "--duration", str(duration)]
    if host:
        cmd += ["--host", host]
    return subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def go(*procs: subprocess.Popen[str], offsets: tuple[float, ...] = ()) -> float:
    """Once every member has joined, start them together (or ``offsets`` later); the start."""
    for proc in procs:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("ready "), (line, proc.stderr.read() if proc.stderr else "")
    start = time.time() + 0.3
    for i, proc in enumerate(procs):
        assert proc.stdin is not None
        proc.stdin.write(f"{start + (offsets[i] if i < len(offsets) else 0.0)!r}\n")
        proc.stdin.flush()
    return start


def grants(proc: subprocess.Popen[str], timeout: float = 30) -> list[float]:
    out, err = proc.communicate(timeout=timeout)
    assert "Traceback" not in err, err
    return [float(line) for line in out.splitlines() if line[:1].isdigit()]


def host_env(tmp_path: Path, name: str) -> dict[str, str]:
    """The environment of another "host": its own HOME and cache folder."""
    home = tmp_path / name
    (home / ".cache").mkdir(parents=True)
    return {**os.environ, "HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache")}


def assert_within_rate(*members: list[float], rate: int = 10) -> None:
    together = sorted(t for times in members for t in times)
    assert max_in_window(together) <= rate, max_in_window(together)


def assert_split(members: list[list[float]], start: float, end: float, *,
                 least_share: float, pace: float = PACE, least_use: float = 0.9) -> None:
    counts = [count(times, start, end) for times in members]
    total = sum(counts)
    assert total >= least_use * pace * (end - start), counts
    for n in counts:
        assert n >= least_share * total, counts


# -- the pure algorithm --------------------------------------------------------


def simulate(specs: list[dict[str, float]], *, until: float, params: QuotaParams,
             seed: int = 0) -> dict[str, list[tuple[float, float]]]:
    """Members asking by ``step`` in simulated time: ``{name: [(slot, pace at grant)]}``.

    A spec has ``rate``, ``join``, ``leave`` (it stops asking; the store forgets it
    ``ttl_s`` later, as after a kill) and ``period`` (0: it asks again as soon as its
    slot comes, as a run with requests queued does; else every ``period`` seconds).
    """
    rng = random.Random(seed)
    tat = pace = stamp = 0.0
    states: dict[str, MemberState] = {}
    out: dict[str, list[tuple[float, float]]] = {str(i): [] for i in range(len(specs))}
    queue = [(spec["join"], str(i)) for i, spec in enumerate(specs)]
    heapq.heapify(queue)
    while queue:
        now, name = heapq.heappop(queue)
        spec = specs[int(name)]
        if now >= until or now >= spec["leave"]:
            continue
        # heartbeats keep a member live until it leaves, and the store forgets it ttl_s later
        live = {who: s for who, s in states.items()
                if now < specs[int(who)]["leave"] + params.ttl_s}
        done = step(now=now, me=name, rate=spec["rate"], want=1, tat=tat, last_pace=pace,
                    stamp=stamp, members=live, params=params)
        tat, pace, stamp, states[name] = done.tat, done.pace, now, done.me
        out[name] += [(slot, done.pace) for slot in done.slots]
        delay = rng.uniform(0.0005, 0.005)  # the wake-up and the transaction
        later = done.slots[-1] + delay
        if spec["period"]:
            later = max(later, now + spec["period"])
        heapq.heappush(queue, (later, name))
    return out


member_specs = st.lists(
    st.fixed_dictionaries({
        "rate": st.sampled_from([2.0, 5.0, 10.0, 10.0, 25.0]),
        "join": st.floats(0, 3),
        "leave": st.floats(1, 8),
        "period": st.sampled_from([0.0, 0.0, 0.3, 1.0]),
    }),
    min_size=1, max_size=5,
)


@settings(max_examples=60, deadline=None)
@given(specs=member_specs, seed=st.integers(0, 1000))
def test_slots_are_never_closer_than_the_pace(specs: list[dict[str, float]], seed: int) -> None:
    """In grant order, each slot is at least 1/pace after the one before: no burst, ever."""
    params = QuotaParams()
    out = simulate(specs, until=8.0, params=params, seed=seed)
    granted = sorted(g for slots in out.values() for g in slots)
    for (before, pace), (after, _) in itertools.pairwise(granted):
        assert after - before >= 1 / pace - 1e-9
    if len({spec["rate"] for spec in specs}) == 1:
        assert max_in_window([s for s, _ in granted]) <= specs[0]["rate"]


@settings(max_examples=40, deadline=None)
@given(specs=member_specs, low=st.sampled_from([1.0, 2.0, 3.0, 7.0]), seed=st.integers(0, 1000))
def test_the_smallest_rate_bounds_every_second(specs: list[dict[str, float]], low: float,
                                                 seed: int) -> None:
    """A member at the smallest --rate, there all along: no second holds more than it allows."""
    first = {"rate": low, "join": 0.0, "leave": 99.0, "period": 0.5}
    out = simulate([first, *specs], until=8.0, params=QuotaParams(), seed=seed)
    assert max_in_window(sorted(s for slots in out.values() for s, _ in slots)) <= low


def test_simulated_busy_members_split_evenly_and_a_light_one_costs_nothing() -> None:
    params = QuotaParams()
    busy = {"rate": 10.0, "join": 0.0, "leave": 99.0, "period": 0.0}
    for n in (2, 3):
        out = simulate([busy] * n, until=10.0, params=params)
        counts = [count([s for s, _ in out[str(i)]], 1, 9) for i in range(n)]
        assert sum(counts) >= 0.97 * PACE * 8
        assert min(counts) >= 0.95 * sum(counts) / n, counts
    light = {"rate": 10.0, "join": 0.0, "leave": 99.0, "period": 1.0}
    out = simulate([busy, light], until=10.0, params=params)
    assert count([s for s, _ in out["0"]], 1, 9) + count([s for s, _ in out["1"]], 1, 9) \
        >= 0.97 * PACE * 8


def test_simulated_joiner_and_killed_member_move_the_split_within_a_second() -> None:
    params = QuotaParams()
    a = {"rate": 10.0, "join": 0.0, "leave": 99.0, "period": 0.0}
    late = {"rate": 10.0, "join": 3.0, "leave": 6.0, "period": 0.0}  # then killed
    out = simulate([a, late], until=9.0, params=params)
    first, second = ([s for s, _ in out[k]] for k in ("0", "1"))
    assert second[0] <= 3.0 + 0.2
    assert count(second, 4, 6) >= 0.45 * PACE * 2
    assert count(first, 4, 6) >= 0.45 * PACE * 2
    assert count(first, 7, 9) >= 0.95 * PACE * 2


def test_simulated_survivors_of_a_kill_take_its_share_within_0_6_s() -> None:
    """Each member's spacing is taken when it asks: once a killed member stops counting
    as busy, the next slot of each survivor already follows the new split (a spacing
    fixed at the previous grant held them at the old split one slot longer: 0.80 s)."""
    gap = 1 / PACE
    busy = {"rate": 10.0, "join": 0.0, "leave": 99.0, "period": 0.0}
    killed = {**busy, "leave": 6.0}
    for seed in range(5):
        out = simulate([busy, killed, busy], until=9.0, params=QuotaParams(), seed=seed)
        after = sorted(s for k in ("0", "2") for s, _ in out[k] if s >= 6.0)
        full = next(after[i] for i in range(len(after) - 5)
                    if all(after[j + 1] - after[j] < 1.2 * gap for j in range(i, i + 5)))
        assert full - 6.0 <= 0.6, (seed, full - 6.0)


def test_smallest_rate_wins() -> None:
    params = QuotaParams()
    out = simulate([{"rate": 10.0, "join": 0.0, "leave": 99.0, "period": 0.0},
                    {"rate": 4.0, "join": 0.0, "leave": 99.0, "period": 0.0}],
                   until=6.0, params=params)
    together = sorted(s for slots in out.values() for s, _ in slots)
    assert max_in_window(together) <= 4
    assert count(together, 1, 5) >= 0.95 * 4 * QuotaParams().headroom * 4


def test_a_clock_stepped_back_keeps_the_spacing_and_does_not_stall() -> None:
    """The clock read 5000 at the last grant and reads 1000 now: the budget moves back by
    4000, exactly (its next slot stays one spacing after the last, in the new clock)."""
    params = QuotaParams()
    stale = {"a": MemberState(rate=10.0, next=5000.05, last=4999.95)}
    done = step(now=1000.0, me="a", rate=10.0, want=1, tat=4999.95 + 1 / PACE,
                last_pace=PACE, stamp=5000.0, members=stale, params=params)
    assert done.slots == [pytest.approx(999.95 + 1 / PACE)]


# -- stores: spec, describe, errors -------------------------------------------


def test_spec_default_off_path_and_redis(tmp_path: Path) -> None:
    default = open_quota(None, cache_dir=tmp_path / "c")
    assert default is not None and default.describe() == str(tmp_path / "c" / "quota.sqlite3")
    assert open_quota("OFF", cache_dir=tmp_path) is None
    assert open_quota("q.db", cache_dir=tmp_path).describe() == str(Path.cwd() / "q.db")  # type: ignore[union-attr]
    redis = open_quota(f"redis://:{SECRET}@db.example:6380/2", cache_dir=tmp_path)
    assert redis is not None and redis.describe() == "redis://db.example:6380/2"
    assert SECRET not in repr(redis.backend.__dict__)
    with pytest.raises(UsageError, match=r"^--quota: unknown store http://…; give a file path"):
        open_quota(f"http://u:{SECRET}@x/", cache_dir=tmp_path)
    with pytest.raises(UsageError) as bad_port:
        open_quota(f"redis://:{SECRET}@host:port/0", cache_dir=tmp_path)
    assert SECRET not in str(bad_port.value)


@pytest.mark.parametrize(("url", "shown"), [
    (f"redis://:{SECRET}@127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
    (f"rediss://app:{SECRET}@cache.internal:6380/1", "rediss://app@cache.internal:6380/1"),
    (f"redis://h/0?password={SECRET}&socket_timeout=3", "redis://h/0?socket_timeout=3"),
    ("redis://[::1]:6379", "redis://[::1]:6379"),
])
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_sqlite_store_errors_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "folder.sqlite3").mkdir()
    ledger = tmp_path / "ledger.sqlite3"
    with sqlite3.connect(ledger) as conn:
        conn.execute("CREATE TABLE results (k TEXT)")

    async def join(spec: str) -> None:
        quota = open_quota(spec, cache_dir=tmp_path)
        assert quota is not None
        async with quota, quota.join("AK", rate=10):
            pass

    for spec, message in [
        (str(tmp_path / "folder.sqlite3"), "is a folder, not a quota file"),
        (str(ledger), "is another program's database, not a quota store"),
    ]:
        with pytest.raises(InputError, match=message) as err:
            asyncio.run(join(spec))
        assert "\n" not in str(err.value)
        assert str(err.value).startswith(f"quota store {spec} unusable: ")


def test_sqlite_status_never_creates_the_store_and_lists_live_runs(tmp_path: Path) -> None:
    path = tmp_path / "cache" / "quota.sqlite3"

    async def scenario() -> None:
        quota = open_quota(None, cache_dir=path.parent)
        assert quota is not None
        async with quota:
            assert await quota.status() == []
            assert not path.exists()
            async with quota.join("AK@cams.ap-southeast-1.aliyuncs.com", rate=10, pid=4242,
                                  host="box", input="leads.csv") as member:
                for _ in range(5):
                    await member.acquire()
                (budget,) = await quota.status()
            assert await quota.status() == []  # it left

        assert budget.name == "AK@cams.ap-southeast-1.aliyuncs.com"
        assert (budget.rate, budget.pace) == (10, PACE)
        (run,) = budget.members
        assert (run.pid, run.host, run.input, run.rate, run.busy) == (4242, "box", "leads.csv",
                                                                        10, True)
        assert run.recent_rate > 0

    asyncio.run(scenario())


# -- SQLite, real time ---------------------------------------------------------


def test_tasks_on_one_sqlite_file_share_and_take_over_when_one_leaves(tmp_path: Path) -> None:
    """Three members in one process (each its own store handle); one leaves at 1.2 s."""
    store = str(tmp_path / "quota.sqlite3")

    async def member(stop_after: float, times: list[float], t0: float,
                     budget: str = "AK") -> None:
        quota = open_quota(store, cache_dir=tmp_path)
        assert quota is not None
        async with quota, quota.join(budget, rate=20) as m:
            async def worker() -> None:
                while time.time() < t0 + stop_after:
                    await m.acquire()
                    times.append(time.time())
            await asyncio.gather(*(worker() for _ in range(3)))

    async def scenario() -> list[list[float]]:
        t0 = time.time()
        runs: list[list[float]] = [[], [], [], []]
        await asyncio.gather(member(2.6, runs[0], t0), member(2.6, runs[1], t0),
                             member(1.2, runs[2], t0), member(2.6, runs[3], t0, "OTHER"))
        return [[t - t0 for t in times] for times in runs]

    runs = asyncio.run(scenario())
    other = runs.pop()
    assert count(other, 0.2, 2.6) >= 0.9 * PACE20 * 2.4  # another budget: all of its own
    assert_within_rate(*runs, rate=20)
    assert_split(runs, 0.2, 1.2, least_share=0.25, pace=PACE20)
    # the last second before the members stop, four members' tasks and SQLite threads in
    # one process on a loaded 2-core machine: at least 85 % of the pace
    assert_split(runs[:2], 1.6, 2.6, least_share=0.4, pace=PACE20, least_use=0.85)


def test_processes_on_one_sqlite_file_with_a_late_joiner_that_finishes(tmp_path: Path) -> None:
    """The late run joins at once but asks only 1.5 s later: until then it costs nothing."""
    store = str(tmp_path / "quota.sqlite3")
    first, late = drive(store, duration=5.0), drive(store, duration=1.5)
    start = go(first, late, offsets=(0.0, 1.5))
    a, b = grants(first), grants(late)
    assert_within_rate(a, b)
    a, b = [t - start for t in a], [t - start for t in b]
    assert count(a, 0.2, 1.5) >= 0.9 * PACE * 1.3  # alone: all of it
    assert b[0] < 1.5 + 0.3  # the joiner's first slot comes at once …
    assert_split([a, b], 1.5 + 0.3, 3.0, least_share=0.4)  # … and its share within a second
    assert count(a, b[-1] + 1.0, 5.0) >= 0.9 * PACE * (4.0 - b[-1])  # it is gone: all of it


def test_processes_on_one_sqlite_file_survive_a_kill(tmp_path: Path) -> None:
    store = str(tmp_path / "quota.sqlite3")
    procs = [drive(store, duration=4.0) for _ in range(3)]
    start = go(*procs)
    time.sleep(start + 1.5 - time.time())
    procs[2].kill()  # kill -9: no goodbye, no cleanup
    runs = [[t - start for t in grants(p)] for p in procs]
    assert_within_rate(*runs)
    assert_split(runs, 0.2, 1.5, least_share=0.25)
    assert_split(runs[:2], 2.5, 4.0, least_share=0.4)


# -- Redis, real server ----------------------------------------------------------


def test_two_hosts_on_one_redis_share_it_and_survive_a_kill(
    tmp_path: Path, redis_server: Callable[..., RedisServer],
) -> None:
    server = redis_server(password=SECRET)
    a = drive(server.url, duration=6.0, host="host-a", env=host_env(tmp_path, "host-a"))
    b_env = host_env(tmp_path, "host-b")
    b = drive(server.url, duration=3.5, host="host-b", env=b_env)
    c = drive(server.url, duration=5.0, host="host-b", env=b_env)
    start = go(a, b, c)

    async def status_at(moment: float) -> list[object]:
        await asyncio.sleep(moment - time.time())
        quota = open_quota(server.url, cache_dir=tmp_path)
        assert quota is not None
        async with quota:
            return list(await quota.status())

    (budget,) = asyncio.run(status_at(start + 1.2))
    time.sleep(max(0.0, start + 1.5 - time.time()))
    c.kill()
    runs = [[t - start for t in grants(p)] for p in (a, b, c)]

    assert_within_rate(*runs)
    assert_split(runs, 0.2, 1.5, least_share=0.25)
    assert_split(runs[:2], 2.5, 3.5, least_share=0.4)
    b_end = runs[1][-1]  # b finished: a has it all within a second
    assert count(runs[0], b_end + 1, 6.0) >= 0.9 * PACE * (5.0 - b_end)
    assert budget.name == "AK" and budget.rate == 10  # type: ignore[attr-defined]
    members = budget.members  # type: ignore[attr-defined]
    assert sorted(m.host for m in members) == ["host-a", "host-b", "host-b"]
    assert all(m.input == "drive" and m.recent_rate > 0.5 for m in members), members
    assert sum(m.recent_rate for m in members) <= 10.5, members


def test_redis_unreachable_at_start_is_one_line_without_the_password(tmp_path: Path) -> None:
    with socket_closed() as port:
        url = f"redis://:{SECRET}@127.0.0.1:{port}/0"

        async def join() -> None:
            quota = open_quota(url, cache_dir=tmp_path)
            assert quota is not None
            async with quota, quota.join("AK", rate=10):
                pytest.fail("joined a store that is not there")

        with pytest.raises(InputError) as err:
            asyncio.run(join())
    line = str(err.value)
    assert line.startswith(f"quota store redis://127.0.0.1:{port}/0 unreachable: ")
    assert line.endswith("; check --quota, or run with --quota off")
    assert "\n" not in line and SECRET not in line


def test_redis_wrong_password_is_one_line_without_either_password(
    tmp_path: Path, redis_server: Callable[..., RedisServer],
) -> None:
    server = redis_server(password=SECRET)
    wrong = "not-the-" + SECRET

    async def join() -> None:
        quota = open_quota(f"redis://:{wrong}@127.0.0.1:{server.port}/0", cache_dir=tmp_path)
        assert quota is not None
        async with quota, quota.join("AK", rate=10):
            pass

    with pytest.raises(InputError) as err:
        asyncio.run(join())
    assert "unreachable" in str(err.value) and SECRET not in str(err.value)


def test_redis_lost_mid_run_waits_then_stops_and_comes_back_if_it_can(
    tmp_path: Path, redis_server: Callable[..., RedisServer],
) -> None:
    server = redis_server(password=SECRET)
    events: list[QuotaEvent] = []
    params = QuotaParams(lost_timeout_s=1.5, retry_s=0.1)

    async def run(restart_after: float | None) -> tuple[list[float], float, BaseException | None]:
        quota = open_quota(server.url, cache_dir=tmp_path, params=params, on_event=events.append)
        assert quota is not None
        times: list[float] = []
        killed = 0.0
        async with quota, quota.join("AK", rate=10) as member:
            for _ in range(5):
                await member.acquire()
            server.kill()
            killed = time.time()
            if restart_after is not None:
                asyncio.get_running_loop().call_later(restart_after, server.start)
            try:
                for _ in range(10):
                    await member.acquire()
                    times.append(time.time())
            except QuotaLostError as exc:
                return times, killed, exc
        return times, killed, None

    times, killed, error = asyncio.run(run(restart_after=None))
    assert isinstance(error, QuotaLostError)
    assert count(times, killed, killed + 99) <= 1  # the slot it held, and not one more
    assert 1.5 <= time.time() - killed < 1.5 + 3
    line = str(error)
    assert re.match(rf"quota store redis://127\.0\.0\.1:{server.port}/0 unreachable for \d s \(",
                    line), line
    assert "\n" not in line and SECRET not in line
    assert [e.kind for e in events][:1] == ["lost"]

    events.clear()
    server.start()
    times, killed, error = asyncio.run(run(restart_after=0.5))  # a new, empty server
    assert error is None and len(times) == 10
    assert times[0] - killed >= 0.5  # nothing granted while it was gone
    assert [e.kind for e in events] == ["lost", "restored"]
    assert all(SECRET not in e.message and SECRET not in e.store for e in events)


def test_lua_script_and_python_step_grant_the_same_slots(
    tmp_path: Path, redis_server: Callable[..., RedisServer],
) -> None:
    """The Redis script is ``step`` in Lua: fed the same clock, both give the same answers."""
    server = redis_server()
    params = QuotaParams()
    rng = random.Random(7)
    rates = {"a": 10.0, "b": 10.0, "c": 4.0}

    async def scenario() -> None:
        quota = open_quota(server.url, cache_dir=tmp_path, params=params)
        assert quota is not None
        backend = quota.backend
        tat, pace, stamp, states, seen = 0.0, 0.0, 0.0, {}, {}
        now = 1_700_000_000.0
        async with quota:
            for _ in range(300):
                now += rng.choice([0.0, 0.001, 0.02, 0.1, 0.3, 1.2, -0.5])  # and a clock step
                who = rng.choice("aabbc")
                want = rng.choice([1, 1, 3, 50])
                backend.now_override = now  # type: ignore[attr-defined]
                info = MemberInfo(id=who, budget="B", rate=rates[who], pid=1, host="h",
                                  input="", joined=now)
                lua = await backend.take_raw(info, want)  # type: ignore[attr-defined]
                live = {k: s for k, s in states.items()
                        if now - params.ttl_s <= seen[k] <= now + params.ttl_s or k == who}
                done = step(now=now, me=who, rate=rates[who], want=want, tat=tat,
                            last_pace=pace, stamp=stamp, members=live, params=params)
                tat, pace, stamp = done.tat, done.pace, now
                states[who], seen[who] = done.me, now
                states = {k: s for k, s in states.items() if k in live or k == who}
                assert lua == (now, done.pace, done.busy, done.slots)

    asyncio.run(scenario())


class socket_closed:
    """A port on 127.0.0.1 with nothing listening (bound, then released)."""

    def __enter__(self) -> int:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        return None


def test_a_store_of_another_layout_is_started_anew(tmp_path: Path) -> None:
    """A quota file written by another version of enrich holds seconds of state: reset it."""
    import sqlite3

    path = tmp_path / "quota.sqlite3"
    old = sqlite3.connect(path)
    old.executescript("CREATE TABLE budget (name TEXT); CREATE TABLE member (id TEXT);"
                      "CREATE TABLE grants (id TEXT); PRAGMA user_version = 1;")  # fmt: skip
    old.close()

    async def one_slot() -> float:
        quota = open_quota(str(path), cache_dir=tmp_path)
        assert quota is not None
        async with quota, quota.join("AK", rate=10) as member:
            return await member.acquire()

    assert asyncio.run(one_slot()) >= 0
    version = sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0]
    assert version >= 2


class _StubbornClient:
    """The SQLite store behind a client that swallows a heartbeat's cancel and never
    finishes closing (as a client library with a bug might)."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.remote = real.remote
        self.beats_after_cancel = 0
        self._cancelled = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    async def heartbeat(self, info: MemberInfo) -> None:
        if self._cancelled:
            self.beats_after_cancel += 1
        try:
            await asyncio.sleep(0.05)
            await self._real.heartbeat(info)
        except asyncio.CancelledError:
            self._cancelled = True  # swallowed

    async def aclose(self) -> None:
        await self._real.aclose()
        await asyncio.Event().wait()  # never returns unless cancelled


def test_a_run_leaves_in_bounded_time_whatever_its_store_client_does(tmp_path: Path) -> None:
    """A heartbeat whose cancel is swallowed stops all the same, and a close that hangs
    is given up: the run's exit is never held up (once seen: a run that never exited)."""
    from enrich.quota import Quota

    real = open_quota(str(tmp_path / "q.sqlite3"), cache_dir=tmp_path)
    assert real is not None
    client = _StubbornClient(real.backend)
    quota = Quota(client, params=QuotaParams(heartbeat_s=0.01))

    async def scenario() -> float:
        async with quota, quota.join("AK", rate=10) as member:
            await member.acquire()
            await asyncio.sleep(0.3)  # heartbeats going
            left = time.monotonic()
        return time.monotonic() - left

    took = asyncio.run(asyncio.wait_for(scenario(), timeout=10))
    assert took < 2.5
    assert client.beats_after_cancel <= 1  # the loop stopped after the swallowed cancel


@pytest.mark.parametrize("store", ["sqlite", "redis"])
def test_a_fast_run_with_one_request_waiting_is_not_held_to_one_slot_a_lead(
    tmp_path: Path, redis_server: Callable[..., RedisServer], store: str
) -> None:
    """Slots are granted ``lead_s`` (30 ms) ahead: a run above 1 / lead_s asks for the next
    ones before its last held slot comes, or one waiting request would get ~33 a second
    at any --rate. Still never more than --rate in a sliding second."""
    spec = str(tmp_path / "q.sqlite3") if store == "sqlite" else redis_server().url
    quota = open_quota(spec, cache_dir=tmp_path)
    assert quota is not None

    async def scenario() -> list[float]:
        times: list[float] = []
        async with quota, quota.join("AK", rate=500) as member:
            start = time.monotonic()
            while time.monotonic() - start < 1.0:
                await member.acquire()
                times.append(time.monotonic())
        return times

    times = asyncio.run(scenario())
    assert len(times) >= 250  # one slot a lead: 33
    assert max_in_window(times) <= 500


def test_a_slow_run_at_a_high_rate_neither_hoards_slots_nor_sends_them_late(
    tmp_path: Path,
) -> None:
    """--rate 1000 beside a run whose 4 requests each take 100 ms (about 30 a second):
    the slow one is granted about what it uses (asking for one lead of slots at its
    --rate, ~30 a take, it would hold hundreds it never sends and count as taking the
    budget), and no slot held past its moment is sent late: together never above 1000
    in a sliding second."""
    store = str(tmp_path / "q.sqlite3")
    got: dict[str, tuple[int, int]] = {}

    async def member(name: str, times: list[float], *, workers: int, busy_s: float,
                     t0: float) -> None:
        quota = open_quota(store, cache_dir=tmp_path)
        assert quota is not None
        async with quota, quota.join("AK", rate=1000) as m:
            async def worker() -> None:
                while time.monotonic() < t0 + 1.5:
                    await m.acquire()
                    times.append(time.monotonic() - t0)
                    await asyncio.sleep(busy_s)
            await asyncio.gather(*(worker() for _ in range(workers)))
            got[name] = (m.granted, m.received)

    async def scenario() -> tuple[list[float], list[float]]:
        t0 = time.monotonic()
        slow: list[float] = []
        fast: list[float] = []
        await asyncio.gather(member("slow", slow, workers=4, busy_s=0.1, t0=t0),
                             member("fast", fast, workers=16, busy_s=0.0, t0=t0))
        return slow, fast

    slow, fast = asyncio.run(scenario())
    assert max_in_window(sorted(slow + fast)) <= 1000
    used, received = got["slow"]
    assert count(slow, 0.5, 1.5) >= 20  # it gets what it asks for (4 / (0.1 s + its waits))
    assert received <= 3 * used + 60, got  # about what it used, not a lead's slots a take
    assert count(fast, 0.5, 1.5) >= 0.45 * (PACE * 100 - 40)  # and the fast one is not starved
