"""Writing CSV: the way the input was written, and the way the output is named.

The input's BOM and line ends come back (``Table.bom``, ``Table.line_terminator``),
so a file Excel saved opens in Excel with its accents intact. The name decides
the rest: ``.tsv`` names are tab-separated, ``.gz`` and ``.zst`` names are
compressed (polars writes both).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from enrich.frames._common import named_type

__all__ = ["write_csv"]


def write_csv(
    flat: pl.DataFrame,
    tmp: Path,
    *,
    shown: Path,
    separator: str = ",",
    bom: bool = False,
    line_terminator: str = "\n",
) -> None:
    """Write ``flat`` (text ready for a spreadsheet) to ``tmp`` as the CSV ``shown`` names.

    ``.tsv`` names get tabs, any other name ``separator``; ``.gz`` / ``.zst``
    names are gzip / zstd compressed. Null is an empty field.
    """
    kind = named_type(shown)
    sep = kind.separator if kind is not None and kind.separator else separator
    compression = kind.compression if kind is not None and kind.compression else "uncompressed"
    flat.write_csv(
        tmp,
        separator=sep,
        null_value="",
        include_bom=bom,
        line_terminator=line_terminator,
        compression=compression,
        check_extension=False,
    )
