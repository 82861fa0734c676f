"""How the run's throttle copes with throttles it did not cause and with a changing share
(issues 12 and 16): enrich against the emulator at its real 10/s limit.

Scenarios (``--only`` takes a comma-separated subset):

- ``noise``: N numbers (299) at ``--rate 10``, 150 ms latency, the emulator answering
  3 % of the requests it admits with ``System.LimitControl`` at random
  (``--fault-rate 0.03 --faults throttle``). Target: >= 9.0 requests/s.
- ``share150`` / ``share1000``: N numbers (300) while a second process
  (``_competitor.py``) spends 5 requests/s of the same AccessKey throughout, as in
  ``run.py``. Targets: throttled <= 2 % of enrich's calls, effective >= 4.5/s.
- ``leave``: N numbers (300) while the second process spends 7.5/s (three quarters of
  the limit) for the first 20 s of the run, then stops. Figures: how long after it
  stopped enrich's arrivals are back at >= 9 in a sliding second, and enrich's
  arrival rate from then on.
- ``join``: N numbers (400); the second process starts at 5/s 10 s into the run.

``--numbers`` replaces every scenario's N (e.g. 3000 for a long run beside the other
process).

``--old PATH`` runs every scenario a second time with the Throttle of another
``enrich/limiter.py`` (e.g. ``git show <commit>:enrich/limiter.py > /tmp/old_limiter.py``):
the ``enrich run`` subprocess is started with that module in place of
``enrich.limiter``, nothing else changed. Every run is ``--no-cache --quota off``:
the Throttle alone paces it.

    .venv/bin/python bench/bench_throttle_recovery.py [--only noise,leave]
        [--old /tmp/old_limiter.py] [--repeat 1] [--seed 7]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import (
    PY,
    ROOT,
    Emulator,
    arrival_figures,
    clean_env,
    effective_rate,
    machine,
    numbers,
    run_measured,
    table,
    write_phone_csv,
)

SCENARIOS = ("noise", "share150", "share1000", "leave", "join")

# ``python -c`` for ``enrich`` with another limiter module: argv[1] is its path or "-".
_LAUNCH = """\
import importlib.util, sys
path = sys.argv.pop(1)
if path != "-":
    spec = importlib.util.spec_from_file_location("enrich.limiter", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["enrich.limiter"] = module
    spec.loader.exec_module(module)
sys.argv[0] = "enrich"
from enrich.cli import main
main()
"""


@dataclass(frozen=True)
class Scenario:
    """One emulator, and a second process on the same key from ``start`` for ``for_s``."""

    numbers: int
    latency_ms: float = 150.0
    faults: Sequence[str] = ()
    other_rate: float = 0.0
    other_start_s: float = -2.0  # relative to the enrich run's start
    other_for_s: float | None = None  # None: until the run ends


SETUPS = {
    "noise": Scenario(299, faults=("--fault-rate", "0.03", "--faults", "throttle")),
    "share150": Scenario(300, other_rate=5),
    "share1000": Scenario(300, latency_ms=1000, other_rate=5),
    "leave": Scenario(300, other_rate=7.5, other_for_s=22.0),
    "join": Scenario(400, other_rate=5, other_start_s=10.0),
}


def _enrich(limiter: str, inp: Path, url: str, out: Path, cust: str) -> tuple[Any, dict]:
    out.mkdir(parents=True, exist_ok=True)
    summary = out / "summary.json"
    cmd = [
        PY, "-c", _LAUNCH, limiter, "run", str(inp), "-o", str(out / "out.csv"),
        "--errors", str(out / "errors.csv"), "--summary", str(summary), "--endpoint", url,
        "--rate", "10", "--cust-space-id", cust, "--no-progress", "--log-format", "json",
        "--no-cache", "--quota", "off",
    ]  # fmt: skip
    cost = run_measured(cmd, env=clean_env(), timeout_s=3600, cwd=ROOT)
    if cost.returncode != 0:
        tail = " | ".join(cost.stderr.strip().splitlines()[-3:])
        print(f"  ! enrich exited {cost.returncode}: {tail}", file=sys.stderr)
    return cost, json.loads(summary.read_text()) if summary.exists() else {}


def _other(url: str, rate: float, max_s: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [PY, str(ROOT / "bench" / "_competitor.py"), "--endpoint", url, "--rate", str(rate),
         "--max-s", str(max_s)],
        env=clean_env(), cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip


def _stop(proc: subprocess.Popen[str] | None) -> dict[str, Any]:
    if proc is None:
        return {}
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        out = proc.communicate(timeout=30)[0]
    except subprocess.TimeoutExpired:
        proc.kill()
        out = proc.communicate(timeout=10)[0]
    try:
        return dict(json.loads(out.strip().splitlines()[-1]))
    except (ValueError, IndexError):
        return {}


def _recovery(times: list[float], stop: float) -> tuple[float | None, float]:
    """Seconds after ``stop`` until 9 arrivals fit in a sliding second; the rate after it."""
    after = [t for t in times if t >= stop]
    back = None
    for i in range(len(after)):
        j = i + 8
        if j < len(after) and after[j] - after[i] < 1.0:
            back = after[j] - stop
            break
    if back is None or len(after) < 2:
        return None, 0.0
    rest = [t for t in after if t >= stop + back]
    rate = (len(rest) - 1) / (rest[-1] - rest[0]) if len(rest) > 1 else 0.0
    return back, rate


def run_one(name: str, limiter: str, tmp: Path, seed: int, n: int | None) -> list[object]:
    """One scenario with one limiter: a row of figures."""
    setup = SETUPS[name]
    if n is not None:
        setup = dataclasses.replace(setup, numbers=n)
    extra = [*setup.faults, "--seed", str(seed)] if setup.faults else []
    with Emulator(latency_ms=setup.latency_ms, rate_limit=10, extra=extra) as emu:
        inp = write_phone_csv(tmp / f"{name}.csv", numbers(setup.numbers))
        time.sleep(1.2)  # the window empties after the previous client
        emu.reset()
        others: list[subprocess.Popen[str]] = []

        def start_other() -> None:
            others.append(_other(emu.url, setup.other_rate, setup.other_for_s or 3600))

        timer = None
        if setup.other_rate and setup.other_start_s < 0:
            start_other()
            time.sleep(-setup.other_start_s)  # at its steady rate before enrich starts
        elif setup.other_rate:
            timer = threading.Timer(setup.other_start_s, start_other)
            timer.start()
        cust = f"{name}-{time.time_ns()}"
        out = tmp / f"{name}-{'new' if limiter == '-' else 'old'}"
        cost, summary = _enrich(limiter, inp, emu.url, out, cust)
        if timer is not None:
            timer.cancel()
        theirs = _stop(others[0] if others else None)
        stats = emu.stats()
    fig = arrival_figures(stats)
    times = sorted(t for t, _ in stats.get("arrivals", []))
    calls = summary.get("api_calls", 0)
    throttled = summary.get("throttled", 0)
    their_calls = fig["arrivals"] - calls
    their_throttled = fig["throttled"] - throttled
    row: list[object] = [
        name,
        "old" if limiter != "-" else "new",
        calls,
        f"{throttled} ({100 * throttled / calls:.1f} %)" if calls else "-",
        f"{summary.get('requests_per_s', 0):.2f}",
        f"{effective_rate(summary):.2f}",
        fig["max_1s"],
        f"{cost.wall_s:.1f}",
    ]
    if name == "leave" and times:
        stop = times[0] + (setup.other_for_s or 0)  # the other process sent first
        back, rate = _recovery(times, stop)
        row.append(f"back at >= 9/s {back:.1f} s after it stopped, then {rate:.2f}/s"
                   if back is not None else "never back at 9/s in the run")  # fmt: skip
    elif setup.other_rate:
        share = f"{their_throttled} of {their_calls}" if their_calls > 0 else "?"
        row.append(f"other process: {theirs.get('rate', 0):.2f}/s, {share} throttled")
    else:
        row.append(f"emulator: {fig['codes'].get('System.LimitControl', 0)} throttle answers")
    return row


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default=",".join(SCENARIOS), help=f"subset of {SCENARIOS}")
    parser.add_argument("--old", default=None, help="another enrich/limiter.py to compare with")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--seed", type=int, default=7, help="of the emulator's random faults")
    parser.add_argument("--numbers", type=int, default=None, help="instead of each scenario's")
    args = parser.parse_args()
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in only if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {unknown}; known: {', '.join(SCENARIOS)}")
    limiters = ["-"] + ([str(Path(args.old).resolve())] if args.old else [])
    rows = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-recovery-") as tmp_name:
        for name in only:
            for i in range(args.repeat):
                for limiter in limiters:
                    print(f"{name} ({'new' if limiter == '-' else 'old'}) ...", file=sys.stderr)
                    rows.append(run_one(name, limiter, Path(tmp_name), args.seed + i, args.numbers))
                    print("  " + " | ".join(str(c) for c in rows[-1]), file=sys.stderr)
    print(f"## enrich --rate 10 against the emulator's 10/s limit — {machine()}\n")
    headers = ["scenario", "limiter", "calls", "throttled", "req/s (summary)", "effective/s",
               "max arrivals in 1 s", "wall s", "notes"]  # fmt: skip
    print(table(headers, rows))
    print(f"\n(took {time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
