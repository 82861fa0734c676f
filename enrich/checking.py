"""``enrich check``: what a run would do, without calling anything."""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Any

from enrich.cache import Ledger
from enrich.job import RunConfig
from enrich.limiter import AdaptParams
from enrich.prepare import DEMO_CUST_SPACE_ID, cache_path_for, count_keys

__all__ = ["check", "render_check"]


def check(cfg: RunConfig, *, now: float | None = None, examples: int = 5) -> dict[str, Any]:
    """What ``enrich run`` with the same options would do, calling nothing.

    Reads and validates INPUT exactly as ``run`` does (same ``prepare``, same
    ``--limit`` prefix, same cache and ``--max-age``), so ``calls_needed`` is
    the number of first attempts ``run`` then makes; retries come on top.
    Without a CustSpaceId (no ``--cust-space-id``, no column, not ``--mock``)
    the numbers are counted but the cache cannot be asked: ``fresh_in_cache``
    is ``None`` and ``calls_needed`` an upper bound.
    """
    when = time.time() if now is None else now
    space_known = bool(cfg.cust_space_id or cfg.cust_space_column or cfg.mock)
    if not cfg.cust_space_id and not cfg.cust_space_column:
        # counting needs no CustSpaceId; --mock runs use the demo one
        cfg = replace(cfg, cust_space_id=DEMO_CUST_SPACE_ID if cfg.mock else "(none)")
    counts = count_keys(cfg, examples=examples)  # a large file is read in batches
    cache_path = cache_path_for(cfg)
    fresh: int | None = 0
    if not space_known:
        fresh = None
    elif cache_path is not None and cache_path.exists():
        with Ledger(cache_path) as ledger:
            fresh = ledger.lookup_frame(counts.keys, not_before=when - cfg.max_age_s).height
    calls = len(counts.keys) - (fresh or 0)
    pace = cfg.rate * AdaptParams().headroom
    return {
        "input": str(cfg.input),
        "phone_column": counts.phone_column,
        "rows": counts.rows,
        "rows_in_file": counts.rows_in_file,
        "limit": cfg.limit,
        "valid": counts.valid,
        "invalid": counts.invalid,
        "missing_cust_space_id": counts.missing_space,
        "multi_number_cells": counts.multi_number_cells,
        "invalid_examples": [
            {"row": row, "phone": raw, "error_code": err}
            for row, raw, err in counts.invalid_examples
        ],
        "unique_numbers": len(counts.keys),
        "duplicates": counts.valid - len(counts.keys),
        "cache": None if cache_path is None else str(cache_path),
        "fresh_in_cache": fresh,
        "calls_needed": calls,
        "rate": cfg.rate,
        "estimated_s": round(calls / pace, 1) if calls else 0.0,
    }


def _duration(seconds: float, *, calls: int) -> str:
    """An estimate as people read it, rounded up: ``2.1`` → ``3s``, ``3601`` → ``1h01m``.

    Never ``0s`` when there are calls to make: under a second is ``<1s``.
    """
    if calls <= 0:
        return "0s"
    if seconds < 1:
        return "<1s"
    s = math.ceil(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    m = math.ceil(s / 60)
    return f"{m // 60}h{m % 60:02d}m"


def render_check(r: dict[str, Any]) -> str:
    """The report as people read it."""
    rows = str(r["rows"])
    if r.get("limit") is not None and r["rows"] != r.get("rows_in_file", r["rows"]):
        rows += f" of {r['rows_in_file']} (up to distinct number {r['limit']}, --limit)"
    lines = [
        f"input            {r['input']}",
        f"phone column     {r['phone_column']}",
        f"rows             {rows}",
        f"valid numbers    {r['valid']}",
        f"invalid          {r['invalid']}",
    ]
    for ex in r["invalid_examples"]:
        shown = "(empty)" if ex["phone"] is None else repr(ex["phone"])
        lines.append(f"  row {ex['row']}: {shown} {ex['error_code']}")
    more = r["invalid"] + r["missing_cust_space_id"] - len(r["invalid_examples"])
    if more > 0:
        lines.append(f"  … and {more} more (all of them in the run's error report)")
    if r["missing_cust_space_id"]:
        lines.append(f"no CustSpaceId   {r['missing_cust_space_id']}")
    if r.get("multi_number_cells"):
        n = r["multi_number_cells"]
        lines.append(f"several numbers  {n} cells (the first valid one is used)")
    lines += [
        f"duplicates       {r['duplicates']}",
        f"distinct numbers {r['unique_numbers']}",
        "fresh in cache   "
        + (
            "unknown: give --cust-space-id (or --cust-space-column) to ask the cache"
            if r["fresh_in_cache"] is None
            else f"{r['fresh_in_cache']}" + (f" (cache {r['cache']})" if r.get("cache") else "")
        ),
        f"calls needed     {r['calls_needed']}"
        + (" at most" if r["fresh_in_cache"] is None else ""),
        f"estimated time   {_duration(r['estimated_s'], calls=r['calls_needed'])} "
        f"at {r['rate']:g} requests/s "
        "(plus retries)",
    ]
    return "\n".join(lines)
