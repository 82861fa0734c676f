"""Reading new cells as numbers: one process beside a pool of two (issue 13, point 2).

``enrich.phones.normalize_cells`` reads each distinct new spelling with
phonenumbers (pure Python); from ``POOL_MIN_CELLS`` cells on, a large file's run
reads them in a pool of ``POOL_WORKERS`` processes. This times both on the same
cells, in the same process tree, several times (the median is judged), at a few
sizes from the threshold up, so the pool's gain is measured on the machine at hand.

    .venv/bin/python bench/bench_normalise.py [--sizes 20000,100000,200000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time

from _common import ROOT, machine, table

sys.path.insert(0, str(ROOT))


def spellings(n: int, seed: int = 5) -> list[str]:
    """``n`` distinct cells as CRM exports hold them: spaced, dashed, with a plus, or not."""
    rng = random.Random(seed)
    out: set[str] = set()
    while len(out) < n:
        digits = f"{rng.randrange(10**8):08d}"
        form = rng.randrange(4)
        if form == 0:
            out.add(f"+86 138 {digits[:4]} {digits[4:]}")
        elif form == 1:
            out.add(f"86138{digits}")
        elif form == 2:
            out.add(f"+86-138-{digits[:4]}-{digits[4:]}")
        else:
            out.add(f"+1 (415) 555-{digits[:4]}")
    return sorted(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20000,100000,200000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from enrich.phones import POOL_MIN_CELLS, normalize_cells
    from enrich.prepare import POOL_WORKERS

    rows = []
    for n in (int(x) for x in args.sizes.split(",")):
        cells = spellings(n)
        times: dict[int, list[float]] = {1: [], POOL_WORKERS: []}
        for _ in range(args.repeat):
            for workers in times:
                started = time.perf_counter()
                got = normalize_cells(cells, workers=workers)
                took = time.perf_counter() - started
                assert len(got[0]) >= n
                times[workers].append(took)
        one, pool = statistics.median(times[1]), statistics.median(times[POOL_WORKERS])
        rows.append([f"{n:,}", f"{one:.2f}", f"{pool:.2f}", f"{one / pool:.2f}",
                     f"{n / one:,.0f}", f"{n / pool:,.0f}"])  # fmt: skip
    print(f"## normalising new cells — {machine()}, median of {args.repeat}\n")
    print(table(["cells", "1 process s", f"pool of {POOL_WORKERS} s", "speed-up",
                 "cells/s (1)", f"cells/s ({POOL_WORKERS})"], rows))  # fmt: skip
    print(f"\nPOOL_MIN_CELLS = {POOL_MIN_CELLS:,}: below it a run reads in one process")
    if min(int(x) for x in args.sizes.split(",")) < POOL_MIN_CELLS:
        print("(sizes below POOL_MIN_CELLS are read in one process both times)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
