"""The two XLSX writers side by side: the workbook kept (openpyxl) and written anew (xlsxwriter).

Generates a workbook as a data team has one (Cover, Data, Notes; on Data
ROWS rows × 8 columns with number formats, widths, a filter and frozen panes),
then, each in its own child process, reads it (``frames.read_table``), adds the
12 ``bp_*`` columns as a run does, and writes it with ``frames.write_table``:

* ``keep``: the input workbook kept as it is (``source=``, no size limit);
* ``fast``: written anew by the fast writer (``keep_max_cells=0``, as above the limit);
* ``read``: no write at all, the floor both start from.

Each child's wall time and peak RSS (its own ``wait4`` rusage) are measured, and
the child reports the seconds spent in ``write_table`` alone.

    .venv/bin/python bench/bench_xlsx.py [--rows 10000 100000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path

from _common import PY, ROOT, clean_env, machine, run_measured, table

COLUMNS = ["id", "name", "phone", "amount", "rate", "joined", "segment", "note"]
MODES = ("read", "fast", "keep")


def generate(path: Path, rows: int) -> None:
    """The input workbook: Cover, Data (``rows`` rows), Notes."""
    import xlsxwriter

    wb = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    cover = wb.add_worksheet("Cover")
    cover.write_string(0, 0, "Leads export")
    ws = wb.add_worksheet("Data")
    phone = wb.add_format({"num_format": "0"})
    money = wb.add_format({"num_format": "£#,##0.00"})
    pct = wb.add_format({"num_format": "0.0%"})
    date = wb.add_format({"num_format": "dd/mm/yyyy"})
    for c, width in enumerate([8, 18, 16, 12, 8, 12, 12, 30]):
        ws.set_column(c, c, width)
    ws.freeze_panes(1, 0)
    ws.autofilter(0, 0, rows, len(COLUMNS) - 1)
    ws.write_row(0, 0, COLUMNS)
    segments = ("retail", "smb", "enterprise", "public")
    start = dt.datetime(2020, 1, 1)
    for r in range(1, rows + 1):
        ws.write_number(r, 0, r)
        ws.write_string(r, 1, f"Customer {r}")
        ws.write_number(r, 2, 8613800000000 + r, phone)
        ws.write_number(r, 3, round(r * 1.37 % 5000, 2), money)
        ws.write_number(r, 4, (r % 100) / 100, pct)
        ws.write_datetime(r, 5, start + dt.timedelta(days=r % 1500), date)
        ws.write_string(r, 6, segments[r % 4])
        ws.write_string(r, 7, f"called on day {r % 30}, follow up")
    notes = wb.add_worksheet("Notes")
    for r in range(20):
        notes.write_string(r, 0, f"note {r}")
    wb.close()


CHILD = """
import json, sys, time
from pathlib import Path
import polars as pl
from enrich.frames import read_table, write_table
from enrich.report import API_TEXT_COLUMNS, BP_COLUMNS

mode, src, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
t0 = time.perf_counter()
t = read_table(src, sheet="Data")
n = t.df.height
texts = {c: [f"{c} text {i % 97}" if i % 5 else None for i in range(n)] for c in BP_COLUMNS}
texts["bp_status"] = ["ok"] * n
texts["bp_phone"] = [str(8613800000000 + i) for i in range(n)]
sites = ["https://a.example", "https://b.example"]
texts["bp_websites"] = [sites if i % 3 else [] for i in range(n)]
texts["bp_fetched_at"] = ["2024-05-01T10:00:00Z"] * n
texts["bp_error_code"] = [None] * n
schema = {c: pl.List(pl.String) if c == "bp_websites" else pl.String for c in BP_COLUMNS}
df = pl.concat([t.df, pl.DataFrame(texts, schema=schema)], how="horizontal")
t1 = time.perf_counter()
warnings = []
if mode != "read":
    warnings = write_table(
        df, out, fmt="xlsx", api_text_columns=API_TEXT_COLUMNS, sheet_name=t.sheet_name,
        other_sheets=t.other_sheets, numeric_cells=t.numeric_cells, source=src,
        keep_max_cells=10**12 if mode == "keep" else 0,
    )
t2 = time.perf_counter()
print(json.dumps({"read_s": t1 - t0, "write_s": t2 - t1, "warnings": len(warnings)}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--keep", type=Path, help="keep the files in this folder")
    args = parser.parse_args()
    results: list[list[object]] = []
    with tempfile.TemporaryDirectory(prefix="bench-xlsx-") as tmp_name:
        tmp = args.keep or Path(tmp_name)
        tmp.mkdir(parents=True, exist_ok=True)
        for rows in args.rows:
            src = tmp / f"leads-{rows}.xlsx"
            started = time.monotonic()
            generate(src, rows)
            print(f"generated {src.name} ({src.stat().st_size / 1e6:.1f} MB) in "
                  f"{time.monotonic() - started:.1f} s", file=sys.stderr)
            cells = (rows + 1) * (len(COLUMNS) + 12) + 1 + 20  # Data with bp_*, Cover, Notes
            floor_mb = 0.0
            for mode in MODES:
                out = tmp / f"out-{rows}-{mode}.xlsx"
                cost = run_measured([PY, "-c", CHILD, mode, str(src), str(out)],
                                    env=clean_env(), timeout_s=1800, cwd=ROOT)
                if cost.returncode != 0:
                    print(f"{mode} exited {cost.returncode}: {cost.stderr[-800:]}",
                          file=sys.stderr)
                    return 1
                figures = json.loads(cost.stdout.strip().splitlines()[-1])
                rss_mb = cost.maxrss_kb / 1024
                if mode == "read":
                    floor_mb = rss_mb
                results.append([
                    f"{rows:,}", f"{cells:,}", mode,
                    f"{figures['write_s']:.2f}" if mode != "read" else "-",
                    f"{cost.wall_s:.2f}", f"{rss_mb:.0f}",
                    f"{rss_mb - floor_mb:+.0f}" if mode != "read" else "-",
                    f"{out.stat().st_size / 1e6:.1f}" if out.exists() else "-",
                ])
    print(f"## XLSX writers, kept vs written anew — {machine()}\n")
    print(table(["rows", "output cells", "writer", "write_table s", "child wall s",
                 "peak RSS MB", "over read MB", "output MB"], results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
