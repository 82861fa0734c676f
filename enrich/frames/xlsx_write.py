"""Writing XLSX anew (the fast writer): text is always a text cell, other types keep theirs.

Never a formula, a URL or a number made from text; numbers, dates and booleans
keep their types; the header row is frozen and filterable, the enriched
headers coloured, column widths fitted; rows stream to disk. Used for every
XLSX output whose input was not a workbook, and for workbooks too large to
keep as they are (``xlsx_keep``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import polars as pl
import xlsxwriter
from xlsxwriter.format import Format as XlsxFormat
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from enrich.errors import OutputError
from enrich.frames.cells import for_spreadsheet

__all__ = ["column_widths", "write_xlsx"]

_XLSX_MAX_ROWS: Final = 1_048_576
_XLSX_MAX_WIDTH: Final = 60
_XLSX_MIN_WIDTH: Final = 8
# fastexcel's names for columns whose header cell is empty: written as empty again.
_UNNAMED: Final = "__UNNAMED__"


@dataclass
class _Formats:
    header: XlsxFormat
    enriched_header: XlsxFormat
    date: XlsxFormat
    datetime: XlsxFormat
    time: XlsxFormat
    duration: XlsxFormat


_CellWriter = Callable[[int, int, Any], Any]


def write_xlsx(
    path: Path,
    tmp: Path,
    df: pl.DataFrame,
    *,
    sheet_name: str,
    other_sheets: Mapping[str, pl.DataFrame],
    highlighted: set[str],
    numeric_cells: Mapping[str, Mapping[str, pl.Series]],
    sheet_order: Sequence[str] | None = None,
) -> None:
    """Write the workbook to ``tmp``: ``df`` (already flattened) and ``other_sheets``.

    The sheets come in ``sheet_order`` (the input workbook's, when known; the data
    sheet is then the one shown on opening), else the data sheet first. Messages
    name ``path``, the file the user asked for.
    """
    for name, frame in [(sheet_name, df), *other_sheets.items()]:
        if frame.height + 1 > _XLSX_MAX_ROWS:
            raise OutputError(
                f"cannot write {path}: sheet '{name}' has {frame.height} rows, more than "
                f"XLSX holds ({_XLSX_MAX_ROWS - 1}); write .csv or .parquet instead"
            )
    workbook = xlsxwriter.Workbook(
        str(tmp),
        {
            # Text is text: never a formula, a URL or a number.
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
            "nan_inf_to_errors": True,
            "remove_timezone": True,
            # Rows stream to disk: memory stays flat on large sheets.
            "constant_memory": True,
        },
    )
    formats = _add_formats(workbook)
    for name in _order(sheet_name, other_sheets, sheet_order):
        ws = workbook.add_worksheet(name)
        if name == sheet_name:
            _write_sheet(ws, df, formats, highlighted, numeric_cells.get(name, {}))
            ws.activate()
        else:
            other = _text_safe(other_sheets[name])
            _write_sheet(ws, other, formats, set(), numeric_cells.get(name, {}))
    workbook.close()


def _order(
    sheet_name: str, other_sheets: Mapping[str, pl.DataFrame], order: Sequence[str] | None
) -> list[str]:
    """The workbook's order when it names exactly these sheets; else the data sheet first."""
    names = [sheet_name, *other_sheets]
    if order is not None and sorted(order) == sorted(names):
        return list(order)
    return names


def _add_formats(workbook: Workbook) -> _Formats:
    return _Formats(
        header=workbook.add_format({"bold": True, "bottom": 1}),
        enriched_header=workbook.add_format(
            {"bold": True, "bottom": 1, "bg_color": "#DDEBF7", "font_color": "#1F4E79"}
        ),
        date=workbook.add_format({"num_format": "yyyy-mm-dd"}),
        datetime=workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"}),
        time=workbook.add_format({"num_format": "hh:mm:ss"}),
        duration=workbook.add_format({"num_format": "[h]:mm:ss"}),
    )


def _text_safe(df: pl.DataFrame) -> pl.DataFrame:
    """Other sheets: nested or binary columns (not expected from XLSX) become text."""
    if not any(dtype.is_nested() or dtype == pl.Binary for dtype in df.dtypes):
        return df
    return for_spreadsheet(df, api_text_columns=(), list_columns=())


def _write_sheet(
    ws: Worksheet,
    df: pl.DataFrame,
    formats: _Formats,
    highlighted: set[str],
    numeric: Mapping[str, pl.Series],
) -> None:
    _write_header(ws, df, formats, highlighted)
    midnight = _midnight_columns(df)
    writers = [
        _cell_writer(ws, dtype, formats, date_only=name in midnight)
        for name, dtype in df.schema.items()
    ]
    for c, name in enumerate(df.columns):
        if name in numeric and df.schema[name] == pl.String:
            writers[c] = _numbers_first(ws, writers[c], numeric[name].to_list())
    for r, row in enumerate(df.iter_rows(), start=1):
        for c, value in enumerate(row):
            if value is not None:
                writers[c](r, c, value)


def _write_header(
    ws: Worksheet, df: pl.DataFrame, formats: _Formats, highlighted: set[str]
) -> None:
    """The header row, frozen and filterable; the column widths."""
    for c, (name, width) in enumerate(zip(df.columns, column_widths(df), strict=True)):
        ws.set_column(c, c, width)
        header = formats.enriched_header if name in highlighted else formats.header
        if name.startswith(_UNNAMED) and name.removeprefix(_UNNAMED).isdigit():
            ws.write_blank(0, c, None, header)
        else:
            ws.write_string(0, c, name, header)
    if df.width:
        ws.freeze_panes(1, 0)
        ws.autofilter(0, 0, max(df.height, 1), df.width - 1)
        ws.ignore_errors({"number_stored_as_text": f"A1:XFD{df.height + 1}"})


def _numbers_first(
    ws: Worksheet, text_writer: _CellWriter, numbers: list[float | None]
) -> _CellWriter:
    """A text column's writer that writes the cells that were numbers as numbers."""

    def write(r: int, c: int, value: Any) -> None:
        number = numbers[r - 1] if r - 1 < len(numbers) else None
        if number is not None:
            ws.write_number(r, c, number)
        else:
            text_writer(r, c, value)

    return write


def _midnight_columns(df: pl.DataFrame) -> set[str]:
    """Datetime columns whose values are all at midnight: Excel dates, shown as dates."""
    names = [name for name, dtype in df.schema.items() if dtype == pl.Datetime]
    if not names or not df.height:
        return set()
    row = df.select((pl.col(name).dt.time() == pl.time(0)).all().alias(name) for name in names).row(
        0
    )
    return {name for name, midnight in zip(names, row, strict=True) if midnight}


def _cell_writer(
    ws: Worksheet, dtype: pl.DataType, formats: _Formats, *, date_only: bool = False
) -> _CellWriter:
    if dtype == pl.String or dtype in (pl.Categorical, pl.Enum):
        return lambda r, c, v: ws.write_string(r, c, v)
    if dtype == pl.Boolean:
        return lambda r, c, v: ws.write_boolean(r, c, v)
    if dtype.is_integer() or dtype.is_float():
        return lambda r, c, v: ws.write_number(r, c, v)
    if dtype.is_decimal():
        return lambda r, c, v: ws.write_number(r, c, float(v))
    if dtype == pl.Date:
        return lambda r, c, v: ws.write_datetime(r, c, v, formats.date)
    if dtype == pl.Datetime:
        fmt = formats.date if date_only else formats.datetime
        return lambda r, c, v: ws.write_datetime(r, c, v, fmt)
    if dtype == pl.Time:
        return lambda r, c, v: ws.write_datetime(r, c, v, formats.time)
    if dtype == pl.Duration:
        return lambda r, c, v: ws.write_datetime(r, c, v, formats.duration)
    return lambda r, c, v: ws.write_string(r, c, str(v))


def column_widths(df: pl.DataFrame) -> list[int]:
    """Widths that fit each column's header and contents, within a cap (characters)."""
    if df.width == 0:
        return []
    if df.height:
        lengths = df.select(
            pl.col(name).cast(pl.String, strict=False).str.len_chars().max().alias(name)
            for name in df.columns
        ).row(0)
    else:
        lengths = (0,) * df.width
    return [
        min(max(len(name) + 3, (length or 0) + 2, _XLSX_MIN_WIDTH), _XLSX_MAX_WIDTH)
        for name, length in zip(df.columns, lengths, strict=True)
    ]
