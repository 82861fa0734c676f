"""Runs sharing the account's quota (issue 12, SPEC.md "Sharing the account's quota").

Several ``enrich run`` processes on one AccessKey against ONE emulator with the
account's strict limit (10 in any sliding second, ``System.LimitControl`` beyond)
and 150 ± 50 ms latency (``--latency-ms``, ``--jitter-ms``), 200 numbers per run
(each run its own numbers, ``--no-cache``), in four scenarios:

- ``two``:   two runs started together;
- ``late``:  a second run started ``--late-s`` (8) seconds after the first run's
  first request;
- ``three``: three runs started together;
- ``kill``:  three runs, one ``kill -9``'d ``--kill-after-s`` (10) seconds after its
  first request.

Each with the default quota (the SQLite file in the user's cache folder, shared
because the runs share HOME/XDG_CACHE_HOME) and side by side with ``--quota off``.

The emulator is its own process (``EmulatorServer`` in a ``multiprocessing``
child) that notes the number of every admitted request, so each arrival is
attributed to its run (``86139<run><serial>``); its clock is ``time.monotonic``,
system-wide, so the kill's moment compares with it. Printed per scenario:

- *throttled*: ``System.LimitControl`` answers, share of all arrivals;
- *max in 1 s*: most arrivals (admitted or not) in any sliding second;
- *total/s*: answered (admitted) requests per second from the first arrival to
  the last, i.e. while any run has work (target ≥ 9.5);
- *each run/s while all busy*: each run's admitted requests per second in the
  window where every run (the killed one excepted after its kill) still had
  work (target, two runs: each ≥ 4.5);
- *after*: ``late``: the late run's rate from 1 s after the first run's last
  request to its own last (target ≥ 9.2), and in that first second;
  ``kill``: the two survivors together from 1 s after the kill to the first
  survivor's end (target ≥ 9.5 total), and in that first second.

Targets are printed, not asserted (tests/test_quota_runs.py asserts the
property on short runs). Every run is bounded in time.

    .venv/bin/python bench/bench_share.py                        # 150 ms, ~8 min
    .venv/bin/python bench/bench_share.py --latency-ms 1000      # 1 s ± 50 ms, ~8 min
    .venv/bin/python bench/bench_share.py --only two,late --quota default
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from _common import PY, ROOT, clean_env, machine, table, write_phone_csv

from enrich.emulator.stats import max_in_window

SCENARIOS = ("two", "late", "three", "kill")
QUOTAS = ("default", "redis", "off")
#: the Redis store of the ``redis`` variant (started by main when asked for)
REDIS_URL: list[str] = []


# -- the emulator, in its own process, noting the number of each admitted request ------


def _serve(conn: Connection, rate_limit: float, latency_s: float, jitter_s: float) -> None:
    from enrich.emulator import EmulatorConfig, EmulatorServer

    server = EmulatorServer(
        EmulatorConfig(rate_limit=rate_limit, latency_s=latency_s, jitter_s=jitter_s)
    ).start()
    tagged: list[tuple[float, str]] = []
    original = server.stats.next_attempt

    def next_attempt(key: tuple[str, str]) -> int:
        tagged.append((time.monotonic(), key[1]))  # same step as the arrival's record
        return original(key)

    server.stats.next_attempt = next_attempt  # type: ignore[method-assign]
    conn.send(server.url)
    try:
        while True:
            cmd = conn.recv()
            if cmd == "reset":
                server.stats.reset()
                tagged.clear()
                conn.send(True)
            elif cmd == "tagged":
                conn.send(list(tagged))
            elif cmd == "stats":
                conn.send({"arrivals": [t for t, _ in server.stats.arrivals],
                           "codes": dict(server.stats.codes), "tagged": list(tagged)})
            else:
                break
    finally:
        server.stop()


class TaggedEmulator:
    def __init__(self, *, latency_ms: float, jitter_ms: float, rate_limit: float = 10) -> None:
        self.args = (rate_limit, latency_ms / 1000, jitter_ms / 1000)
        self.url = ""

    def __enter__(self) -> TaggedEmulator:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child, *self.args), daemon=True)
        self.proc.start()
        if not self.conn.poll(30):
            raise RuntimeError("the emulator did not start")
        self.url = self.conn.recv()
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError):
            self.conn.send("stop")
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.kill()

    def ask(self, cmd: str) -> Any:
        self.conn.send(cmd)
        return self.conn.recv()

    def first_of(self, run: int, timeout_s: float = 30) -> float:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            mine = [t for t, phone in self.ask("tagged") if run_of(phone) == run]
            if mine:
                return float(mine[0])
            time.sleep(0.1)
        raise RuntimeError(f"run {run} sent nothing in {timeout_s} s")


def run_of(phone: str) -> int:
    return int(phone[5:7])


def phones(run: int, n: int) -> list[str]:
    return [f"86139{run:02d}{i:06d}" for i in range(n)]


# -- runs ------------------------------------------------------------------------------


@dataclass
class Run:
    index: int
    proc: subprocess.Popen[bytes]
    folder: Path
    started: float
    ended: float = 0.0
    killed_at: float | None = None

    def summary(self) -> dict[str, Any]:
        path = self.folder / "summary.json"
        return json.loads(path.read_text()) if path.exists() else {}


def start_run(tmp: Path, url: str, index: int, n: int, quota: str, env: dict[str, str]) -> Run:
    folder = tmp / f"run{index}"
    folder.mkdir(parents=True, exist_ok=True)
    source = write_phone_csv(folder / "in.csv", phones(index, n))
    cmd = [PY, "-m", "enrich", "run", str(source), "-o", str(folder / "out.csv"),
           "--errors", str(folder / "errors.csv"), "--summary", str(folder / "summary.json"),
           "--endpoint", url, "--cust-space-id", "bench-share", "--no-progress",
           "--log-format", "json", "--no-cache"]
    if quota == "off":
        cmd += ["--quota", "off"]
    elif quota == "redis":
        cmd += ["--quota", REDIS_URL[0]]
    err = open(folder / "stderr.log", "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=err)
    err.close()
    return Run(index, proc, folder, time.monotonic())


def wait(runs: list[Run], deadline: float) -> None:
    for run in runs:
        try:
            run.proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            run.proc.kill()
            run.proc.wait()
            print(f"  ! run {run.index} killed at the scenario's deadline", file=sys.stderr)
        run.ended = run.ended or time.monotonic()


# -- figures --------------------------------------------------------------------------


def rate(times: list[float], start: float, end: float) -> float:
    """Arrivals per second in ``[start, end)`` (0 for an empty window)."""
    return sum(1 for t in times if start <= t < end) / (end - start) if end > start else 0.0


def figures(stats: dict[str, Any], runs: list[Run], scenario: str) -> dict[str, Any]:
    arrivals = sorted(stats["arrivals"])
    codes = stats["codes"]
    by_run = {r.index: sorted(t for t, p in stats["tagged"] if run_of(p) == r.index)
              for r in runs}
    admitted = sorted(t for t, _ in stats["tagged"])
    throttled = int(codes.get("System.LimitControl", 0))
    first, last = admitted[0], admitted[-1]
    out: dict[str, Any] = {
        "arrivals": len(arrivals),
        "throttled": throttled,
        "throttled_pct": 100 * throttled / len(arrivals) if arrivals else 0.0,
        "max_1s": max_in_window(arrivals),
        "total_rate": (len(admitted) - 1) / (last - first) if last > first else 0.0,
    }
    # while all busy: from the last run's first request to the first run's last (the
    # killed run counts until its kill)
    busy_start = max(times[0] for times in by_run.values())
    busy_end = min(times[-1] for times in by_run.values())
    out["busy_window_s"] = busy_end - busy_start
    out["each_busy"] = [rate(by_run[r.index], busy_start, busy_end) for r in runs]
    summaries = [r.summary() for r in runs]
    out["lost"] = sum(s.get("error_rows", 0) for s in summaries if s)
    out["quota_wait"] = [s.get("quota_wait_s") for s in summaries]
    out["exits"] = [r.proc.returncode for r in runs]
    out["run_throttled"] = [s.get("throttled") for s in summaries]
    out["wall"] = max(r.ended for r in runs) - min(r.started for r in runs)
    if scenario == "late":
        a, b = by_run[0], by_run[1]
        out["join_after_s"] = b[0] - a[0]
        out["before_join"] = rate(a, a[0], b[0])
        # the run left alone: whichever of the two finished last
        gone, left = (a, b) if a[-1] <= b[-1] else (b, a)
        out["left"] = "late" if left is b else "first"
        out["after_first_s"] = rate(left, gone[-1], gone[-1] + 1.0)
        out["after"] = rate(left, gone[-1] + 1.0, left[-1])
        out["takeover_s"] = takeover(left, gone[-1])
    if scenario == "kill":
        killed = next(r.killed_at for r in runs if r.killed_at is not None)
        survivors = [by_run[r.index] for r in runs if r.killed_at is None]
        both = sorted(t for times in survivors for t in times)
        end = min(times[-1] for times in survivors)
        out["after_first_s"] = rate(both, killed, killed + 1.0)
        out["after"] = rate(both, killed + 1.0, end)
        out["after_each"] = [rate(times, killed + 1.0, end) for times in survivors]
        out["takeover_s"] = takeover([t for t in both if t <= end], killed)
        out["killed_sent_after"] = sum(1 for t in by_run[runs[-1].index] if t > killed + 0.2)
    return out


def takeover(times: list[float], event: float, *, target: float = 9.2, span: int = 9
             ) -> float | None:
    """Seconds from ``event`` to the first request of ``times`` after it from which the
    next ``span`` gaps run at ``target``/s or more; None if it never does."""
    after = [t for t in times if t >= event]
    for i in range(len(after) - span):
        if span / (after[i + span] - after[i]) >= target:
            return after[i] - event
    return None


# -- scenarios -------------------------------------------------------------------------


def scenario(name: str, quota: str, emu: TaggedEmulator, tmp: Path, args: argparse.Namespace
             ) -> dict[str, Any]:
    """One scenario, bounded by ``--max-s``: its figures."""
    time.sleep(1.2)  # the emulator's sliding window empties
    emu.ask("reset")
    folder = tmp / f"{name}-{quota}-{time.time_ns()}"
    home = folder / "home"
    (home / ".cache").mkdir(parents=True)
    env = clean_env(HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"),
                    ALIBABA_CLOUD_ECS_METADATA_DISABLED="true")
    n = args.numbers
    deadline = time.monotonic() + args.max_s
    count = {"two": 2, "late": 2, "three": 3, "kill": 3}[name]
    runs: list[Run] = []
    if name == "late":
        runs.append(start_run(folder, emu.url, 0, n, quota, env))
        first = emu.first_of(0)
        time.sleep(max(0.0, first + args.late_s - time.monotonic()))
        runs.append(start_run(folder, emu.url, 1, n, quota, env))
    else:
        runs = [start_run(folder, emu.url, i, n, quota, env) for i in range(count)]
    if name == "kill":
        victim = runs[-1]
        first = emu.first_of(victim.index)
        time.sleep(max(0.0, first + args.kill_after_s - time.monotonic()))
        victim.proc.send_signal(signal.SIGKILL)
        victim.killed_at = victim.ended = time.monotonic()
        victim.proc.wait(10)
    wait(runs, deadline)
    stats = emu.ask("stats")
    out = figures(stats, runs, name)
    if args.dump is not None:
        args.dump.mkdir(parents=True, exist_ok=True)
        kill = next((r.killed_at for r in runs if r.killed_at is not None), None)
        (args.dump / f"{name}-{quota}.json").write_text(json.dumps(
            {"stats": stats, "killed_at": kill, "figures": out,
             "summaries": [r.summary() for r in runs]}))
    return out


def _fmt(values: list[float]) -> str:
    return " / ".join(f"{v:.2f}" for v in values)


def run_all(only: list[str], quotas: list[str], emu: TaggedEmulator, tmp: Path,
            args: argparse.Namespace, rows: list[list[object]]) -> None:
    for name in only:
        for quota in quotas:
            print(f"{name} / quota {quota} ...", file=sys.stderr, flush=True)
            f = scenario(name, quota, emu, tmp, args)
            rows.append(row(name, quota, f, args.numbers))
            print("  " + " | ".join(str(c) for c in rows[-1]), file=sys.stderr, flush=True)


def row(name: str, quota: str, f: dict[str, Any], n: int) -> list[object]:
    after = "–"
    took = "never" if f.get("takeover_s") is None else f"{f['takeover_s']:.2f} s"
    if name == "late":
        after = (f"{f['left']} run alone: ≥ 9.2/s {took} after the other's last request, "
                 f"{f['after']:.2f}/s from 1 s after it ({f['after_first_s']:.0f} in that "
                 f"first second); the late run joined {f['join_after_s']:.1f} s in, the "
                 f"first had {f['before_join']:.2f}/s alone")
    elif name == "kill":
        after = (f"survivors: ≥ 9.2/s {took} after the kill, {f['after']:.2f}/s "
                 f"({_fmt(f['after_each'])}) from 1 s after it ({f['after_first_s']:.0f} in "
                 f"its first second); the killed run sent {f['killed_sent_after']} after it")
    waits = "–" if quota == "off" else " / ".join(
        "killed" if w is None else f"{w:.1f}" for w in f["quota_wait"])
    return [
        name,
        quota,
        f"{len(f['exits'])} × {n}",
        f"{f['throttled']} ({f['throttled_pct']:.1f} %)",
        f["max_1s"],
        f"{f['total_rate']:.2f}",
        f"{_fmt(f['each_busy'])} (over {f['busy_window_s']:.1f} s)",
        after,
        f["lost"],
        waits,
        " ".join(str(e) for e in f["exits"]),
        f"{f['wall']:.1f}",
    ]


HEADERS = ["scenario", "quota", "runs × numbers", "throttled (of arrivals)", "max in 1 s",
           "total/s while any has work", "each run/s while all busy", "after one left",
           "rows lost", "quota_wait_s", "exits", "wall s"]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default=",".join(SCENARIOS), help=f"subset of {SCENARIOS}")
    parser.add_argument("--quota", default="default,off",
                        help=f"subset of {QUOTAS} [default,off]; redis starts a redis-server")
    parser.add_argument("--numbers", type=int, default=200, help="numbers per run [200]")
    parser.add_argument("--latency-ms", type=float, default=150.0)
    parser.add_argument("--jitter-ms", type=float, default=50.0)
    parser.add_argument("--late-s", type=float, default=8.0)
    parser.add_argument("--kill-after-s", type=float, default=10.0)
    parser.add_argument("--max-s", type=float, default=120.0, help="bound of one scenario")
    parser.add_argument("--dump", type=Path, default=None,
                        help="write each scenario's arrivals and figures here (JSON)")
    args = parser.parse_args()
    only = [s for s in args.only.split(",") if s]
    quotas = [q for q in args.quota.split(",") if q]
    if set(only) - set(SCENARIOS) or set(quotas) - set(QUOTAS):
        parser.error(f"scenarios: {SCENARIOS}; quotas: {QUOTAS}")

    started = time.monotonic()
    rows = []
    print(f"## bench/bench_share.py — {machine()}\n")
    print(f"limit 10/s per key (sliding second), latency {args.latency_ms:g} ± "
          f"{args.jitter_ms:g} ms, {args.numbers} numbers per run\n", flush=True)
    with (tempfile.TemporaryDirectory(prefix="bench-share-") as tmp_name,
          TaggedEmulator(latency_ms=args.latency_ms, jitter_ms=args.jitter_ms) as emu):
        redis = None
        if "redis" in quotas:  # a real redis-server on 127.0.0.1, as the tests start it
            sys.path.insert(0, str(ROOT / "tests"))
            from redis_server import RedisServer

            redis = RedisServer(Path(tmp_name) / "redis").start()
            REDIS_URL.append(redis.url)
        try:
            run_all(only, quotas, emu, Path(tmp_name), args, rows)
        finally:
            if redis is not None:
                redis.stop()
    print(table(HEADERS, rows))
    print("\ntargets (quota on): 0 throttled, total ≥ 9.5/s, each of two busy runs ≥ 4.5/s, "
          "the late run ≥ 9.2/s within 1 s of the other's end")
    print(f"\n(took {time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
