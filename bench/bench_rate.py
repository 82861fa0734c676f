"""Sustained rate of ``enrich run`` against the emulator's real 10/s limit (issue 2).

The emulator runs as its own process (``python -m enrich emulator``, 150 ms
latency, 10 requests/s per AccessKeyId in any sliding second); ``enrich run``
is a second process (``--rate 10 --no-cache``) over N distinct numbers. Prints
the rate from the run summary and from the emulator's arrival log, the
throttled answers, and the most arrivals in any sliding 1 s window.

Target: >= 9.5 requests/s with 0 throttled. The rate judged is the one SPEC.md
sets ("sustain at least 95% of --rate"): requests arriving at the service, first
to last. The summary's ``requests_per_s`` runs from the first request to the
last *answer*, so it also counts the last answer's latency; at the pace SPEC.md
asks for (97.5% of --rate) its ceiling is N / ((N - 1) / 9.75 + latency), which
the table prints beside it (9.47 for 300 numbers at 1 s); below 103 ms of latency
the last call's paced slot counts instead of its latency.

    .venv/bin/python bench/bench_rate.py [--numbers 300] [--latency-ms 150] [--repeat 1]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from _common import Emulator, arrival_figures, enrich_run, machine, numbers, table, write_phone_csv


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--numbers", type=int, default=300)
    parser.add_argument("--latency-ms", type=float, default=150.0)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()

    rows = []
    ok = True
    n = args.numbers
    pace = 10 * 0.975
    ceiling = n / ((n - 1) / pace + max(args.latency_ms / 1000, 1 / pace))
    with (
        tempfile.TemporaryDirectory(prefix="bench-rate-") as tmp,
        Emulator(latency_ms=args.latency_ms, rate_limit=10) as emu,
    ):
        inp = write_phone_csv(Path(tmp) / "phones.csv", numbers(args.numbers))
        for i in range(args.repeat):
            emu.reset()
            cost, summary = enrich_run(
                inp,
                endpoint=emu.url,
                out_dir=Path(tmp) / f"run{i}",
                cust_space_id=f"bench-rate-{i}",
                timeout_s=args.numbers / 5 + 60,
            )
            fig = arrival_figures(emu.stats())
            rps = summary.get("requests_per_s", 0.0)
            ok &= fig["arrival_rate"] >= 9.5 and fig["throttled"] == 0 and cost.returncode == 0
            rows.append(
                [
                    i + 1,
                    summary.get("unique_numbers", "?"),
                    summary.get("api_calls", "?"),
                    f"{fig['arrival_rate']:.2f}",
                    f"{rps:.2f} (ceiling {ceiling:.2f})",
                    f"{summary.get('throttled', '?')} / {fig['throttled']}",
                    fig["max_1s"],
                    f"{cost.wall_s:.1f}",
                    cost.returncode,
                ]
            )
    print(
        f"## enrich run --rate 10 vs emulator (limit 10/s, latency {args.latency_ms:g} ms)\n"
        f"machine: {machine()}; emulator in its own process\n"
    )
    print(
        table(
            [
                "run",
                "numbers",
                "api calls",
                "req/s sustained (arrivals at the emulator)",
                "req/s in the summary (to the last answer)",
                "throttled (summary / emulator)",
                "max arrivals in 1 s",
                "wall s",
                "exit",
            ],
            rows,
        )
    )
    print(f"\ntarget >= 9.5 req/s sustained, 0 throttled: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
