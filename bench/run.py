"""enrich next to the official SDK, side by side, against the emulator (issue 7).

Three clients, each a separate process, one after another against one emulator
process per scenario (so no client shares a GIL with the busy emulator):

- ``sdk-seq``:   the official SDK, one call after another (``_sdk_client.py --mode seq``);
- ``sdk-async``: the official SDK's async call under ``asyncio.gather`` and
  ``aiolimiter.AsyncLimiter(10, 1)`` — the script a user would write instead;
- ``enrich``:    ``python -m enrich run … --rate 10 --no-cache``.

``--clients`` takes a comma-separated subset of them for the limit and share
scenarios (e.g. ``--clients enrich``); the default is all three.

Scenarios (``--only`` takes a comma-separated subset):

- ``limit150`` / ``limit1000``: N distinct numbers at the real 10/s limit with
  150 ms / 1 s latency (sdk-seq capped at ``--seq-cap-1s`` numbers at 1 s)
  (target for enrich: >= 9.5 requests/s sustained, i.e. "arrivals/s", and 0
  throttled; "effective/s" also counts the last answer's latency, see
  ``bench_rate.py``);
- ``share150`` / ``share1000``: the same while a second process
  (``_competitor.py``) spends 5 requests/s of the same AccessKey
  (targets for enrich: throttled <= 2 % of its calls, effective >= 4.5/s);
- ``ceiling``: enrich ``--rate 100000`` against an emulator with no latency and
  no limit over ``--ceiling-numbers`` numbers: requests/s and CPU time per
  request of the enrich process (target >= 1,000 requests/s);
- ``quota150`` / ``quota1000``: runs sharing the account's quota (issue 12): two
  together, one joining late, three, one ``kill -9``'d, each on the default SQLite
  store, on a real redis-server, and side by side with ``--quota off``
  (``bench_share.py --quota default,redis,off``, its own process tree; ~12 min each);
- ``slots``: the cost of a slot on each store (``bench_quota.py``).

"effective/s" is answered numbers per second of calling (enrich: from its run
summary; SDK: OK answers / loop time); "arrivals/s" and "max in 1 s" come from
the emulator's arrival log (all processes on the key). Prints Markdown tables.

    .venv/bin/python bench/run.py                 # everything, ~9-10 minutes
    .venv/bin/python bench/run.py --quick         # fewer numbers, ~3 minutes
    .venv/bin/python bench/run.py --only share150,ceiling
    .venv/bin/python bench/run.py --only share150,share1000 --clients enrich
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import (
    PY,
    ROOT,
    Emulator,
    arrival_figures,
    clean_env,
    effective_rate,
    enrich_run,
    machine,
    numbers,
    run_measured,
    table,
    write_phone_csv,
)

SCENARIOS = ("limit150", "limit1000", "share150", "share1000", "ceiling", "quota150",
             "quota1000", "slots")  # fmt: skip
CLIENTS = ("sdk-seq", "sdk-async", "enrich")


def _settle() -> None:
    """Let the emulator's sliding window empty between two clients."""
    time.sleep(1.2)


def _run_client(
    client: str, emu: Emulator, phones: list[str], tmp: Path, tag: str
) -> dict[str, Any]:
    """One client over ``phones``; its figures, with the emulator's view of the same time."""
    _settle()
    emu.reset()
    cust = f"{tag}-{client}-{time.time_ns()}"
    if client == "enrich":
        inp = write_phone_csv(tmp / f"{tag}.csv", phones)
        cost, summary = enrich_run(
            inp,
            endpoint=emu.url,
            out_dir=tmp / f"{tag}-enrich",
            cust_space_id=cust,
            timeout_s=len(phones) / 3 + 90,
        )
        mine = {
            "numbers": len(phones),
            "calls": summary.get("api_calls", 0),
            "ok": summary.get("ok", 0) + summary.get("no_profile", 0),
            "throttled": summary.get("throttled", 0),
            "lost": summary.get("error_rows", 0),
            "effective": effective_rate(summary),
            "wall": cost.wall_s,
            "cpu": cost.cpu_s,
            "exit": cost.returncode,
        }
    else:
        listing = tmp / f"{tag}-{client}.txt"
        listing.write_text("\n".join(phones))
        cost = run_measured(
            [
                PY,
                str(ROOT / "bench" / "_sdk_client.py"),
                "--port",
                str(emu.port),
                "--mode",
                client.removeprefix("sdk-"),
                "--numbers-file",
                str(listing),
                "--cust",
                cust,
            ],
            env=clean_env(),
            timeout_s=len(phones) * 1.5 + 90,
        )
        result = json.loads(cost.stdout.strip().splitlines()[-1]) if cost.returncode == 0 else {}
        outcome = result.get("outcome", {})
        ok = outcome.get("OK", 0)
        calls = sum(outcome.values())
        mine = {
            "numbers": len(phones),
            "calls": calls,
            "ok": ok,
            "throttled": outcome.get("System.LimitControl", 0),
            "lost": calls - ok,
            "effective": ok / result["elapsed_s"] if result else 0.0,
            "wall": cost.wall_s,
            "cpu": cost.cpu_s,
            "exit": cost.returncode,
        }
        if cost.returncode != 0:
            print(f"  ! {client} exited {cost.returncode}: {cost.stderr[-300:]}", file=sys.stderr)
    mine["emulator"] = arrival_figures(emu.stats())
    return mine


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "-"


def scenario_limit(
    latency_ms: int, n: int, seq_cap: int, tmp: Path, clients: tuple[str, ...] = CLIENTS
) -> str:
    rows = []
    with Emulator(latency_ms=latency_ms, rate_limit=10) as emu:
        for client in clients:
            count = min(n, seq_cap) if client == "sdk-seq" and latency_ms >= 1000 else n
            print(f"  {client} over {count} numbers ...", file=sys.stderr, flush=True)
            r = _run_client(client, emu, numbers(count), tmp, f"limit{latency_ms}")
            e = r["emulator"]
            rows.append(
                [
                    client,
                    r["numbers"],
                    r["calls"],
                    f"{r['effective']:.2f}",
                    f"{e['arrival_rate']:.2f}",
                    e["max_1s"],
                    f"{r['throttled']} ({_pct(r['throttled'], r['calls'])})",
                    f"{r['lost']}",
                    f"{r['wall']:.1f}",
                ]
            )
    return f"### 10/s limit, {latency_ms} ms latency\n\n" + table(
        [
            "client",
            "numbers",
            "calls",
            "effective/s",
            "arrivals/s",
            "max in 1 s",
            "throttled",
            "rows lost",
            "wall s",
        ],
        rows,
    )


def scenario_share(
    latency_ms: int, n: int, seq_cap: int, tmp: Path, clients: tuple[str, ...] = CLIENTS
) -> str:
    rows = []
    with Emulator(latency_ms=latency_ms, rate_limit=10) as emu:
        competitor = subprocess.Popen(
            [
                PY,
                str(ROOT / "bench" / "_competitor.py"),
                "--endpoint",
                emu.url,
                "--rate",
                "5",
                "--max-s",
                "400",
            ],
            env=clean_env(),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            time.sleep(2.0)  # the competitor at its steady 5/s before the client starts
            for client in clients:
                count = min(n, seq_cap) if client == "sdk-seq" and latency_ms >= 1000 else n
                print(f"  {client} over {count} numbers ...", file=sys.stderr, flush=True)
                r = _run_client(client, emu, numbers(count), tmp, f"share{latency_ms}")
                e = r["emulator"]
                theirs = e["throttled"] - r["throttled"]
                their_calls = e["arrivals"] - r["calls"]
                rows.append(
                    [
                        client,
                        r["numbers"],
                        r["calls"],
                        f"{r['effective']:.2f}",
                        f"{r['throttled']} ({_pct(r['throttled'], r['calls'])})",
                        r["lost"],
                        f"{theirs} ({_pct(theirs, their_calls)})",
                        e["max_1s"],
                        f"{r['wall']:.1f}",
                    ]
                )
        finally:
            competitor.send_signal(signal.SIGTERM)
            try:
                out = competitor.communicate(timeout=30)[0]
            except subprocess.TimeoutExpired:
                competitor.kill()
                out = competitor.communicate(timeout=10)[0]
    try:
        comp = json.loads(out.strip().splitlines()[-1])
        note = (
            f"competitor: {comp['sent']} requests in {comp['elapsed_s']:.0f} s "
            f"= {comp['rate']:.2f}/s, answers {comp['outcome']}"
        )
    except (ValueError, IndexError, KeyError):
        note = "competitor: no report"
    return (
        f"### 10/s limit shared with a second process at 5 requests/s, {latency_ms} ms latency\n\n"
        + table(
            [
                "client",
                "numbers",
                "calls",
                "effective/s",
                "throttled (of its calls)",
                "rows lost",
                "competitor throttled meanwhile",
                "max arrivals in 1 s",
                "wall s",
            ],
            rows,
        )
        + f"\n\n{note}"
    )


def scenario_ceiling(n: int, tmp: Path) -> str:
    rows = []
    with Emulator(latency_ms=0, rate_limit=0) as emu:
        inp = write_phone_csv(tmp / "ceiling.csv", numbers(n))
        one = write_phone_csv(tmp / "one.csv", numbers(1))
        # the fixed cost of a run (start-up, read, write) measured on a single number
        fixed, _ = enrich_run(
            one, endpoint=emu.url, out_dir=tmp / "ceiling-one", rate=100_000, cust_space_id="c1"
        )
        emu_cpu0 = emu.cpu_s()
        emu.reset()
        cost, summary = enrich_run(
            inp,
            endpoint=emu.url,
            out_dir=tmp / "ceiling-run",
            rate=100_000,
            cust_space_id="ceiling",
            timeout_s=300,
        )
        emu_cpu = emu.cpu_s() - emu_cpu0
        e = arrival_figures(emu.stats())
    calls = summary.get("api_calls", 0) or 1
    calling_s = calls / summary["requests_per_s"] if summary.get("requests_per_s") else 0.0
    rows.append(
        [
            f"{n:,}",
            f"{summary.get('api_calls', 0):,}",
            f"{summary.get('requests_per_s', 0):,.0f}",
            f"{e['arrival_rate']:,.0f}",
            f"{calling_s:.1f}",
            f"{cost.wall_s:.1f}",
            f"{cost.cpu_s:.1f}",
            f"{1000 * cost.cpu_s / calls:.2f}",
            f"{1000 * (cost.cpu_s - fixed.cpu_s) / calls:.2f}",
            f"{emu_cpu:.1f}",
            cost.returncode,
        ]
    )
    return (
        "### Client ceiling: enrich --rate 100000, emulator with no latency and no limit\n\n"
        + table(
            [
                "numbers",
                "calls",
                "req/s (summary)",
                "arrivals/s (emulator)",
                "calling s",
                "wall s",
                "enrich CPU s",
                "CPU ms/request",
                "CPU ms/request (net of a 1-number run)",
                "emulator CPU s",
                "exit",
            ],
            rows,
        )
        + f"\n\nfixed cost of a 1-number run: {fixed.wall_s:.2f} s wall, {fixed.cpu_s:.2f} s CPU"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default=",".join(SCENARIOS), help=f"subset of {SCENARIOS}")
    parser.add_argument("--quick", action="store_true", help="fewer numbers everywhere")
    parser.add_argument("--numbers", type=int, default=None, help="numbers per run [300]")
    parser.add_argument("--seq-cap-1s", type=int, default=None, help="sdk-seq numbers at 1 s [60]")
    parser.add_argument("--ceiling-numbers", type=int, default=None, help="[20000]")
    parser.add_argument(
        "--clients",
        default=",".join(CLIENTS),
        help=f"subset of {CLIENTS} for the limit/share scenarios (in this order)",
    )
    args = parser.parse_args()
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in only if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {unknown}; known: {', '.join(SCENARIOS)}")
    wanted = {c.strip() for c in args.clients.split(",") if c.strip()}
    if not wanted or wanted - set(CLIENTS):
        bad = sorted(wanted - set(CLIENTS))
        parser.error(f"unknown client(s) {bad}; known: {', '.join(CLIENTS)}")
    clients = tuple(c for c in CLIENTS if c in wanted)
    n = args.numbers or (100 if args.quick else 300)
    seq_cap = args.seq_cap_1s or (20 if args.quick else 60)
    ceiling = args.ceiling_numbers or (3_000 if args.quick else 20_000)

    started = time.monotonic()
    out: list[str] = []
    print(f"## bench/run.py — {machine()}\n\nEach client and the emulator: separate processes.\n")
    with tempfile.TemporaryDirectory(prefix="bench-run-") as tmp_name:
        tmp = Path(tmp_name)
        for name in only:
            print(f"{name} ...", file=sys.stderr, flush=True)
            if name.startswith("limit"):
                out.append(scenario_limit(int(name[5:]), n, seq_cap, tmp, clients))
            elif name.startswith("share"):
                out.append(scenario_share(int(name[5:]), n, seq_cap, tmp, clients))
            elif name.startswith("quota"):
                out.append(_bench("bench_share.py", "--latency-ms", name[5:],
                                  "--quota", "default,redis,off"))  # fmt: skip
            elif name == "slots":
                out.append(_bench("bench_quota.py"))
            else:
                out.append(scenario_ceiling(ceiling, tmp))
            print(out[-1] + "\n", flush=True)
    print(f"(suite took {time.monotonic() - started:.0f} s)")
    return 0


def _bench(script: str, *args: str) -> str:
    """Another bench of this folder in its own process (it bounds its own time)."""
    done = subprocess.run([PY, str(Path(__file__).parent / script), *args],
                          capture_output=True, text=True, timeout=1800)  # fmt: skip
    if done.returncode != 0:
        return f"{script} exited {done.returncode}: {done.stderr[-2000:]}"
    return done.stdout.strip()


if __name__ == "__main__":
    sys.exit(main())
