"""Reading XLSX: the chosen sheet with Excel's types, and the other sheets to carry along.

fastexcel reads the sheets; a column that mixes numbers and text is read as
text, and python-calamine then tells which of its cells were numbers, so an
XLSX output can write them back as numbers.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import fastexcel
import polars as pl
from polars.exceptions import PolarsError
from python_calamine import CalamineError, CalamineWorkbook

from enrich.errors import InputError
from enrich.frames._common import Table, check_unique_columns, reason
from enrich.text import shown_name

__all__ = ["read_xlsx"]

# fastexcel logs a WARNING each time a mixed column falls back to text, which is
# exactly how mixed phone columns are meant to be read; users need not see it.
logging.getLogger("fastexcel").setLevel(logging.ERROR)
# calamine (fastexcel's reader) warns about chart sheets it cannot read as data;
# such a sheet reads as empty and gets its own clear error, so the warning is noise.
logging.getLogger("calamine").setLevel(logging.ERROR)


def read_xlsx(
    path: Path, sheet: str | int | None, *, header_row: int | None = None, shown: Path | None = None
) -> Table:
    """The workbook at ``path``: ``sheet`` (name or 1-based position) as data, the rest carried.

    ``header_row``: the data sheet's header row (1-based; default: its first row
    with a value). Messages name ``shown`` (default ``path``).
    """
    where = shown or path
    try:
        reader = fastexcel.read_excel(str(path))
        names = list(reader.sheet_names)
    except (fastexcel.FastExcelError, OSError) as exc:
        raise InputError(f"{where} is not a readable XLSX workbook: {_xlsx_reason(exc)}") from None
    if not names:
        raise InputError(f"{where} has no sheets")
    index = _pick_sheet(where, names, sheet)
    loader = _Loader(path, where, reader, names)
    data = loader.load(index, header_row=header_row)
    if data.df.width == 0:
        raise InputError(
            f"sheet '{names[index]}' of {where} is empty (no header row); "
            f"choose another with --sheet NAME (sheets: {', '.join(names)})"
        )
    numeric: dict[str, dict[str, pl.Series]] = {names[index]: data.numeric}
    others: dict[str, pl.DataFrame] = {}
    for i, name in enumerate(names):
        if i != index:
            other = loader.load(i)
            others[name], numeric[name] = other.df, other.numeric
    numeric = {name: cols for name, cols in numeric.items() if cols}
    return Table(
        df=data.df,
        fmt="xlsx",
        sheet_name=names[index],
        other_sheets=others,
        numeric_cells=numeric,
        header_row=data.header_row,
        source_rows=data.source_rows,
    )


def _xlsx_reason(exc: BaseException) -> str:
    text = reason(exc)
    return text.removeprefix("calamine error: ")


def _pick_sheet(path: Path, names: Sequence[str], sheet: str | int | None) -> int:
    listed = ", ".join(names)
    if sheet is None:
        return 0
    if isinstance(sheet, str):
        if sheet in names:
            return names.index(sheet)
        folded = [i for i, name in enumerate(names) if name.casefold() == sheet.casefold()]
        if len(folded) == 1:
            return folded[0]
        if not (sheet.isascii() and sheet.isdigit()):
            raise InputError(f"sheet '{shown_name(sheet)}' not found in {path}; sheets: {listed}")
        sheet = int(sheet)
    if not 1 <= sheet <= len(names):
        raise InputError(
            f"sheet {sheet} not found in {path}: positions start at 1 and it has "
            f"{len(names)} sheet{'s' if len(names) != 1 else ''} ({listed})"
        )
    return sheet - 1


@dataclass
class _Sheet:
    df: pl.DataFrame
    numeric: dict[str, pl.Series]
    header_row: int
    """The header's sheet row, 1-based."""
    source_rows: pl.Series
    """The sheet row of each row of ``df``, 1-based."""


@dataclass
class _Loader:
    """Loads one sheet: its header row found, its rows with no value dropped."""

    path: Path
    where: Path
    reader: fastexcel.ExcelReader
    names: Sequence[str]

    def load(self, index: int, *, header_row: int | None = None) -> _Sheet:
        """Sheet ``index``, its header on ``header_row`` (1-based; default: the first row
        with a value), once its header names no column twice."""
        try:
            return self._load(index, header_row)
        except (fastexcel.FastExcelError, OSError, PolarsError, ValueError) as exc:
            raise InputError(
                f"cannot read sheet '{self.names[index]}' of {self.where}: {_xlsx_reason(exc)}"
            ) from None

    def _load(self, index: int, header_row: int | None) -> _Sheet:
        reader = self.reader
        # The sheet's rows from row 1, whatever they hold (fastexcel skips empty ones).
        total = reader.load_sheet(
            index, header_row=None, skip_rows=0, n_rows=1, dtypes="string"
        ).total_height
        if header_row is None:
            # Sample every row: with the default 1,000, a text cell further down a
            # numeric column would be coerced to null, i.e. silently lost.
            df = reader.load_sheet(index, schema_sample_rows=None).to_polars()
            header = max(total - 1 - df.height, 0)  # the first row with a value
            head = reader.load_sheet(index, header_row=None, n_rows=1, dtypes="string")
        else:
            header = self._check_header(index, header_row, total)
            df = reader.load_sheet(index, header_row=header, schema_sample_rows=None).to_polars()
            head = reader.load_sheet(
                index, header_row=None, skip_rows=header, n_rows=1, dtypes="string"
            )
        cells = head.to_polars().row(0) if df.width and head.height else ()
        # Empty header cells get names fastexcel makes up (__UNNAMED__0, _1, …): no clash.
        check_unique_columns(
            (c for c in cells if c), where=f"sheet '{self.names[index]}' of {self.where}"
        )
        numeric = _mixed_numeric_cells(self.path, reader, index, df, header=header)
        rows = pl.int_range(header + 2, header + 2 + df.height, dtype=pl.Int64, eager=True)
        if df.width and df.height:
            keep = ~df.select(pl.all_horizontal(pl.all().is_null())).to_series()
            df, rows = df.filter(keep), rows.filter(keep)
            numeric = {name: values.filter(keep) for name, values in numeric.items()}
        return _Sheet(df, numeric, header + 1, rows.alias("source_row"))

    def _check_header(self, index: int, header_row: int, total: int) -> int:
        """``--header-row`` as a 0-based row index, once it is known to hold a header."""
        name = self.names[index]
        if header_row > total:
            raise InputError(
                f"sheet '{name}' of {self.where} has {total} row{'s' if total != 1 else ''}; "
                f"--header-row {header_row} is past its end"
            )
        head = self.reader.load_sheet(
            index, header_row=None, skip_rows=header_row - 1, n_rows=1, dtypes="string"
        ).to_polars()
        if not head.height or all(v is None or not str(v).strip() for v in head.row(0)):
            raise InputError(
                f"row {header_row} of sheet '{name}' of {self.where} is empty; "
                "--header-row names the row of the header"
            )
        return header_row - 1


def _mixed_numeric_cells(
    path: Path, reader: fastexcel.ExcelReader, index: int, df: pl.DataFrame, *, header: int
) -> dict[str, pl.Series]:
    """For text columns that also hold numeric cells: those cells' values, by row.

    fastexcel reads a column that mixes numbers and text as text; python-calamine
    still knows each cell's type. Only sheets that really mix types pay for it.
    """
    text_columns = [name for name, dtype in df.schema.items() if dtype == pl.String]
    if not text_columns or not df.height:
        return {}
    try:
        reader.load_sheet(
            index, header_row=header, schema_sample_rows=None, dtype_coercion="strict"
        )
        return {}
    except fastexcel.UnsupportedColumnTypeCombinationError:
        pass
    except (fastexcel.FastExcelError, OSError, ValueError):
        return {}
    try:
        sheet = CalamineWorkbook.from_path(str(path)).get_sheet_by_index(index)
        rows = sheet.to_python()[max(header - sheet.start[0], 0) :] if sheet.start else []
    except (CalamineError, OSError, ValueError):
        return {}
    if len(rows) != df.height + 1 or any(len(row) != df.width for row in rows[:1]):
        return {}  # a layout we cannot align cell by cell: keep the text reading
    out: dict[str, pl.Series] = {}
    for name in text_columns:
        c = df.columns.index(name)
        values = [
            float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None
            for v in (row[c] if c < len(row) else None for row in rows[1:])
        ]
        if any(v is not None for v in values):
            out[name] = pl.Series(name, values, dtype=pl.Float64)
    return out
