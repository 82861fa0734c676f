"""Reading XLSX: the chosen sheet with Excel's types, and the other sheets to carry along.

fastexcel reads the sheets; a column that mixes numbers and text is read as
text, and python-calamine then tells which of its cells were numbers, so an
XLSX output can write them back as numbers.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
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


def read_xlsx(path: Path, sheet: str | int | None) -> Table:
    """The workbook at ``path``: ``sheet`` (name or 1-based position) as data, the rest carried."""
    try:
        reader = fastexcel.read_excel(str(path))
        names = list(reader.sheet_names)
    except (fastexcel.FastExcelError, OSError) as exc:
        raise InputError(f"{path} is not a readable XLSX workbook: {_xlsx_reason(exc)}") from None
    if not names:
        raise InputError(f"{path} has no sheets")
    index = _pick_sheet(path, names, sheet)
    numeric: dict[str, dict[str, pl.Series]] = {}
    df, numeric[names[index]] = _load_sheet(path, reader, names, index)
    if df.width == 0:
        raise InputError(
            f"sheet '{names[index]}' of {path} is empty (no header row); "
            f"choose another with --sheet NAME (sheets: {', '.join(names)})"
        )
    others: dict[str, pl.DataFrame] = {}
    for i, name in enumerate(names):
        if i != index:
            others[name], numeric[name] = _load_sheet(path, reader, names, i)
    numeric = {name: cols for name, cols in numeric.items() if cols}
    return Table(
        df=df, fmt="xlsx", sheet_name=names[index], other_sheets=others, numeric_cells=numeric
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


def _load_sheet(
    path: Path, reader: fastexcel.ExcelReader, names: Sequence[str], index: int
) -> tuple[pl.DataFrame, dict[str, pl.Series]]:
    df = _sheet_frame(path, reader, names, index)
    numeric = _mixed_numeric_cells(path, reader, index, df)
    if df.width and df.height:
        keep = ~df.select(pl.all_horizontal(pl.all().is_null())).to_series()
        df = df.filter(keep)
        numeric = {name: values.filter(keep) for name, values in numeric.items()}
    return df, numeric


def _sheet_frame(
    path: Path, reader: fastexcel.ExcelReader, names: Sequence[str], index: int
) -> pl.DataFrame:
    """Sheet ``index`` as read, once its header row is known to name no column twice."""
    try:
        # Sample every row: with the default 1,000, a text cell further down a
        # numeric column would be coerced to null, i.e. silently lost.
        df = reader.load_sheet(index, schema_sample_rows=None).to_polars()
        if df.width:
            raw = reader.load_sheet(index, header_row=None, n_rows=1, dtypes="string")
            header = raw.to_polars().row(0)
        else:
            header = ()
    except (fastexcel.FastExcelError, OSError, PolarsError, ValueError) as exc:
        raise InputError(
            f"cannot read sheet '{names[index]}' of {path}: {_xlsx_reason(exc)}"
        ) from None
    # Empty header cells get names fastexcel makes up (__UNNAMED__0, _1, …): no clash.
    check_unique_columns((c for c in header if c), where=f"sheet '{names[index]}' of {path}")
    return df


def _mixed_numeric_cells(
    path: Path, reader: fastexcel.ExcelReader, index: int, df: pl.DataFrame
) -> dict[str, pl.Series]:
    """For text columns that also hold numeric cells: those cells' values, by row.

    fastexcel reads a column that mixes numbers and text as text; python-calamine
    still knows each cell's type. Only sheets that really mix types pay for it.
    """
    text_columns = [name for name, dtype in df.schema.items() if dtype == pl.String]
    if not text_columns or not df.height:
        return {}
    try:
        reader.load_sheet(index, schema_sample_rows=None, dtype_coercion="strict")
        return {}
    except fastexcel.UnsupportedColumnTypeCombinationError:
        pass
    except (fastexcel.FastExcelError, OSError, ValueError):
        return {}
    try:
        rows = CalamineWorkbook.from_path(str(path)).get_sheet_by_index(index).to_python()
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
