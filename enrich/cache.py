"""The result ledger: every answer recorded durably as it arrives (SQLite, WAL).

Keyed by (CustSpaceId, normalised number). Kept: ``ok`` and ``no_profile`` answers,
and final API errors (``error``) that another try would not change. Never kept:
transient failures (throttles, timeouts, 5xx) and account-level errors.

Each ``put`` is its own committed transaction; with WAL and ``synchronous=NORMAL`` a
committed answer survives the process being killed (kill -9), so a rerun repeats no
finished call. (A power cut may lose the last commits; they are simply asked again.)
"""

from __future__ import annotations

import io
import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import polars as pl

from enrich.errors import OutputError
from enrich.types import Answer, Key, KeyOutcome, Profile, Status

__all__ = [
    "CACHE_FILES",
    "PROFILE_STRUCT",
    "READING_SCHEMA",
    "RESULT_SCHEMA",
    "KeyOutcome",
    "Ledger",
    "default_cache_path",
]


_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    cust_space_id TEXT NOT NULL,
    phone TEXT NOT NULL,
    status TEXT NOT NULL,
    payload TEXT,
    request_id TEXT,
    fetched_at REAL NOT NULL,
    error_code TEXT,
    error_message TEXT,
    http_status INTEGER,
    PRIMARY KEY (cust_space_id, phone)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS answers_fetched_at ON answers (fetched_at);
CREATE TABLE IF NOT EXISTS spellings (
    raw TEXT NOT NULL,
    region TEXT NOT NULL,
    rules TEXT NOT NULL,
    number TEXT,
    error TEXT,
    several INTEGER NOT NULL,
    PRIMARY KEY (raw, region)
) WITHOUT ROWID;
"""


#: The default cache files: the account's answers, and those of ``--mock`` and of a
#: loopback ``--endpoint`` (an emulator), each kept apart from the account's.
CacheKind = Literal["account", "mock", "local"]
CACHE_FILES: dict[CacheKind, str] = {
    "account": "ledger.sqlite3",
    "mock": "ledger-mock.sqlite3",
    "local": "ledger-local.sqlite3",
}


def default_cache_path(kind: CacheKind = "account") -> Path:
    """``<user cache dir>/cams-enrich/<CACHE_FILES[kind]>`` (platformdirs)."""
    import platformdirs

    folder = Path(platformdirs.user_cache_dir("cams-enrich", appauthor=False))
    return folder / CACHE_FILES[kind]


#: A profile as the ledger keeps it (``Profile.to_json``), decoded.
PROFILE_STRUCT = pl.Struct(
    {
        **{
            attr: pl.String()
            for attr in (
                "about", "address", "description", "vertical", "email", "profile_picture_url"
            )
        },
        "websites": pl.List(pl.String()),
    }
)  # fmt: skip

#: ``Ledger.lookup_frame``'s columns: ``profile`` decoded (null: no profile),
#: ``r_fetched_ms`` the fetch time in whole milliseconds (truncated, as
#: ``int(fetched_at * 1000)``).
RESULT_SCHEMA: dict[str, pl.DataType] = {
    "cust": pl.String(),
    "number": pl.String(),
    "r_status": pl.String(),
    "profile": PROFILE_STRUCT,
    "bp_request_id": pl.String(),
    "r_fetched_ms": pl.Int64(),
    "r_code": pl.String(),
    "r_message": pl.String(),
    "r_http": pl.Int64(),
}

#: The answers of a batch of keys (a JSON array of [CustSpaceId, number]) as one NDJSON
#: text (one JSON object per line), made by SQLite and read by polars: no Python object
#: per answer.
#: The stored payload (the profile's JSON, written by ``json.dumps``) is spliced in as
#: it is, not parsed again: ``json_quote`` escapes every text value. ``CROSS JOIN``: the
#: array is the outer loop, each of its values one seek in the index (SQLite could
#: otherwise choose to scan the table once per value); ``_READINGS_NDJSON`` likewise.
_ANSWERS_NDJSON = (
    "SELECT group_concat('{\"cust\":' || json_quote(a.cust_space_id)"
    " || ',\"number\":' || json_quote(a.phone) || ',\"r_status\":' || json_quote(a.status)"
    " || ',\"profile\":' || coalesce(a.payload, 'null')"
    " || ',\"bp_request_id\":' || json_quote(a.request_id)"
    " || ',\"r_fetched_ms\":' || CAST(a.fetched_at * 1000 AS INTEGER)"
    " || ',\"r_code\":' || json_quote(a.error_code)"
    " || ',\"r_message\":' || json_quote(a.error_message)"
    " || ',\"r_http\":' || coalesce(a.http_status, 'null') || '}', char(10))"
    " FROM json_each(?) w CROSS JOIN answers a"
    " ON a.cust_space_id = w.value ->> 0 AND a.phone = w.value ->> 1"
    " WHERE a.fetched_at >= ?"
)

#: The remembered readings of a batch of cells as one NDJSON text.
_READINGS_NDJSON = (
    "SELECT group_concat('{\"raw\":' || json_quote(s.raw)"
    " || ',\"number\":' || json_quote(s.number) || ',\"err\":' || json_quote(s.error)"
    " || ',\"multi\":' || CASE WHEN s.several THEN 'true' ELSE 'false' END || '}', char(10))"
    " FROM json_each(?) w CROSS JOIN spellings s ON s.raw = w.value AND s.region = ?"
    " WHERE s.rules = ?"
)

#: Keys per ``_ANSWERS_NDJSON`` statement (its text: ~25 MB for long profiles).
_ANSWER_BATCH = 50_000

#: A cell's reading as the ledger remembers it (``phones.normalize_cell``).
READING_SCHEMA: dict[str, pl.DataType] = {
    "raw": pl.String(),
    "number": pl.String(),
    "err": pl.String(),
    "multi": pl.Boolean(),
}

#: Keys and spellings go to SQLite as one JSON array per this many, each one
#: statement joined against the table (``json_each``): a set operation, not a
#: query per key, and no statement with a million parameters.
_BATCH = 200_000


def _batches(items: list[Any], size: int = _BATCH) -> Iterable[str]:
    for i in range(0, len(items), size):
        yield json.dumps(items[i : i + size], ensure_ascii=False)


def _json_arrays(values: pl.Series, size: int) -> Iterable[str]:
    """``values`` (text, or lists of text; no null) as JSON arrays of ``size`` at most,
    encoded by polars."""
    for i in range(0, values.len(), size):
        part = values.slice(i, size).to_frame("v")
        items = part.select(pl.struct("v").struct.json_encode().str.slice(5).str.head(-1))
        yield "[" + items.to_series().str.join(",").item() + "]"


def _ndjson(text: str | None, schema: dict[str, pl.DataType]) -> list[pl.DataFrame]:
    """An NDJSON text from SQLite as a frame (none for no rows)."""
    if not text:
        return []
    data = text.encode()
    del text
    return [pl.read_ndjson(io.BytesIO(data), schema=schema)]


class Ledger:
    """SQLite ledger of answers. ``path=None`` keeps it in memory (``--no-cache``)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        target = ":memory:"
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise OutputError(
                    f"cannot create the cache folder {path.parent}: {exc.strerror}"
                ) from None
            target = str(path)
        try:
            self._db = sqlite3.connect(target, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise OutputError(
                f"cannot use the cache {path}: {exc}; pass another --cache PATH or --no-cache"
            ) from None

    def close(self) -> None:
        """Close the database (every put is already committed)."""
        self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def lookup_frame(self, keys: Iterable[Key], *, not_before: float) -> pl.DataFrame:
        """Recorded outcomes for ``keys`` fetched at or after ``not_before``, as a frame.

        Columns ``RESULT_SCHEMA``. The keys go to SQLite sorted (its primary-key
        index is then walked forwards: 3x faster for a million keys than in a
        shuffled file's order), 50,000 per statement joined
        against the table, whose answers come back as one NDJSON text that polars
        reads, profiles included: a million-row run builds no Python object per answer.
        """
        pairs = keys if isinstance(keys, list) else list(keys)
        asked = pl.DataFrame(
            {"cust": [k[0] for k in pairs], "number": [k[1] for k in pairs]},
            schema={"cust": pl.String, "number": pl.String},
        )
        pairs_json = asked.sort("cust", "number").select(pl.concat_list("cust", "number"))
        frames: list[pl.DataFrame] = []
        for batch in _json_arrays(pairs_json.to_series(), _ANSWER_BATCH):
            (text,) = self._db.execute(_ANSWERS_NDJSON, (batch, not_before)).fetchone()
            frames += _ndjson(text, RESULT_SCHEMA)
        return pl.concat(frames) if frames else pl.DataFrame(schema=RESULT_SCHEMA)

    def lookup_readings(
        self, raws: list[str] | pl.Series, *, region: str | None, rules: str
    ) -> pl.DataFrame:
        """The remembered readings of the cells ``raws`` (columns ``READING_SCHEMA``).

        Only readings made under ``rules`` (``phones.NORMALIZER_VERSION``) and the same
        ``--default-region`` count: another phonenumbers or another rule reads anew.
        """
        cells = raws if isinstance(raws, pl.Series) else pl.Series(raws, dtype=pl.String)
        frames: list[pl.DataFrame] = []
        for batch in _json_arrays(cells.sort(), _BATCH):
            (text,) = self._db.execute(_READINGS_NDJSON, (batch, region or "", rules)).fetchone()
            frames += _ndjson(text, READING_SCHEMA)
        return pl.concat(frames) if frames else pl.DataFrame(schema=READING_SCHEMA)

    def remember_readings(self, readings: pl.DataFrame, *, region: str | None, rules: str) -> None:
        """Keep ``readings`` (columns ``READING_SCHEMA``) for later runs, in one transaction.

        A failure to write is no failed run: the cells are simply read again next time.
        """
        if not readings.height:
            return
        rows = (
            (raw, region or "", rules, number, err, int(multi))
            for raw, number, err, multi in readings.iter_rows()
        )
        try:
            with self._db:
                self._db.execute("BEGIN")
                self._db.executemany(
                    "INSERT OR REPLACE INTO spellings VALUES (?, ?, ?, ?, ?, ?)", rows
                )
        except sqlite3.Error:
            return

    def lookup(self, keys: Iterable[Key], *, not_before: float) -> dict[Key, KeyOutcome]:
        """Recorded outcomes for ``keys`` (fetched at or after ``not_before``) as
        ``KeyOutcome`` objects, by key: for a few keys (``lookup_frame`` for many)."""
        found: dict[Key, KeyOutcome] = {}
        for batch in _batches([list(key) for key in keys]):
            cursor = self._db.execute(
                "SELECT a.cust_space_id, a.phone, a.status, a.payload, a.request_id,"
                " a.fetched_at, a.error_code, a.error_message, a.http_status"
                " FROM json_each(?) w JOIN answers a"
                " ON a.cust_space_id = w.value ->> 0 AND a.phone = w.value ->> 1"
                " WHERE a.fetched_at >= ?",
                (batch, not_before),
            )
            for space, phone, status, payload, *rest in cursor:
                profile = Profile.from_json(json.loads(payload)) if payload else None
                found[(space, phone)] = KeyOutcome(status, profile, *rest)
        return found

    def put_answer(self, key: Key, answer: Answer) -> None:
        """Record a successful answer (ok or no_profile), committed at once."""
        status: Status = "ok" if answer.profile is not None else "no_profile"
        payload = json.dumps(answer.profile.to_json()) if answer.profile is not None else None
        self._write(key, status, payload, answer.request_id, answer.fetched_at, None, None, None)

    def put_error(
        self,
        key: Key,
        *,
        code: str,
        message: str,
        http_status: int | None,
        request_id: str | None,
        fetched_at: float,
    ) -> None:
        """Record a final API error (one that another try would not change)."""
        self._write(key, "error", None, request_id, fetched_at, code, message, http_status)

    def _write(self, key: Key, *values: Any) -> None:
        try:
            self._db.execute(
                "INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*key, *values),
            )
        except sqlite3.Error as exc:
            raise OutputError(f"cannot write to the cache {self.path}: {exc}") from None

    def stats(self) -> dict[str, Any]:
        """Counts by status, oldest and newest fetch time, file size."""
        by_status = dict(
            self._db.execute("SELECT status, COUNT(*) FROM answers GROUP BY status").fetchall()
        )
        oldest, newest = self._db.execute(
            "SELECT MIN(fetched_at), MAX(fetched_at) FROM answers"
        ).fetchone()
        size = self.path.stat().st_size if self.path is not None and self.path.exists() else 0
        return {
            "path": str(self.path) if self.path else ":memory:",
            "entries": sum(by_status.values()),
            "by_status": by_status,
            "oldest": oldest,
            "newest": newest,
            "bytes": size,
        }

    def prune(self, *, older_than: float) -> int:
        """Delete answers fetched before ``older_than`` (POSIX time); return how many."""
        cur = self._db.execute("DELETE FROM answers WHERE fetched_at < ?", (older_than,))
        return cur.rowcount

    def clear(self) -> int:
        """Delete every answer; return how many."""
        cur = self._db.execute("DELETE FROM answers")
        self._db.execute("VACUUM")
        return cur.rowcount
