"""Everything a run does before it calls: read, find the column, normalise, dedupe.

``prepare`` is all ``enrich check`` needs; it imports neither aiohttp nor the client.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import polars as pl

from enrich import frames, phones
from enrich.cache import default_cache_path
from enrich.endpoints import is_loopback, validate_endpoint
from enrich.errors import InputError
from enrich.job import RunConfig
from enrich.types import BP_COLUMNS, Key

__all__ = [
    "DEMO_CUST_SPACE_ID",
    "Prepared",
    "cache_path_for",
    "limit_to_first_keys",
    "prepare",
    "refuse_enriched_input",
]

#: The CustSpaceId ``--mock`` uses when none is given.
DEMO_CUST_SPACE_ID = "demo-space"


@dataclass
class Prepared:
    """The input read and normalised; nothing called."""

    table: frames.Table
    phone_column: str
    rows: pl.DataFrame  # row, raw, cust, number, err — one per input row, in order
    keys: list[Key]  # distinct valid keys in first-appearance order

    @property
    def n_rows(self) -> int:
        """Input data rows."""
        return self.rows.height

    @property
    def invalid(self) -> int:
        """Rows with a missing or invalid number."""
        return self.rows.filter(pl.col("err").is_in(phones.PHONE_ERROR_CODES)).height

    @property
    def missing_space(self) -> int:
        """Rows with an empty CustSpaceId cell."""
        return self.rows.filter(pl.col("err") == "Client.MissingCustSpaceId").height


def _cust_series(cfg: RunConfig, df: pl.DataFrame, n: int) -> pl.Series:
    if cfg.cust_space_column:
        if cfg.cust_space_column not in df.columns:
            cols = ", ".join(df.columns)
            raise InputError(
                f"--cust-space-column {cfg.cust_space_column!r} not found in "
                f"{cfg.input.name}; columns: {cols}"
            )
        return frames.cell_texts(df[cfg.cust_space_column]).str.strip_chars()
    space = (cfg.cust_space_id or "").strip()
    if not space:
        raise InputError(
            "no CustSpaceId: pass --cust-space-id ID (or set CAMS_CUST_SPACE_ID), "
            "or --cust-space-column NAME"
        )
    return pl.repeat(space, n, dtype=pl.String, eager=True)


def prepare(cfg: RunConfig, *, table: frames.Table | None = None) -> Prepared:
    """Read the input (or take ``table``, a frame given by the Python API), find the
    phone column, normalise every distinct value."""
    if cfg.default_region:
        phones.validate_region(cfg.default_region)
    if table is None:
        table = frames.read_table(cfg.input, sheet=cfg.sheet, separator=cfg.separator)
    df = table.df
    refuse_enriched_input(df.columns)
    column = phones.find_phone_column(df.columns, explicit=cfg.phone_column, source=cfg.input.name)
    raw = frames.cell_texts(df[column]).alias("raw")
    cust = _cust_series(cfg, df, df.height).alias("cust")
    distinct = raw.drop_nulls().unique().to_list()
    numbers: list[str | None] = []
    errs: list[str | None] = []
    for value in distinct:
        norm = phones.normalize_phone(value, default_region=cfg.default_region)
        numbers.append(norm.number)
        errs.append(norm.error)
    lookup = pl.DataFrame(
        {"raw": distinct, "number": numbers, "err": errs},
        schema={"raw": pl.String, "number": pl.String, "err": pl.String},
    )
    rows = (
        pl.DataFrame([raw, cust])
        .with_row_index("row", offset=1)
        .join(lookup, on="raw", how="left", maintain_order="left")
        .with_columns(
            pl.when(pl.col("raw").is_null())
            .then(pl.lit("Client.MissingPhone"))
            .otherwise(pl.col("err"))
            .alias("err")
        )
        .with_columns(
            pl.when(pl.col("err").is_null() & (pl.col("cust").is_null() | (pl.col("cust") == "")))
            .then(pl.lit("Client.MissingCustSpaceId"))
            .otherwise(pl.col("err"))
            .alias("err")
        )
    )
    valid = rows.filter(pl.col("err").is_null()).select("cust", "number")
    uniq = valid.unique(maintain_order=True)
    keys: list[Key] = list(zip(uniq["cust"].to_list(), uniq["number"].to_list(), strict=True))
    return Prepared(table, column, rows, keys)


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
    table = replace(prep.table, df=prep.table.df.head(last_row))
    return Prepared(table, prep.phone_column, rows, prep.keys[:n])


def refuse_enriched_input(columns: Sequence[str]) -> None:
    """InputError when the input already has ``bp_*`` columns (an enriched file)."""
    clash = [c for c in BP_COLUMNS if c in columns]
    if clash:
        raise InputError(
            f"{', '.join(clash)} already in the input: is it an enriched file? "
            "Enrich the original file instead"
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
