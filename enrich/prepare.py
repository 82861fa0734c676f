"""Everything a run does before it calls: read, find the column, normalise, dedupe.

``prepare`` is all ``enrich check`` needs; it imports neither aiohttp nor the client.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

import polars as pl

from enrich import frames, phones, stream
from enrich.cache import READING_SCHEMA, Ledger, default_cache_path
from enrich.endpoints import is_loopback, validate_endpoint
from enrich.errors import InputError
from enrich.frames.stream import NotStreamable, StreamedTable
from enrich.job import RunConfig
from enrich.types import BP_COLUMNS, Key

__all__ = [
    "BP_PHONE_COLUMN",
    "DEMO_CUST_SPACE_ID",
    "PRIVATE_COLUMNS",
    "KeyCounts",
    "Prepared",
    "Readings",
    "cache_path_for",
    "count_keys",
    "group_keys",
    "input_name",
    "limit_to_first_keys",
    "prepare",
    "refuse_enriched_input",
]

#: Processes reading new cells when there are many (``phones.normalize_cells``).
POOL_WORKERS = 2

#: A large file's per-batch counts are merged once they hold this many groups.
_MERGE_ROWS = 1_000_000

#: The CustSpaceId ``--mock`` uses when none is given.
DEMO_CUST_SPACE_ID = "demo-space"


#: The 14th output column: which ``--phone-column`` gave the number (several given).
BP_PHONE_COLUMN = "bp_phone_column"
#: The columns a run adds beside the input's for its error report (never written to
#: the enriched file): an input column of one of these names is refused.
PRIVATE_COLUMNS: tuple[str, ...] = (
    "_row", "_source_row", "_raw", "_cust", "_message", "_http", "_attempts",
)  # fmt: skip


@dataclass
class Prepared:
    """The input read and normalised; nothing called."""

    table: frames.Table
    phone_column: str
    """The phone column; with several ``--phone-column``, their names joined by ``, ``."""
    rows: pl.DataFrame
    """One per input data row, in order: ``row`` (1-based among the data rows),
    ``raw``, ``cust``, ``number``, ``err``, ``multi`` (the cell held several
    numbers), ``source_row`` (the line or sheet row the user sees) and, with
    several phone columns, ``phone_column`` (the one the number came from)."""
    keys: list[Key]  # distinct valid keys in first-appearance order
    phone_columns: tuple[str, ...] = ()
    """Every phone column, in the order they are tried."""
    source: StreamedTable | None = None
    """A large file read in batches: ``rows`` then holds one row per distinct
    (CustSpaceId, phone cells), ``row`` its first data row and ``n`` how many rows
    it stands for; ``table.df`` has the columns and no row. Written by
    ``report.write_outputs`` batch by batch."""
    batch_keys: Callable[[pl.DataFrame], pl.DataFrame] | None = None
    """A large file: ``group_keys`` of a batch (the columns ``rows`` is keyed by)."""

    def _count(self, where: pl.Expr | None = None) -> int:
        rows = self.rows if where is None else self.rows.filter(where)
        if self.source is None:
            return rows.height
        return int(rows["n"].sum())

    @property
    def n_rows(self) -> int:
        """Input data rows."""
        return self._count()

    @property
    def invalid(self) -> int:
        """Rows with a missing or invalid number."""
        return self._count(pl.col("err").is_in(phones.PHONE_ERROR_CODES))

    @property
    def multi_number_cells(self) -> int:
        """Rows whose phone cell held several numbers (the first valid one is used)."""
        if "multi" not in self.rows.columns:
            return 0
        return self._count(pl.col("multi"))

    @property
    def several_columns(self) -> bool:
        """``--phone-column`` was given more than once: ``bp_phone_column`` is written."""
        return len(self.phone_columns) > 1

    @property
    def missing_space(self) -> int:
        """Rows with an empty CustSpaceId cell."""
        return self._count(pl.col("err") == "Client.MissingCustSpaceId")


def _cust_series(cfg: RunConfig, df: pl.DataFrame, n: int) -> pl.Series:
    if cfg.cust_space_column:
        if cfg.cust_space_column not in df.columns:
            cols = ", ".join(df.columns)
            raise InputError(
                f"--cust-space-column {cfg.cust_space_column!r} not found in "
                f"{input_name(cfg)}; columns: {cols}"
            )
        return frames.cell_texts(df[cfg.cust_space_column]).str.strip_chars()
    space = (cfg.cust_space_id or "").strip()
    if not space:
        raise InputError(
            "no CustSpaceId: pass --cust-space-id ID (or set CAMS_CUST_SPACE_ID), "
            "or --cust-space-column NAME"
        )
    return pl.repeat(space, n, dtype=pl.String, eager=True)


def input_name(cfg: RunConfig) -> str:
    """How messages name the input: its file name, or ``<stdin>``."""
    return frames.STDIN_NAME if frames.is_stdio(cfg.input) else cfg.input.name


def prepare(
    cfg: RunConfig, *, table: frames.Table | None = None, stdin: BinaryIO | None = None
) -> Prepared:
    """Read the input (or take ``table``, a frame given by the Python API), find the
    phone column(s), normalise every distinct value.

    ``stdin``: where ``-`` reads from (default ``sys.stdin``'s bytes).
    """
    if cfg.default_region:
        phones.validate_region(cfg.default_region)
    if isinstance(table, StreamedTable):
        try:
            return _prepare_streamed(cfg, table)
        except NotStreamable:
            table = None  # read whole: the reader says what is wrong, or reads it its way
    if table is None:
        table = frames.read_table(
            cfg.input,
            sheet=cfg.sheet,
            separator=cfg.separator,
            encoding=cfg.encoding,
            header_row=cfg.header_row,
            input_format=cfg.input_format,
            stdin=stdin,
        )
    df = table.df
    columns = _phone_columns(cfg, table)
    memory = Readings(cfg)
    readings = [_read_phones(df[c], cfg.default_region, memory) for c in columns]
    phone = readings[0] if len(columns) == 1 else _first_valid(readings, columns)
    rows = _with_space_errors(
        pl.DataFrame([_cust_series(cfg, df, df.height).alias("cust")])
        .with_row_index("row", offset=1)
        .with_columns(*phone.get_columns(), _source_rows(table))
        .select("row", "raw", "cust", pl.exclude("row", "raw", "cust"))
    )
    return Prepared(table, ", ".join(columns), rows, _keys(rows), tuple(columns))


def _phone_columns(cfg: RunConfig, table: frames.Table) -> list[str]:
    columns = table.df.columns
    refuse_enriched_input(columns)
    source = input_name(cfg)
    if cfg.phone_columns:
        return phones.find_phone_columns(columns, explicit=cfg.phone_columns, source=source)
    others = {name: sheet.columns for name, sheet in table.other_sheets.items()}
    return [phones.find_phone_column(columns, source=source, other_sheets=others)]


def _with_space_errors(rows: pl.DataFrame) -> pl.DataFrame:
    return rows.with_columns(
        pl.when(pl.col("err").is_null() & (pl.col("cust").is_null() | (pl.col("cust") == "")))
        .then(pl.lit("Client.MissingCustSpaceId"))
        .otherwise(pl.col("err"))
        .alias("err")
    )


def _keys(rows: pl.DataFrame) -> list[Key]:
    """The distinct valid keys of ``rows`` (in row order), in first-appearance order."""
    uniq = rows.filter(pl.col("err").is_null()).select("cust", "number").unique(maintain_order=True)
    return list(zip(uniq["cust"].to_list(), uniq["number"].to_list(), strict=True))


def group_keys(cfg: RunConfig, df: pl.DataFrame, columns: Sequence[str]) -> pl.DataFrame:
    """A batch's rows as what decides their outcome: ``cust`` (stripped) and the phone
    cells as text (``_p0``, ``_p1``, …)."""
    return pl.DataFrame(
        [
            _cust_series(cfg, df, df.height).alias("cust"),
            *(frames.cell_texts(df[c]).alias(f"_p{i}") for i, c in enumerate(columns)),
        ]
    )


def _prepare_streamed(cfg: RunConfig, table: StreamedTable) -> Prepared:
    """Pass 1 over a large file: the distinct (CustSpaceId, phone cells) and their counts.

    Raises:
        NotStreamable: a batch the whole-file reader would read otherwise.
    """
    columns = _phone_columns(cfg, table)
    _cust_series(cfg, table.df, 0)  # the missing-column and no-CustSpaceId errors first
    on = ["cust", *(f"_p{i}" for i in range(len(columns)))]
    groups: pl.DataFrame | None = None
    parts: list[pl.DataFrame] = []
    seen = 0

    def merged() -> pl.DataFrame:
        both = pl.concat([*([groups] if groups is not None else []), *parts])
        return both.group_by(on).agg(pl.col("n").sum(), pl.col("row").min())

    needed = [*columns, *([cfg.cust_space_column] if cfg.cust_space_column else [])]
    table.key_columns = tuple(dict.fromkeys(needed))
    plain = table.layout is not None
    for batch in table.batches(columns=table.key_columns):
        plain = plain and batch.plain
        parts.append(
            group_keys(cfg, batch.df, columns)
            .with_row_index("row", offset=seen + 1)
            .group_by(on)
            .agg(pl.len().alias("n"), pl.col("row").min())
        )
        seen += batch.df.height
        # merged when the parts outgrow the groups so far: each row is merged a few
        # times, not once per batch
        if sum(p.height for p in parts) > max(
            _MERGE_ROWS, groups.height if groups is not None else 0
        ):
            groups, parts = merged(), []
        if table.on_phase is not None:
            table.on_phase("reading", batch.bytes_read, table.size)
    table.plain = plain
    if parts:
        groups = merged()
    if groups is None:
        groups = group_keys(cfg, table.df, columns).with_columns(
            pl.lit(0, pl.UInt32).alias("n"), pl.lit(0, pl.UInt32).alias("row")
        )
    groups = groups.sort("row").with_columns(pl.col("row").cast(pl.Int64))
    if table.on_phase is not None:
        table.on_phase("normalising", 0, groups.height)
    memory = Readings(cfg)
    readings = [
        _read_phones(groups[f"_p{i}"], cfg.default_region, memory) for i in range(len(columns))
    ]
    phone = readings[0] if len(columns) == 1 else _first_valid(readings, columns)
    rows = _with_space_errors(
        groups.select("row", "cust", *on[1:], "n")
        .with_columns(*phone.get_columns())
        .select("row", "raw", "cust", pl.exclude("row", "raw", "cust"))
    )
    if table.on_phase is not None:
        table.on_phase("normalising", groups.height, groups.height)
    return Prepared(
        table,
        ", ".join(columns),
        rows,
        _keys(rows),
        tuple(columns),
        source=table,
        batch_keys=functools.partial(group_keys, cfg, columns=columns),
    )


def _read_phones(cells: pl.Series, region: str | None, memory: Readings) -> pl.DataFrame:
    """``raw``, ``number``, ``err``, ``multi`` for each cell: each distinct value read once."""
    raw = frames.cell_texts(cells).alias("raw")
    lookup = memory.read(raw.drop_nulls().unique())
    return (
        raw.to_frame()
        .join(lookup, on="raw", how="left", maintain_order="left")
        .with_columns(
            pl.when(pl.col("raw").is_null())
            .then(pl.lit("Client.MissingPhone"))
            .otherwise(pl.col("err"))
            .alias("err"),
            pl.col("multi").fill_null(value=False),
        )
    )


class Readings:
    """Cells read as numbers: those read by an earlier run come from the ledger, the
    others are read here (in a pool of processes when there are many) and kept."""

    def __init__(self, cfg: RunConfig, *, workers: int | None = None) -> None:
        self.region = cfg.default_region
        self.workers = workers if workers is not None else _pool_workers()
        self.path = cache_path_for(cfg)
        self.remembered = 0
        self.read_now = 0

    def read(self, distinct: pl.Series) -> pl.DataFrame:
        """One reading per value of ``distinct`` (distinct, no null): ``READING_SCHEMA``."""
        values = distinct.cast(pl.String)
        rules = phones.NORMALIZER_VERSION
        # Only a ledger that exists is used: ``enrich check`` creates no cache file.
        ledger = Ledger(self.path) if self.path is not None and self.path.exists() else None
        try:
            known = (
                ledger.lookup_readings(values, region=self.region, rules=rules)
                if ledger is not None
                else pl.DataFrame(schema=READING_SCHEMA)
            )
            new = distinct.to_frame("raw").join(known, on="raw", how="anti")["raw"].to_list()
            numbers, errors, several = phones.normalize_cells(
                new, default_region=self.region, workers=self.workers
            )
            fresh = pl.DataFrame(
                {"raw": new, "number": numbers, "err": errors, "multi": several},
                schema=READING_SCHEMA,
            )
            if ledger is not None:
                ledger.remember_readings(fresh, region=self.region, rules=rules)
        finally:
            if ledger is not None:
                ledger.close()
        self.remembered += known.height
        self.read_now += fresh.height
        return pl.concat([known, fresh])


def _pool_workers() -> int:
    """``POOL_WORKERS``, or 1 when a pool's processes would run the main script again.

    A pool's process imports the program's main module unless it is a package's
    ``__main__`` (``python -m enrich``) or guards itself (the ``enrich`` script): a
    notebook or a user's unguarded script calling the Python API reads in-process.
    """
    import sys

    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name.endswith("__main__"):
        return POOL_WORKERS
    path = getattr(main, "__file__", None)
    if path is not None and Path(path).name == "enrich":
        return POOL_WORKERS
    return 1


def _first_valid(readings: list[pl.DataFrame], columns: Sequence[str]) -> pl.DataFrame:
    """Per row, the reading of the first column with a valid number; else the first
    with an invalid one; else the first column's (a missing number).

    ``phone_column`` names the column used (null when every cell was empty).
    """
    wide = pl.concat(
        [r.select(pl.all().name.suffix(f"_{i}")) for i, r in enumerate(readings)],
        how="horizontal",
    )
    n = len(columns)
    chosen = pl.coalesce(
        *(pl.when(pl.col(f"number_{i}").is_not_null()).then(pl.lit(i)) for i in range(n)),
        *(pl.when(pl.col(f"err_{i}") == "Client.InvalidPhone").then(pl.lit(i)) for i in range(n)),
    )

    def pick(field: str) -> pl.Expr:
        expr = pl.col(f"{field}_0")
        for i in range(n - 1, 0, -1):
            expr = pl.when(pl.col("_chosen") == i).then(pl.col(f"{field}_{i}")).otherwise(expr)
        return expr.alias(field)

    name = pl.lit(None, dtype=pl.String)
    for i in range(n - 1, -1, -1):
        name = pl.when(pl.col("_chosen") == i).then(pl.lit(columns[i])).otherwise(name)
    return wide.with_columns(chosen.alias("_chosen")).select(
        *(pick(f) for f in ("raw", "number", "err", "multi")), name.alias("phone_column")
    )


def _source_rows(table: frames.Table) -> pl.Series:
    """Each data row's line or sheet row as the user sees it; its position otherwise."""
    height = table.df.height
    given = table.source_rows
    if given is not None and given.len() == height:
        return given.cast(pl.Int64).alias("source_row")
    return pl.int_range(1, height + 1, dtype=pl.Int64, eager=True).alias("source_row")


@dataclass
class KeyCounts:
    """What ``enrich check`` says of an input, counted without holding a large file."""

    phone_column: str
    rows: int
    invalid: int
    missing_space: int
    multi_number_cells: int
    keys: list[Key]
    invalid_examples: list[tuple[int, str | None, str]]
    """The first bad rows: (row, phone cell, error code)."""
    rows_in_file: int
    """Data rows before ``--limit``."""

    @property
    def valid(self) -> int:
        """Rows with a number and a CustSpaceId."""
        return self.rows - self.invalid - self.missing_space


def count_keys(
    cfg: RunConfig, *, examples: int = 5, on_phase: Callable[[str, int, int], None] | None = None
) -> KeyCounts:
    """``prepare``'s counts for ``enrich check`` (``--limit`` applied); a large CSV or
    Parquet file is read in batches, twice at most (the second pass stops at the
    first ``examples`` bad rows), never held whole.

    Raises what ``prepare`` raises.
    """
    source = stream.source_for(cfg, None, on_phase=on_phase)
    prep = prepare(cfg, table=source)
    rows_in_file = prep.n_rows
    if cfg.limit is not None:
        prep = limit_to_first_keys(prep, cfg.limit)
    if prep.source is None or prep.batch_keys is None:
        bad = prep.rows.filter(pl.col("err").is_not_null())
        shown = list(bad.select("row", "raw", "err").head(examples).iter_rows())
    else:
        shown = _first_bad_rows(prep, examples)
    return KeyCounts(
        prep.phone_column, prep.n_rows, prep.invalid, prep.missing_space,
        prep.multi_number_cells, prep.keys, shown, rows_in_file,
    )  # fmt: skip


def _first_bad_rows(prep: Prepared, examples: int) -> list[tuple[int, str | None, str]]:
    """A large file's first bad rows: batches read until ``examples`` are found."""
    assert prep.source is not None and prep.batch_keys is not None
    on = ["cust", *(f"_p{i}" for i in range(len(prep.phone_columns)))]
    bad = prep.rows.filter(pl.col("err").is_not_null()).select(*on, "raw", "err")
    found: list[tuple[int, str | None, str]] = []
    seen = 0
    if not bad.height or not examples:
        return found
    for batch in prep.source.batches(checked=True, columns=prep.source.key_columns):
        keys = prep.batch_keys(batch.df).with_row_index("row", offset=seen + 1)
        seen += batch.df.height
        hits = keys.join(bad, on=on, how="inner", nulls_equal=True, maintain_order="left")
        found += hits.select(pl.col("row").cast(pl.Int64), "raw", "err").head(examples).rows()
        if len(found) >= examples:
            break
    return found[:examples]


def limit_to_first_keys(prep: Prepared, n: int) -> Prepared:
    """Keep the shortest prefix of rows that holds the first ``n`` distinct keys."""
    if n >= len(prep.keys):
        return prep
    wanted = set(prep.keys[:n])
    last_row = 0
    seen: set[Key] = set()
    for row, cust, number, err in prep.rows.select("row", "cust", "number", "err").iter_rows():
        if err is None and (cust, number) in wanted and (cust, number) not in seen:
            seen.add((cust, number))
            last_row = row
            if len(seen) == n:
                break
    rows = prep.rows.head(last_row)
    lines = prep.table.source_rows
    table = replace(
        prep.table,
        df=prep.table.df.head(last_row),
        source_rows=None if lines is None else lines.head(last_row),
    )
    return replace(prep, table=table, rows=rows, keys=prep.keys[:n])


def refuse_enriched_input(columns: Sequence[str]) -> None:
    """InputError when the input already has ``bp_*`` columns (an enriched file), or a
    column of a name a run keeps for itself (``PRIVATE_COLUMNS``)."""
    clash = [c for c in (*BP_COLUMNS, BP_PHONE_COLUMN) if c in columns]
    if clash:
        raise InputError(
            f"{', '.join(clash)} already in the input: is it an enriched file? "
            "Enrich the original file instead"
        )
    taken = [c for c in PRIVATE_COLUMNS if c in columns]
    if taken:
        raise InputError(
            f"the input has a column named {', '.join(taken)}, a name enrich keeps for "
            "its error report; rename that column and run again"
        )


def cache_path_for(cfg: RunConfig) -> Path | None:
    """The ledger file: --cache, or a default one. Answers from ``--mock`` and from a
    loopback ``--endpoint`` (an emulator) get their own default files, so they are
    never served to a run against the real service."""
    if cfg.no_cache:
        return None
    if cfg.cache is not None:
        return cfg.cache
    if cfg.mock:
        return default_cache_path("mock")
    if cfg.endpoint and is_loopback(validate_endpoint(cfg.endpoint).host):
        return default_cache_path("local")
    return default_cache_path()
