"""A large file served entirely from the cache: enrich's own overhead (issues 4, 13).

Generates (once, under bench/out/, git-ignored) a CSV of ROWS rows holding
DISTINCT distinct numbers plus a few other columns, and a ledger pre-filled with
a fresh answer for every key (``enrich.cache.Ledger.put_answer``), so the run
makes zero calls; then measures wall time and peak RSS of the whole ``enrich
run`` process (its own ``wait4`` rusage, pool processes included — what
``/usr/bin/time -v`` reports as "Maximum resident set size") next to a polars
streaming copy of the same file (``pl.scan_csv(p, infer_schema=False).sink_csv(q)``)
in the same run, once before each warm run (its median is the baseline: the short
copy's wall varies most). The endpoint is a closed port: a call would fail the run.
``--cold`` first runs once with the ledger's remembered readings of cells removed.
Targets (issue 13): <= 15x the streaming copy (1M / 50k: <= 6x), <= 2 GB. The file
and ledger are made in a child process, so this process stays small (a child's
peak RSS as ``wait4`` reports it starts from its parent's at fork).

    .venv/bin/python bench/bench_large.py [--rows 1000000] [--distinct 50000] [--cold]
                                          [--runs 3] [--format csv|parquet] [--profile]

``--profile`` runs enrich once more under cProfile and prints the hot spots.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

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
if src.endswith(".parquet"):
    pl.scan_parquet(src).sink_parquet(dst)
else:
    pl.scan_csv(src, infer_schema=False).sink_csv(dst)
"""

OUT = ROOT / "bench" / "out"


def _inputs(rows: int, distinct: int, fmt: str) -> tuple[Path, Path, str]:
    """The input and a pre-filled ledger under bench/out/ (git-ignored), made once."""
    OUT.mkdir(parents=True, exist_ok=True)
    inp = OUT / f"large-{rows}-{distinct}.{fmt}"
    ledger = OUT / f"ledger-{distinct}.sqlite3"
    said = []
    if not inp.exists():
        t = time.monotonic()
        generate(inp.with_suffix(".tmp" + inp.suffix), rows, distinct)
        inp.with_suffix(".tmp" + inp.suffix).rename(inp)
        said.append(f"generated in {time.monotonic() - t:.1f} s")
    if not ledger.exists():
        fill_s = prefill(ledger.with_suffix(".tmp"), distinct)
        ledger.with_suffix(".tmp").rename(ledger)
        said.append(f"ledger pre-filled in {fill_s:.1f} s")
    return inp, ledger, "; ".join(said) or "reused"


def _forget_readings(ledger: Path) -> None:
    """A cold run: the ledger's remembered readings of cells removed."""
    import sqlite3

    with sqlite3.connect(ledger) as db:
        db.execute("CREATE TABLE IF NOT EXISTS spellings (raw TEXT)")
        db.execute("DELETE FROM spellings")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--distinct", type=int, default=50_000)
    parser.add_argument("--format", choices=["csv", "parquet"], default="csv")
    parser.add_argument("--cold", action="store_true", help="also a run that reads every cell anew")
    parser.add_argument("--runs", type=int, default=1, help="warm runs (the median is judged)")
    parser.add_argument("--profile", action="store_true", help="also profile enrich (cProfile)")
    parser.add_argument("--max-ratio", type=float, default=None,
                        help="target (default: 6 for 1M rows / 50k distinct, else 15)")
    parser.add_argument("--make-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.max_ratio is None:
        args.max_ratio = 6.0 if (args.rows, args.distinct) == (1_000_000, 50_000) else 15.0

    if args.make_only:
        print(_inputs(args.rows, args.distinct, args.format)[2])
        return 0
    # The file and the ledger are made in a child process: a child's peak RSS
    # (wait4) starts from its parent's high-water mark at fork, so a bench process
    # that had grown to build a 10M-row file would report that for every run.
    made = subprocess.run(
        [PY, __file__, "--make-only", "--rows", str(args.rows), "--distinct",
         str(args.distinct), "--format", args.format],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    inp, ledger, _ = _inputs(args.rows, args.distinct, args.format)
    said = made.stdout.strip()
    print(f"{inp.name}: {inp.stat().st_size / 1e6:.0f} MB, {args.rows:,} rows, "
          f"{args.distinct:,} distinct numbers ({said})", file=sys.stderr)  # fmt: skip
    env = clean_env()
    with tempfile.TemporaryDirectory(prefix="bench-large-", dir=OUT) as tmp_name:
        tmp = Path(tmp_name)
        def copy() -> Any:
            target = str(tmp / f"floor.{args.format}")
            done = run_measured([PY, "-c", POLARS_FLOOR, str(inp), target], env=env,
                                timeout_s=600)  # fmt: skip
            (tmp / f"floor.{args.format}").unlink(missing_ok=True)
            return done

        # The copy runs before each warm run (the machine's noise moves both alike);
        # the ratio is of the medians.
        copies = [copy()]
        rows: list[list[Any]] = [["polars streaming copy", copies[0]]]
        if args.cold:
            _forget_readings(ledger)
        results = []
        for i in range((1 if args.cold else 0) + args.runs):
            if i > 0 and not (args.cold and i == 1):
                copies.append(copy())
                rows.append(["polars streaming copy", copies[-1]])
            out_dir = tmp / f"run{i}"
            out_dir.mkdir()
            cost = run_measured([PY, *enrich_cmd(inp, out_dir, ledger, _closed_port())],
                                env=env, timeout_s=1800, cwd=ROOT)  # fmt: skip
            summary_path = out_dir / "summary.json"
            summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
            if cost.returncode != 0:
                print(f"enrich exited {cost.returncode}: {cost.stderr[-800:]}", file=sys.stderr)
            cold = args.cold and i == 0
            rows.append([f"enrich run ({'cold: every cell read anew' if cold else 'warm'})", cost])
            if not cold:
                results.append((cost, summary))
            for f in out_dir.iterdir():
                f.unlink()
        floor = sorted(copies, key=lambda c: c.wall_s)[len(copies) // 2]  # the median copy
        print(f"## enrich run on {args.rows:,} rows / {args.distinct:,} distinct, all from the "
              f"cache — {machine()}\n")  # fmt: skip
        print(
            table(
                ["process", "wall s", "CPU s", "peak RSS MB", "× copy", "exit"],
                [
                    [
                        name,
                        f"{m.wall_s:.2f}",
                        f"{m.cpu_s:.2f}",
                        f"{m.maxrss_kb / 1024:.0f}",
                        f"{m.wall_s / floor.wall_s:.1f}",
                        m.returncode,
                    ]
                    for name, m in rows
                ],
            )
        )
        walls = sorted(c.wall_s for c, _ in results)
        median = walls[len(walls) // 2]
        rss_mb = max(c.maxrss_kb for c, _ in results) / 1024
        ratio = median / floor.wall_s
        print(f"\ncopy median {floor.wall_s:.2f} s of {len(copies)} "
              f"({', '.join(f'{c.wall_s:.2f}' for c in copies)})")  # fmt: skip
        summary = results[-1][1]
        print(
            f"\nwarm median {median:.2f} s = {ratio:.1f}x the streaming copy "
            f"(target <= {args.max_ratio:g}x); peak RSS {rss_mb:,.0f} MB (target <= 2048 MB); "
            f"summary: rows {summary.get('rows')}, unique {summary.get('unique_numbers')}, "
            f"cache_hits {summary.get('cache_hits')}, api_calls {summary.get('api_calls')}"
        )
        ok = (
            all(c.returncode == 0 for c, _ in results)
            and ratio <= args.max_ratio
            and rss_mb <= 2048
            and summary.get("api_calls") == 0
            and summary.get("cache_hits") == args.distinct
        )
        print(f"targets: {'met' if ok else 'MISSED'}")
        if args.profile:
            prof = tmp / "enrich.prof"
            (tmp / "run-prof").mkdir()
            run_measured([PY, "-m", "cProfile", "-o", str(prof),
                          *enrich_cmd(inp, tmp / "run-prof", ledger, _closed_port())],
                         env=env, timeout_s=1800, cwd=ROOT)  # fmt: skip
            import pstats

            print("\n### cProfile, by cumulative time (top 30)\n```")
            pstats.Stats(str(prof)).sort_stats("cumulative").print_stats(30)
            print("```\n### by own time (top 20)\n```")
            pstats.Stats(str(prof)).sort_stats("tottime").print_stats(20)
            print("```")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
