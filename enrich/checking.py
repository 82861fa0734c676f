"""``enrich check``: what a run would do, without calling anything."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import polars as pl

from enrich.cache import Ledger
from enrich.job import RunConfig
from enrich.limiter import AdaptParams
from enrich.runner import DEMO_CUST_SPACE_ID, cache_path_for, limit_to_first_keys, prepare

__all__ = ["check", "render_check"]


def check(cfg: RunConfig, *, now: float | None = None, examples: int = 5) -> dict[str, Any]:
    """Counts for INPUT: rows, valid, invalid (with examples), duplicates, fresh, calls, time."""
    import time

    when = time.time() if now is None else now
    if not cfg.cust_space_id and not cfg.cust_space_column:
        # counting needs no CustSpaceId; --mock runs use the demo one
        cfg = replace(cfg, cust_space_id=DEMO_CUST_SPACE_ID if cfg.mock else "(none)")
    prep = prepare(cfg)
    if cfg.limit is not None:
        prep = limit_to_first_keys(prep, cfg.limit)
    fresh = 0
    cache_path = cache_path_for(cfg)
    if cache_path is not None and cache_path.exists():
        with Ledger(cache_path) as ledger:
            fresh = len(ledger.lookup(prep.keys, not_before=when - cfg.max_age_s))
    bad = prep.rows.filter(pl.col("err").is_not_null())
    valid_rows = prep.n_rows - bad.height
    calls = len(prep.keys) - fresh
    pace = cfg.rate * AdaptParams().headroom
    return {
        "input": str(cfg.input),
        "phone_column": prep.phone_column,
        "rows": prep.n_rows,
        "valid": valid_rows,
        "invalid": prep.invalid,
        "missing_cust_space_id": prep.missing_space,
        "invalid_examples": [
            {"row": row, "phone": raw, "error_code": err}
            for row, raw, err in bad.select("row", "raw", "err").head(examples).iter_rows()
        ],
        "unique_numbers": len(prep.keys),
        "duplicates": valid_rows - len(prep.keys),
        "fresh_in_cache": fresh,
        "calls_needed": calls,
        "rate": cfg.rate,
        "estimated_s": round(calls / pace, 1) if calls else 0.0,
    }


def _duration(seconds: float) -> str:
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def render_check(r: dict[str, Any]) -> str:
    """The report as people read it."""
    lines = [
        f"input            {r['input']}",
        f"phone column     {r['phone_column']}",
        f"rows             {r['rows']}",
        f"valid numbers    {r['valid']}",
        f"invalid          {r['invalid']}",
    ]
    for ex in r["invalid_examples"]:
        shown = "(empty)" if ex["phone"] is None else repr(ex["phone"])
        lines.append(f"  row {ex['row']}: {shown} {ex['error_code']}")
    if r["missing_cust_space_id"]:
        lines.append(f"no CustSpaceId   {r['missing_cust_space_id']}")
    lines += [
        f"duplicates       {r['duplicates']}",
        f"distinct numbers {r['unique_numbers']}",
        f"fresh in cache   {r['fresh_in_cache']}",
        f"calls needed     {r['calls_needed']}",
        f"estimated time   {_duration(r['estimated_s'])} at {r['rate']:g} requests/s "
        "(plus retries)",
    ]
    return "\n".join(lines)
