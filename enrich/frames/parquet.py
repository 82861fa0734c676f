"""Parquet: read with every dtype kept, written as is (lists stay lists)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from polars.exceptions import PolarsError

from enrich.errors import InputError
from enrich.frames._common import reason

__all__ = ["read_parquet", "write_parquet"]


def read_parquet(path: Path, size: int, *, shown: Path | None = None) -> pl.DataFrame:
    """The Parquet file at ``path`` (``size`` bytes); messages name ``shown`` (default ``path``)."""
    where = shown or path
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
            handle.seek(max(size - 4, 0))
            tail = handle.read(4)
    except OSError as exc:
        raise InputError(f"cannot read {where}: {reason(exc)}") from None
    if magic != b"PAR1" or tail != b"PAR1" or size < 12:
        raise InputError(f"{where} is not a Parquet file (or it is truncated)")
    try:
        df = pl.read_parquet(path)
    except (PolarsError, pl.exceptions.PanicException, OSError, ValueError) as exc:
        raise InputError(f"{where} is not a readable Parquet file: {reason(exc)}") from None
    if df.width == 0:
        raise InputError(f"{where} has no columns")
    return df


def write_parquet(df: pl.DataFrame, tmp: Path) -> None:
    """``df`` unchanged: nothing is flattened nor neutralised."""
    df.write_parquet(tmp)
