"""The SQLite store: one file shared by the runs of one host.

Each grant is one ``BEGIN IMMEDIATE`` transaction in WAL mode, run in the
member's own thread so the event loop never waits on SQLite's lock. The clock is
``time.monotonic()`` (system-wide on Linux, never stepped by NTP), read *after*
the lock is held, so the transactions see it in order; wall time is kept only to
show when a run joined. A run killed while it holds the lock loses it with its process (the
kernel drops POSIX locks), so nothing it held can stall the others.
"""

from __future__ import annotations

import asyncio
import math
import sqlite3
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TypeVar

from enrich.quota._core import MemberState, QuotaParams, step, window_rate
from enrich.quota._spec import SqliteSpec
from enrich.quota._types import BudgetStatus, MemberInfo, MemberStatus, StoreUnavailable
from enrich.quota._util import budget_status, one_line, os_error_line

__all__ = ["SqliteBackend"]

T = TypeVar("T")

SCHEMA_VERSION = 2
_TABLES = frozenset({"budget", "member", "grants"})
_SCHEMA = """
CREATE TABLE IF NOT EXISTS budget (
    name TEXT PRIMARY KEY,
    tat REAL NOT NULL,
    pace REAL NOT NULL,
    stamp REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS member (
    id TEXT PRIMARY KEY,
    budget TEXT NOT NULL,
    rate REAL NOT NULL,
    heartbeat REAL NOT NULL,
    next REAL NOT NULL DEFAULT 0,
    last REAL,
    backlog INTEGER NOT NULL DEFAULT 1,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    input TEXT NOT NULL,
    joined REAL NOT NULL,
    joined_wall REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS member_budget ON member (budget);
CREATE TABLE IF NOT EXISTS grants (
    member TEXT NOT NULL,
    sec INTEGER NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (member, sec)
) WITHOUT ROWID;
"""
_UPSERT_MEMBER = """
INSERT INTO member (id, budget, rate, heartbeat, pid, host, input, joined, joined_wall)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET rate = excluded.rate, heartbeat = excluded.heartbeat,
    pid = excluded.pid, host = excluded.host, input = excluded.input
"""


class SqliteBackend:
    """A quota store in one SQLite file (see the module docstring)."""

    remote = False

    def __init__(self, spec: SqliteSpec, *, params: QuotaParams,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._path = spec.path
        self._params = params
        self._clock = clock
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    def describe(self) -> str:
        return str(self._path)

    # -- the member's operations, each one transaction in the store's thread --

    async def register(self, info: MemberInfo) -> float:
        return await self._run(self._register, info)

    async def heartbeat(self, info: MemberInfo) -> None:
        await self._run(self._heartbeat, info)

    async def take(self, info: MemberInfo, want: int) -> list[float]:
        return await self._run(self._take, info, want)

    async def leave(self, info: MemberInfo) -> None:
        await self._run(self._leave, info)

    async def status(self) -> list[BudgetStatus]:
        return await asyncio.to_thread(self._status)

    async def aclose(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            conn, self._conn = self._conn, None
            if conn is not None:
                executor.submit(conn.close)
            await asyncio.to_thread(executor.shutdown, wait=True)

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="enrich-quota")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, partial(fn, *args))
        except sqlite3.Error as exc:
            raise StoreUnavailable(one_line(str(exc) or type(exc).__name__)) from None
        except OSError as exc:
            raise StoreUnavailable(os_error_line(exc)) from None

    def _connect(self) -> sqlite3.Connection:
        if self._conn is not None:
            return self._conn
        if self._path.is_dir():
            raise StoreUnavailable(f"{self._path} is a folder, not a quota file")
        self._path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self._path, timeout=self._params.store_timeout_s,
                               isolation_level=None, check_same_thread=False)
        try:
            self._set_wal(conn)
            # the state lives for seconds: a crash of the machine may lose it harmlessly
            conn.execute("PRAGMA synchronous=OFF")
            conn.execute("BEGIN IMMEDIATE")  # one creator at a time, behind the busy wait
            try:
                tables = {row[0] for row in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table'")}
                if tables - _TABLES:
                    raise StoreUnavailable(f"{self._path} is another program's database, "
                                           "not a quota store")
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if tables == _TABLES and version != SCHEMA_VERSION:
                    # another version's layout: its state lives for seconds, start anew
                    for table in sorted(_TABLES):
                        conn.execute(f"DROP TABLE {table}")
                    tables = set()
                if tables != _TABLES:
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            conn.execute(statement)
                    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return conn

    def _set_wal(self, conn: sqlite3.Connection) -> None:
        """WAL mode; switching to it skips SQLite's busy wait, so wait here (runs start
        together and create the file together)."""
        deadline = time.monotonic() + self._params.store_timeout_s
        while True:
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.005)

    def _transaction(self, body: Callable[[sqlite3.Connection, float], T]) -> T:
        conn = self._connect()
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = body(conn, self._clock())  # the clock is read with the lock held
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    def _register(self, info: MemberInfo) -> float:
        def body(conn: sqlite3.Connection, now: float) -> float:
            self._upsert(conn, info, now)
            return now

        return self._transaction(body)

    def _heartbeat(self, info: MemberInfo) -> None:
        ttl = self._params.ttl_s

        def body(conn: sqlite3.Connection, now: float) -> None:
            self._upsert(conn, info, now)
            conn.execute("DELETE FROM member WHERE heartbeat < ? OR heartbeat > ?",
                         (now - ttl, now + ttl))
            conn.execute("DELETE FROM grants WHERE sec < ? OR member NOT IN "
                         "(SELECT id FROM member)", (math.floor(now) - 11,))

        self._transaction(body)

    @staticmethod
    def _upsert(conn: sqlite3.Connection, info: MemberInfo, now: float) -> None:
        conn.execute(_UPSERT_MEMBER, (info.id, info.budget, info.rate, now, info.pid,
                                      info.host, info.input, info.joined or now, time.time()))

    def _take(self, info: MemberInfo, want: int) -> list[float]:
        params = self._params

        def body(conn: sqlite3.Connection, now: float) -> list[float]:
            mono = time.monotonic()
            tat, pace, stamp = conn.execute(
                "SELECT tat, pace, stamp FROM budget WHERE name = ?", (info.budget,),
            ).fetchone() or (0.0, 0.0, 0.0)
            members: dict[str, MemberState] = {}
            for who, rate, nxt, last, backlog, beat in conn.execute(
                "SELECT id, rate, next, last, backlog, heartbeat FROM member WHERE budget = ?",
                (info.budget,),
            ):
                if who == info.id or now - params.ttl_s <= beat <= now + params.ttl_s:
                    members[who] = MemberState(rate=rate, next=nxt, last=last,
                                               backlog=bool(backlog))
            done = step(now=now, me=info.id, rate=info.rate, want=want,
                        tat=tat, last_pace=pace, stamp=stamp, members=members, params=params)
            conn.execute("INSERT INTO budget (name, tat, pace, stamp) VALUES (?, ?, ?, ?) "
                         "ON CONFLICT (name) DO UPDATE SET tat = excluded.tat, "
                         "pace = excluded.pace, stamp = excluded.stamp",
                         (info.budget, done.tat, done.pace, now))
            self._upsert(conn, info, now)
            conn.execute("UPDATE member SET next = ?, last = ?, backlog = ? WHERE id = ?",
                         (done.me.next, done.me.last, int(done.me.backlog), info.id))
            counts: defaultdict[int, int] = defaultdict(int)
            for slot in done.slots:
                counts[math.floor(slot)] += 1
            conn.executemany("INSERT INTO grants (member, sec, n) VALUES (?, ?, ?) "
                             "ON CONFLICT (member, sec) DO UPDATE SET n = n + excluded.n",
                             [(info.id, sec, n) for sec, n in counts.items()])
            return [mono + (slot - now) for slot in done.slots]

        return self._transaction(body)

    def _leave(self, info: MemberInfo) -> None:
        def body(conn: sqlite3.Connection, now: float) -> None:
            conn.execute("DELETE FROM member WHERE id = ?", (info.id,))
            conn.execute("DELETE FROM grants WHERE member = ?", (info.id,))

        self._transaction(body)

    # -- status: read-only, and never creates the file --

    def _status(self) -> list[BudgetStatus]:
        if not self._path.is_file():
            return []
        try:
            conn = sqlite3.connect(f"{self._path.as_uri()}?mode=ro", uri=True,
                                   timeout=self._params.store_timeout_s)
        except sqlite3.Error as exc:
            raise StoreUnavailable(one_line(str(exc))) from None
        try:
            return _read_status(conn, now=self._clock(), params=self._params)
        except sqlite3.Error as exc:
            raise StoreUnavailable(one_line(str(exc))) from None
        finally:
            conn.close()


def _read_status(conn: sqlite3.Connection, *, now: float,
                 params: QuotaParams) -> list[BudgetStatus]:
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if tables != _TABLES:
        return []
    counts: defaultdict[str, dict[int, int]] = defaultdict(dict)
    for who, sec, n in conn.execute("SELECT member, sec, n FROM grants"):
        counts[who][sec] = n
    by_budget: defaultdict[str, list[tuple[float, MemberStatus]]] = defaultdict(list)
    for who, budget, rate, nxt, backlog, pid, host, input_, joined, wall in conn.execute(
        "SELECT id, budget, rate, next, backlog, pid, host, input, joined, joined_wall "
        "FROM member "
        "WHERE heartbeat BETWEEN ? AND ?", (now - params.ttl_s, now + params.ttl_s),
    ):
        busy = bool(backlog) and now <= nxt + params.idle_grace_s
        recent = window_rate(counts[who], now=now, joined=joined)
        by_budget[budget].append((joined, MemberStatus(
            pid=pid, host=host, input=input_, rate=rate, recent_rate=recent,
            joined_at=wall, busy=busy)))
    return [budget_status(name, rows, params) for name, rows in sorted(by_budget.items())]
