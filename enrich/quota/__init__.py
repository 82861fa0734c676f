"""The account's quota, shared by every run on one store (SPEC.md "Sharing the account's quota").

::

    quota = open_quota(spec, cache_dir=cache_folder)      # None for "off"
    async with quota, quota.join(budget, rate=10, input="leads.csv") as member:
        ...
        waited = await member.acquire()   # before every request, retries included
        ...
    await quota.status()                   # enrich quota status

A store is a SQLite file (the default, one host) or a Redis server ≥ 6.2
(``redis://``, ``rediss://``; several hosts). Runs on one store and one budget
never together start more than ``min(--rate)`` requests in any sliding second,
split it evenly while several have work, and take over a leaving (or killed)
run's share within a second; see ``_core`` for the algorithm. The password of a
Redis URL appears in no message, event or :meth:`Quota.describe`.
"""

from __future__ import annotations

from pathlib import Path

from enrich.quota._core import QuotaParams
from enrich.quota._member import EventHook, Member, Quota
from enrich.quota._spec import DEFAULT_FILE, RedisSpec, SqliteSpec, parse_spec, redact_url
from enrich.quota._types import BudgetStatus, MemberStatus, QuotaEvent, QuotaLostError

__all__ = [
    "DEFAULT_FILE",
    "BudgetStatus",
    "EventHook",
    "Member",
    "MemberStatus",
    "Quota",
    "QuotaEvent",
    "QuotaLostError",
    "QuotaParams",
    "open_quota",
    "redact_url",
]


def open_quota(
    spec: str | None,
    *,
    cache_dir: Path,
    params: QuotaParams | None = None,
    on_event: EventHook | None = None,
) -> Quota | None:
    """The quota store ``spec`` names (``--quota``), or ``None`` for ``off``.

    ``None`` or ``""`` is ``cache_dir / "quota.sqlite3"``; a path is a SQLite file;
    ``redis://[user:password@]host:port/db`` and ``rediss://…`` a Redis server.
    Nothing is contacted yet (:meth:`Quota.join` does it); a spec that cannot be a
    store is a :class:`~enrich.errors.UsageError`. ``on_event`` hears, from any
    member, when the store is lost and when it comes back (one log line each).
    """
    parsed = parse_spec(spec, cache_dir=cache_dir)
    chosen = params or QuotaParams()
    if parsed is None:
        return None
    if isinstance(parsed, SqliteSpec):
        from enrich.quota._sqlite import SqliteBackend

        return Quota(SqliteBackend(parsed, params=chosen), params=chosen, on_event=on_event)
    assert isinstance(parsed, RedisSpec)
    from enrich.quota._redis import RedisBackend

    return Quota(RedisBackend(parsed, params=chosen), params=chosen, on_event=on_event)
