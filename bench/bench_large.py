"""A large file served entirely from the cache: enrich's own overhead (issue 4).

Generates a CSV of ROWS rows (default 1,000,000) holding DISTINCT distinct
numbers (default 50,000) plus a few other columns, pre-fills a ledger
(``enrich.cache.Ledger.put_answer``, fresh answers for every key under the
CustSpaceId used) so the run makes zero calls, then measures wall time and peak
RSS of the whole ``enrich run`` process (its own ``wait4`` rusage — what
``/usr/bin/time -v`` reports as "Maximum resident set size") next to a plain
polars read + write of the same file in a subprocess, in the same run.
The endpoint is a closed port: a call, if one were made, would fail the run.
Targets: <= 10x the polars floor, <= 2 GB.

    .venv/bin/python bench/bench_large.py [--rows 1000000] [--distinct 50000]
                                          [--format csv|parquet] [--profile]

``--profile`` runs enrich once more under cProfile and prints the hot spots.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import tempfile
import time
from pathlib import Path

from _common import PY, ROOT, clean_env, machine, numbers, run_measured, table

SPACE = "bench-large"


def generate(path: Path, rows: int, distinct: int, seed: int = 7) -> None:
    """ROWS rows: id, name, phone (DISTINCT values, shuffled), amount, signup_date, segment."""
    import random

    import polars as pl

    rng = random.Random(seed)
    phones = numbers(distinct)
    picks = list(range(distinct)) + [rng.randrange(distinct) for _ in range(rows - distinct)]
    rng.shuffle(picks)
    df = (
        pl.DataFrame(
            {
                "id": pl.int_range(1, rows + 1, eager=True),
                "name": [f"Customer {i}" for i in range(rows)],
                "phone": [phones[i] for i in picks],
                "amount": [round(rng.random() * 1000, 2) for _ in range(rows)],
                "signup_day": [rng.randrange(1500) for _ in range(rows)],
                "segment": [
                    rng.choice(("retail", "smb", "enterprise", "public")) for _ in range(rows)
                ],
            }
        )
        .with_columns(
            signup_date=(pl.date(2020, 1, 1) + pl.duration(days=pl.col("signup_day"))).cast(
                pl.String
            )
        )
        .drop("signup_day")
    )
    if path.suffix == ".parquet":
        df.write_parquet(path)
    else:
        df.write_csv(path)


def prefill(ledger_path: Path, distinct: int) -> float:
    """A fresh answer for every key, through the ledger's public API; seconds taken."""
    sys.path.insert(0, str(ROOT))
    from enrich.cache import Ledger
    from enrich.client import Answer, Profile
    from enrich.emulator import profile_for

    started = time.monotonic()
    now = time.time()
    with Ledger(ledger_path) as ledger:
        for i, phone in enumerate(numbers(distinct)):
            data = profile_for(SPACE, phone)
            profile = (
                None
                if data is None
                else Profile(
                    about=data.get("About"),
                    address=data.get("Address"),
                    description=data.get("Description"),
                    vertical=data.get("Vertical"),
                    email=data.get("Email"),
                    profile_picture_url=data.get("ProfilePictureUrl"),
                    websites=tuple(data.get("Websites") or ()),
                )
            )
            ledger.put_answer((SPACE, phone), Answer(profile, f"REQ-{i:08d}", now))
    return time.monotonic() - started


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def enrich_cmd(inp: Path, out_dir: Path, ledger: Path, port: int) -> list[str]:
    return [
        "-m",
        "enrich",
        "run",
        str(inp),
        "-o",
        str(out_dir / f"out{inp.suffix}"),
        "--errors",
        str(out_dir / "errors.csv"),
        "--summary",
        str(out_dir / "summary.json"),
        "--cust-space-id",
        SPACE,
        "--endpoint",
        f"http://127.0.0.1:{port}",
        "--cache",
        str(ledger),
        "--no-progress",
        "--log-format",
        "json",
    ]


POLARS_FLOOR = """
import sys, polars as pl
src, dst = sys.argv[1], sys.argv[2]
df = pl.read_parquet(src) if src.endswith(".parquet") else pl.read_csv(src)
df.write_parquet(dst) if dst.endswith(".parquet") else df.write_csv(dst)
print(df.height)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--distinct", type=int, default=50_000)
    parser.add_argument("--format", choices=["csv", "parquet"], default="csv")
    parser.add_argument("--profile", action="store_true", help="also profile enrich (cProfile)")
    parser.add_argument("--keep", type=Path, help="keep the files in this folder")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-large-") as tmp_name:
        tmp = args.keep or Path(tmp_name)
        tmp.mkdir(parents=True, exist_ok=True)
        inp = tmp / f"large.{args.format}"
        t = time.monotonic()
        generate(inp, args.rows, args.distinct)
        gen_s = time.monotonic() - t
        ledger = tmp / "ledger.sqlite3"
        ledger.unlink(missing_ok=True)
        fill_s = prefill(ledger, args.distinct)
        print(
            f"generated {inp.name} ({inp.stat().st_size / 1e6:.0f} MB, {args.rows:,} rows, "
            f"{args.distinct:,} distinct numbers) in {gen_s:.1f} s; ledger pre-filled in "
            f"{fill_s:.1f} s",
            file=sys.stderr,
        )
        env = clean_env()
        floor = run_measured(
            [PY, "-c", POLARS_FLOOR, str(inp), str(tmp / f"floor.{args.format}")],
            env=env,
            timeout_s=600,
        )
        out_dir = tmp / "run"
        out_dir.mkdir(exist_ok=True)
        cost = run_measured(
            [PY, *enrich_cmd(inp, out_dir, ledger, _closed_port())],
            env=env,
            timeout_s=1200,
            cwd=ROOT,
        )
        summary_path = out_dir / "summary.json"
        summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
        if cost.returncode != 0:
            print(f"enrich exited {cost.returncode}: {cost.stderr[-500:]}", file=sys.stderr)

        ratio = cost.wall_s / floor.wall_s if floor.wall_s else float("inf")
        rss_mb = cost.maxrss_kb / 1024
        print(f"## enrich run on {args.rows:,} rows from the cache — {machine()}\n")
        print(
            table(
                ["process", "wall s", "CPU s", "peak RSS MB", "exit"],
                [
                    [
                        f"polars read + write ({args.format})",
                        f"{floor.wall_s:.2f}",
                        f"{floor.cpu_s:.2f}",
                        f"{floor.maxrss_kb / 1024:.0f}",
                        floor.returncode,
                    ],
                    [
                        "enrich run (all from cache)",
                        f"{cost.wall_s:.2f}",
                        f"{cost.cpu_s:.2f}",
                        f"{rss_mb:.0f}",
                        cost.returncode,
                    ],
                ],
            )
        )
        print(
            f"\nenrich / polars wall: {ratio:.1f}x (target <= 10x); peak RSS {rss_mb:,.0f} MB "
            f"(target <= 2048 MB); summary: rows {summary.get('rows')}, unique "
            f"{summary.get('unique_numbers')}, cache_hits {summary.get('cache_hits')}, "
            f"api_calls {summary.get('api_calls')}"
        )
        ok = (
            cost.returncode == 0
            and ratio <= 10
            and rss_mb <= 2048
            and summary.get("api_calls") == 0
            and summary.get("cache_hits") == args.distinct
        )
        print(f"targets: {'met' if ok else 'MISSED'}")

        if args.profile:
            prof = tmp / "enrich.prof"
            (tmp / "run-prof").mkdir(exist_ok=True)
            run_measured(
                [
                    PY,
                    "-m",
                    "cProfile",
                    "-o",
                    str(prof),
                    *enrich_cmd(inp, tmp / "run-prof", ledger, _closed_port()),
                ],
                env=env,
                timeout_s=1800,
                cwd=ROOT,
            )
            import pstats

            print("\n### cProfile, by cumulative time (top 30)\n```")
            pstats.Stats(str(prof)).sort_stats("cumulative").print_stats(30)
            print("```\n### by own time (top 20)\n```")
            pstats.Stats(str(prof)).sort_stats("tottime").print_stats(20)
            print("```")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
