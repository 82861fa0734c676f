"""``enrich quota status``: the budgets of a quota store and the runs on them now."""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict

from enrich.cache import default_cache_path
from enrich.quota import BudgetStatus, open_quota
from enrich.types import utc_timestamp

__all__ = ["quota_status"]


def quota_status(spec: str | None, *, as_json: bool = False) -> str:
    """The report for ``spec`` (``--quota``; None is the default store). Exit 0 always,
    but for a store that cannot be reached (``InputError``, one line)."""
    quota = open_quota(spec, cache_dir=default_cache_path().parent)
    if quota is None:
        return "quota: off (runs pace themselves alone)"
    store = quota.describe()

    async def read() -> list[BudgetStatus]:
        async with quota:
            return await quota.status()

    budgets = asyncio.run(read())
    if as_json:
        return json.dumps({"store": store, "budgets": [asdict(b) for b in budgets]}, indent=2)
    lines = [f"store  {store}"]
    if not budgets:
        lines.append("no run is using it now")
    for b in budgets:
        lines.append(f"budget {b.name}: {b.rate:g}/s (paced at {b.pace:.2f}/s), "
                     f"{len(b.members)} run(s)")  # fmt: skip
        for m in b.members:
            state = "busy" if m.busy else "idle"
            lines.append(
                f"  pid {m.pid} on {m.host}: {m.input or '-'}, {m.recent_rate:.2f}/s over 10s "
                f"(--rate {m.rate:g}, {state}, since {utc_timestamp(m.joined_at)})"
            )
    return "\n".join(lines)
