"""``read_table`` and ``write_table``: the format from the extension, then its module."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import BinaryIO, Final

import polars as pl
from polars.exceptions import PolarsError
from xlsxwriter.exceptions import XlsxWriterException

from enrich.errors import OutputError
from enrich.frames._common import (
    STDIN_NAME,
    Format,
    InputFormat,
    Table,
    check_input,
    file_type,
    is_stdio,
    parse_separator,
    read_bytes,
    reason,
)
from enrich.frames.cells import for_spreadsheet
from enrich.frames.csv_read import read_csv
from enrich.frames.csv_write import write_csv
from enrich.frames.parquet import read_parquet, write_parquet
from enrich.frames.sources import decompress, read_stdin, spooled
from enrich.frames.staging import atomic_path
from enrich.frames.xlsx_output import KEEP_MAX_CELLS, write_xlsx_output
from enrich.frames.xlsx_read import read_xlsx

__all__ = ["read_table", "write_table"]

_ENRICHED_PREFIX: Final = "bp_"


def read_table(
    path: Path,
    *,
    sheet: str | int | None = None,
    separator: str | None = None,
    encoding: str | None = None,
    header_row: int | None = None,
    input_format: InputFormat | None = None,
    stdin: BinaryIO | None = None,
) -> Table:
    """Read a CSV, TSV, Parquet or XLSX file (format from the extension).

    * ``-`` reads standard input (``stdin``, default ``sys.stdin``), as CSV
      unless ``input_format`` says otherwise; ``input_format`` also overrides
      a file's extension.
    * CSV (``.csv``, ``.tsv``; gzip or zstd compressed as ``.csv.gz``,
      ``.csv.zst``, …, recognised by their first bytes): every column is text,
      exactly as written; empty fields are null. The separator is a tab for
      ``.tsv``, else sniffed among ``,`` ``;`` tab ``|``, unless given. The
      text is ``encoding`` (default UTF-8; a UTF-8 BOM wins and is dropped).
      ``header_row`` (1-based) names the header's line; the lines above are
      skipped. Blank records (a blank line, ``,,``) are skipped, except in a
      one-column file, where a blank line is an empty value; nameless columns
      at the right that hold nothing are dropped.
    * Parquet: every column keeps its dtype.
    * XLSX: ``sheet`` is a sheet name, or a 1-based position (an ``int``, or a
      string of digits that names no sheet); the first sheet by default.
      ``header_row`` is the header's sheet row (default: the first row with a
      value). Columns keep the type Excel stored (numbers, dates, booleans,
      text); a column mixing types is read as text. Rows with no value at all
      are skipped. The other sheets are read too, to be carried to the output.

    ``sheet`` is ignored for CSV and Parquet, ``separator`` and ``encoding``
    for all but CSV, ``header_row`` for Parquet. A file with a header and no
    data rows is read as 0 rows. ``Table.source_rows`` gives each data row's
    line (CSV) or sheet row (XLSX).

    Raises:
        InputError: the file is missing, unreadable, empty or malformed; one
            line naming the file and what to fix.
        UsageError: ``separator`` is not a single usable character, or
            ``encoding`` no encoding Python knows.
    """
    kind = file_type(path, role="input", given=input_format)
    sep = kind.separator
    if separator is not None and kind.fmt == "csv":
        sep = parse_separator(separator)
    stdio = is_stdio(path)
    shown = Path(STDIN_NAME) if stdio else path
    if kind.fmt == "csv":
        if stdio:
            data = read_stdin(stdin)
        else:
            check_input(path)
            data = read_bytes(path)
        data = decompress(shown, data)
        return read_csv(shown, sep, data=data, encoding=encoding, header_row=header_row)
    if stdio:
        with spooled(read_stdin(stdin), suffix=kind.extension) as tmp:
            return _read_file(tmp, kind.fmt, sheet, header_row, shown=shown)
    check_input(path)
    return _read_file(path, kind.fmt, sheet, header_row, shown=path)


def _read_file(
    path: Path, fmt: Format, sheet: str | int | None, header_row: int | None, *, shown: Path
) -> Table:
    if fmt == "parquet":
        return Table(df=read_parquet(path, path.stat().st_size, shown=shown), fmt="parquet")
    return read_xlsx(path, sheet, header_row=header_row, shown=shown)


def write_table(
    df: pl.DataFrame,
    path: Path,
    *,
    fmt: Format,
    api_text_columns: Sequence[str],
    list_columns: Sequence[str] = ("bp_websites",),
    sheet_name: str | None = None,
    other_sheets: Mapping[str, pl.DataFrame] | None = None,
    separator: str = ",",
    enriched_columns: Sequence[str] | None = None,
    shown_as: Path | None = None,
    numeric_cells: Mapping[str, Mapping[str, pl.Series]] | None = None,
    source: Path | None = None,
    header_row: int | None = None,
    keep_max_cells: int = KEEP_MAX_CELLS,
    bom: bool = False,
    line_terminator: str = "\n",
) -> list[str]:
    """Write ``df`` to ``path`` atomically, whole or not at all; the warnings for the user.

    * Parquet: as is; lists stay lists, nothing is neutralised.
    * CSV and XLSX: each column of ``list_columns`` becomes its items joined by
      a single space (an empty or null list → an empty cell); text cells of
      ``api_text_columns`` and ``list_columns`` starting with ``=``, ``+``,
      ``-``, ``@``, tab or CR get a leading ``'`` (``neutralize``). Other
      columns are written unchanged.
    * CSV: UTF-8, with a BOM when ``bom`` (``Table.bom``), lines ended by
      ``line_terminator`` (``Table.line_terminator``), quotes only where
      needed, null as an empty field. The name the user asked for
      (``shown_as``) decides the rest: ``.tsv`` names get tabs (others
      ``separator``), ``.gz`` and ``.zst`` names are gzip and zstd compressed.
    * XLSX: the data sheet (``sheet_name``, default ``Sheet1``) then
      ``other_sheets`` in order; text is always a text cell (never a formula,
      never a URL or number), numbers, dates and booleans keep their types;
      the header row is frozen and filterable; the headers of
      ``enriched_columns`` (default: those starting with ``bp_``) are
      coloured; column widths fit their contents up to a cap; the cells that
      ``numeric_cells`` (``Table.numeric_cells``) marks in text columns are
      written back as numbers.
    * XLSX from a workbook: ``source`` is the workbook the table was read from
      (its data sheet ``sheet_name``, header on sheet row ``header_row``,
      1-based; default: the first row of its used range). It is kept as its user
      made it (openpyxl: number formats, widths, filters, frozen panes, styles,
      formulas, the other sheets unchanged and in their order), the columns of
      ``enriched_columns`` appended beside the table, the rows after ``df``'s
      last one dropped (``--limit``), up to ``keep_max_cells`` cells. Above it,
      or when the workbook cannot be kept, it is written as above (in the
      workbook's sheet order) with a warning saying what was not kept.

    Returns one line per warning (a workbook not kept, a formula column without
    stored values, what openpyxl could not carry); empty for CSV and Parquet.

    An older file at ``path`` stays untouched when writing fails. Messages name
    ``shown_as`` (default ``path``): the file the user asked for when ``path``
    is a staging file.

    Raises:
        OutputError: the file cannot be written; one line naming it and why.
    """
    shown = shown_as or path
    if path.is_dir():
        raise OutputError(f"cannot write {shown}: it is a directory")
    with atomic_path(path, shown_as=shown) as tmp:
        try:
            if fmt == "parquet":
                write_parquet(df, tmp)
                return []
            flat = for_spreadsheet(df, api_text_columns=api_text_columns, list_columns=list_columns)
            if fmt == "csv":
                write_csv(
                    flat, tmp, shown=shown, separator=separator, bom=bom,
                    line_terminator=line_terminator,
                )  # fmt: skip
                return []
            highlighted = (
                set(enriched_columns)
                if enriched_columns is not None
                else {c for c in df.columns if c.startswith(_ENRICHED_PREFIX)}
            )
            return write_xlsx_output(
                shown,
                tmp,
                df,
                flat,
                source=source if sheet_name is not None else None,
                header_row=header_row,
                sheet_name=sheet_name or "Sheet1",
                other_sheets=other_sheets or {},
                highlighted=highlighted,
                numeric_cells=numeric_cells or {},
                max_cells=keep_max_cells,
            )
        except (PolarsError, pl.exceptions.PanicException, XlsxWriterException, ValueError) as exc:
            # OSError is left to atomic_path, which says it the same way.
            raise OutputError(f"cannot write {shown}: {reason(exc)}") from None
