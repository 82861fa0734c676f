"""Cells as text: how a person reads them, and how a spreadsheet program must not.

``cell_texts`` turns any column into the text a person sees in a sheet.
``neutralize`` (and its vectorised form) defuses text a spreadsheet program
would read as a formula; ``for_spreadsheet`` prepares a frame for CSV or XLSX:
lists joined, nested values as JSON, API text neutralised, input columns kept.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

import polars as pl

__all__ = [
    "DANGEROUS_PREFIXES",
    "cell_texts",
    "for_spreadsheet",
    "neutralize",
]

#: First characters that make a spreadsheet program read text as a formula (OWASP).
DANGEROUS_PREFIXES: Final = ("=", "+", "-", "@", "\t", "\r")

_DANGEROUS_RE: Final = "^[" + re.escape("".join(DANGEROUS_PREFIXES)) + "]"


def cell_texts(series: pl.Series) -> pl.Series:
    """The cells of ``series`` as text, the way a person reads them in a sheet.

    Text is kept as is; integers give their digits; integral floats give
    integer digits (``8613800138000.0`` → ``"8613800138000"``, never
    ``"8.613800138e12"``); other floats, and other types, their ``str`` form;
    null, and a float NaN (how float columns say "no value"), give null.
    Vectorised.
    """
    dtype = series.dtype
    name = series.name
    if dtype == pl.String:
        return series
    if dtype.is_integer() or dtype == pl.Null:
        return series.cast(pl.String)
    if dtype.is_float():
        col = pl.col(name)
        integral = col.is_finite() & (col == col.round(0)) & (col.abs() < 2.0**63)
        return (
            pl.DataFrame([series])
            .select(
                pl.when(integral)
                .then(col.cast(pl.Int64, strict=False).cast(pl.String))
                .when(col.is_not_nan())
                .then(col.cast(pl.String))
                .alias(name)
            )
            .to_series()
        )
    if dtype.is_nested() or dtype == pl.Binary:
        return _text_expr_frame(series.to_frame()).to_series()
    return series.cast(pl.String, strict=False)


def _nested_to_json(col: pl.Expr, name: str) -> pl.Expr:
    # json_encode works on structs only: wrap, encode, and strip the wrapper.
    wrapped = pl.struct(col.alias("v")).struct.json_encode().str.slice(5).str.head(-1)
    return pl.when(col.is_not_null()).then(wrapped).alias(name)


def _text_expr_frame(df: pl.DataFrame) -> pl.DataFrame:
    exprs = []
    for name, dtype in df.schema.items():
        col = pl.col(name)
        if dtype.is_nested():
            exprs.append(_nested_to_json(col, name))
        elif dtype == pl.Binary:
            exprs.append(col.bin.encode("hex").alias(name))
        else:
            exprs.append(col.cast(pl.String).alias(name))
    return df.select(exprs)


def neutralize(text: str) -> str:
    """Prefix ``'`` to text a spreadsheet program would read as a formula (OWASP).

    Applies when ``text`` starts with ``=``, ``+``, ``-``, ``@``, tab or CR.
    """
    return "'" + text if text.startswith(DANGEROUS_PREFIXES) else text


def _neutralize_expr(col: pl.Expr) -> pl.Expr:
    return pl.when(col.str.contains(_DANGEROUS_RE)).then(pl.lit("'") + col).otherwise(col)


def for_spreadsheet(
    df: pl.DataFrame, *, api_text_columns: Sequence[str], list_columns: Sequence[str]
) -> pl.DataFrame:
    """Flatten lists and neutralise API text; input columns keep their values."""
    lists = set(list_columns)
    api = set(api_text_columns) | lists
    flat: list[pl.Expr] = []
    for name, dtype in df.schema.items():
        col = pl.col(name)
        if name in lists and isinstance(dtype, pl.List | pl.Array):
            if isinstance(dtype, pl.Array):
                col = col.arr.to_list()
            joined = col.list.eval(pl.element().cast(pl.String)).list.join(" ")
            flat.append(pl.when(joined != "").then(joined).alias(name))  # no items: empty cell
        elif dtype.is_nested():
            flat.append(_nested_to_json(col, name))
        elif dtype == pl.Binary:
            flat.append(col.bin.encode("hex").alias(name))
        else:
            flat.append(col)
    # Two steps, so each flattened column is computed once, not once per check.
    out = df.select(flat)
    return out.with_columns(
        _neutralize_expr(pl.col(name)).alias(name)
        for name, dtype in out.schema.items()
        if name in api and dtype == pl.String
    )
