"""Writing XLSX by keeping the input workbook: load it, append the ``bp_*`` columns, save.

openpyxl loads the workbook the table was read from, the ``bp_*`` columns go
beside the data sheet's table (one text cell per data row, in the rows the
reader read), and the workbook is saved as it was otherwise: number formats,
widths, filters, frozen panes, styles, merged cells, formulas and the other
sheets in their order. ``KeepWorkbook.write`` does it as named steps; whatever
stops it raises ``CannotKeep`` with the reason, and the caller uses the fast
writer instead (``xlsx_write``).

The rows are matched cell for cell, not assumed: python-calamine (the reader's
engine) gives the values as read, so the data rows are exactly the non-blank
rows under the header, and their empty cells must be where the table's nulls
are. A workbook edited since it was read, or laid out in a way the match does
not cover, is never written with answers beside the wrong rows.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from warnings import WarningMessage

import openpyxl
import openpyxl.cell._writer as _cell_writer
import polars as pl
from openpyxl.styles import Border, Font, PatternFill, Side
from openpyxl.utils.cell import get_column_letter, range_boundaries
from openpyxl.worksheet.table import TableColumn
from openpyxl.worksheet.worksheet import Worksheet
from openpyxl.xml.constants import XML_NS
from python_calamine import CalamineError, CalamineWorkbook

from enrich.frames.xlsx_parts import lost_parts
from enrich.frames.xlsx_write import column_widths
from enrich.text import shown_name

__all__ = ["CannotKeep", "KeepWorkbook", "why"]

_HEADER_FONT: Final = Font(bold=True, color="FF1F4E79")
_HEADER_FILL: Final = PatternFill(fill_type="solid", fgColor="FFDDEBF7")
_HEADER_BORDER: Final = Border(bottom=Side(style="thin"))
# Text XLSX cannot hold as such: written as _xHHHH_, as xlsxwriter does (and a
# literal _xHHHH_ is escaped first, so it reads back as itself).
_LITERAL_ESCAPE: Final = re.compile(r"(_x[0-9a-fA-F]{4}_)")
_CONTROL: Final = re.compile(r"[\x00-\x08\x0b-\x1f]")
_ESCAPED: Final = re.compile(r"_x[0-9a-fA-F]{4}_|[\x00-\x08\x0b-\x1f]")


# -- the two openpyxl internals used, each here only, checked at import -------------


def _cells(ws: Worksheet) -> Mapping[tuple[int, int], Any]:
    """The cells a sheet holds, by (row, column), without creating any.

    openpyxl's only public ways to a cell (``ws.cell``, ``iter_rows``) create the
    cells they visit.
    """
    cells: Mapping[tuple[int, int], Any] = ws._cells
    return cells


def _keep_spaces(node: Any) -> None:
    """openpyxl's ``whitespace`` marking every text with outer spaces, even one of spaces only."""
    if node.text and node.text != node.text.strip():
        node.set(f"{{{XML_NS}}}space", "preserve")


@contextmanager
def _spaces_kept() -> Iterator[None]:
    """While saving: a text cell of spaces only (``"   "``) is written with its spaces.

    openpyxl marks spaces to keep (``xml:space="preserve"``) only in a text that
    has something else too, so such a cell would come back empty.
    """
    original = _cell_writer.whitespace
    _cell_writer.whitespace = _keep_spaces
    try:
        yield
    finally:
        _cell_writer.whitespace = original


if not isinstance(getattr(Worksheet(openpyxl.Workbook()), "_cells", None), dict):
    raise ImportError("openpyxl changed: Worksheet._cells is no longer a dict of cells")
if not callable(getattr(_cell_writer, "whitespace", None)):
    raise ImportError("openpyxl changed: openpyxl.cell._writer.whitespace is gone")


class CannotKeep(Exception):
    """The workbook cannot be kept as it is; the message says why, for the user."""


def _xlsx_text(text: str) -> str:
    if _ESCAPED.search(text) is None:
        return text
    text = _LITERAL_ESCAPE.sub(r"_x005F\1", text)
    return _CONTROL.sub(lambda m: f"_x{ord(m.group()):04X}_", text)


@dataclass
class _Layout:
    """Where the table is in the data sheet (1-based rows and columns)."""

    grid: list[list[Any]]
    """The sheet's values as the reader saw them, from A1 (empty cells are "")."""
    header: int
    first_col: int
    data_rows: list[int]
    last_col: int = 0


@dataclass
class KeepWorkbook:
    """One kept write: ``source`` loaded, ``df``'s appended columns added, saved to ``tmp``.

    ``df`` is the table as ``write_table`` got it (input columns, then the
    appended ones); ``flat`` the same flattened for a spreadsheet (lists
    joined, API text neutralised); ``appended`` the names of the columns to add.
    """

    source: Path
    shown: Path
    sheet_name: str
    header_row: int | None
    df: pl.DataFrame
    flat: pl.DataFrame
    appended: Sequence[str]
    warnings: list[str] = field(default_factory=list)

    def write(self, tmp: Path) -> list[str]:
        """Write the kept workbook to ``tmp``; the warnings for the user.

        Raises:
            CannotKeep: the workbook cannot be kept; ``tmp`` is to be written anew.
            OSError: ``tmp`` cannot be written.
        """
        n_input = self.df.width - len(self.appended)
        if list(self.df.columns[n_input:]) != list(self.appended):
            raise CannotKeep("the added columns are not the last ones")
        wb = self._load()
        ws = self._data_sheet(wb)
        layout = self._match_rows(ws, n_input)
        self._warn_uncalculated(ws, layout, n_input)
        self._drop_rows_after(ws, layout)
        self._append(ws, layout)
        # openpyxl writes formulas without their last values: have Excel compute them.
        wb.calculation.fullCalcOnLoad = True
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                with _spaces_kept():
                    wb.save(str(tmp))
            except OSError:
                raise
            except Exception as exc:  # openpyxl fails in many ways on parts it half-read
                raise CannotKeep(f"openpyxl could not save it ({why(exc)})") from None
        self._pass_on(caught)
        lost = lost_parts(self.source, tmp)
        if lost:
            self.warnings.append(
                f"{self.shown}: the workbook is kept as it was, except what openpyxl "
                f"cannot carry: {', '.join(lost)} (dropped)"
            )
        return self.warnings

    def _load(self) -> Any:
        """The source workbook, formulas as formulas; openpyxl's own warnings passed on."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                wb = openpyxl.load_workbook(self.source, rich_text=True)
            except OSError as exc:
                raise CannotKeep(f"cannot read {self.source} again ({why(exc)})") from None
            except Exception as exc:  # openpyxl raises many types on what it cannot model
                raise CannotKeep(f"openpyxl cannot load it ({why(exc)})") from None
        self._pass_on(caught)
        return wb

    def _pass_on(self, caught: Sequence[WarningMessage]) -> None:
        """openpyxl's own warnings (what it drops or doubts), each once, for the user."""
        for message in dict.fromkeys(str(w.message).strip() for w in caught):
            self.warnings.append(f"{self.shown}: openpyxl: {message}")

    def _data_sheet(self, wb: Any) -> Worksheet:
        if self.sheet_name not in wb.sheetnames:
            raise CannotKeep(f"sheet '{shown_name(self.sheet_name)}' is no longer in it")
        ws = wb[self.sheet_name]
        if not isinstance(ws, Worksheet):
            raise CannotKeep(f"sheet '{shown_name(self.sheet_name)}' is not a worksheet")
        return ws

    def _match_rows(self, ws: Worksheet, n_input: int) -> _Layout:
        """The header and data rows, checked cell for cell against the table read."""
        grid, start = _values_as_read(self.source, self.sheet_name)
        header = self.header_row if self.header_row is not None else start[0] + 1
        data_rows = [i + 1 for i in range(header, len(grid)) if any(v != "" for v in grid[i])]
        height = self.df.height
        if len(data_rows) < height:
            raise CannotKeep("its data sheet has fewer rows than were read (was it changed?)")
        first_col = start[1] + 1
        columns = range(first_col - 1, first_col - 1 + n_input)
        expected = self.df.select(self.df.columns[:n_input]).rows()
        for want, r in zip(expected, data_rows, strict=False):
            row = grid[r - 1]
            got = (row[c] if c < len(row) else "" for c in columns)
            if not all(_agrees(w, g) for w, g in zip(want, got, strict=True)):
                raise CannotKeep(f"row {r} of its data sheet differs from what was read")
        layout = _Layout(grid=grid, header=header, first_col=first_col, data_rows=data_rows)
        # The new columns go right of every value under the header row, and of
        # every merged range there (its other cells hold no value, yet cannot take one).
        used = (c for (r, c), cell in _cells(ws).items() if r >= header and cell.value is not None)
        merged = (m.max_col for m in ws.merged_cells.ranges if m.max_row >= header)
        layout.last_col = max(first_col + n_input - 1, *used, *merged)
        return layout

    def _warn_uncalculated(self, ws: Worksheet, layout: _Layout, n_input: int) -> None:
        """Say which columns hold formulas whose values were never stored (read as empty)."""
        grid = layout.grid
        rows = set(layout.data_rows[: self.df.height])
        formulas: dict[int, list[bool]] = {}
        for (r, c), cell in _cells(ws).items():
            if r in rows and cell.data_type == "f":
                row = grid[r - 1]
                formulas.setdefault(c, []).append(c > len(row) or row[c - 1] == "")
        header = dict(
            zip(
                range(layout.first_col, layout.first_col + n_input),
                self.df.columns[:n_input],
                strict=True,
            )
        )
        for c in sorted(formulas):
            empty = formulas[c]
            if all(empty):
                name = header.get(c, get_column_letter(c))
                self.warnings.append(
                    f"{self.shown}: column '{shown_name(name)}' of sheet "
                    f"'{shown_name(self.sheet_name)}' holds formulas with no stored value "
                    f"({len(empty)} cells; the file was saved by a program that does not "
                    "calculate, not by Excel): they were read as empty, and stay formulas"
                )

    def _drop_rows_after(self, ws: Worksheet, layout: _Layout) -> None:
        """``--limit``: only the first rows are written, so the rows after them go."""
        height = self.df.height
        if height == len(layout.data_rows):
            return
        last = layout.data_rows[height - 1] if height else layout.header
        if ws.max_row > last:
            ws.delete_rows(last + 1, ws.max_row - last)
        for merged in list(ws.merged_cells.ranges):
            if merged.min_row > last:
                ws.merged_cells.remove(merged)
            elif merged.max_row > last:
                merged.shrink(bottom=merged.max_row - last)
        if ws.auto_filter.ref:
            ws.auto_filter.ref = _clip_rows(ws.auto_filter.ref, last)
        for table in ws.tables.values():
            if range_boundaries(table.ref)[3] <= last:
                continue
            # An Excel table keeps its header and one row at least; a totals row was
            # a row after the prefix, and went with it.
            table.ref = _clip_rows(table.ref, max(last, range_boundaries(table.ref)[1] + 1))
            if table.autoFilter is not None and table.autoFilter.ref:
                table.autoFilter.ref = table.ref
            table.totalsRowCount = None
        layout.data_rows = layout.data_rows[:height]

    def _append(self, ws: Worksheet, layout: _Layout) -> None:
        """The appended headers (styled like the fast writer's), their cells, widths, filters."""
        first = layout.last_col + 1
        for k, name in enumerate(self.appended):
            cell = ws.cell(layout.header, first + k)
            _set_text(cell, name)
            cell.font, cell.fill, cell.border = _HEADER_FONT, _HEADER_FILL, _HEADER_BORDER
        values = self.flat.select(self.appended).rows()
        for r, row in zip(layout.data_rows, values, strict=True):
            for k, value in enumerate(row):
                if value is not None:
                    _set_value(ws.cell(r, first + k), value)
        last = first + len(self.appended) - 1
        self._fit_widths(ws, first)
        if ws.auto_filter.ref:
            ws.auto_filter.ref = _extend(ws.auto_filter.ref, layout, last)
        for table in ws.tables.values():
            self._extend_table(table, layout, first)

    def _fit_widths(self, ws: Worksheet, first: int) -> None:
        """Widths for the new columns, unless the user's column settings already cover them."""
        taken = [(dim.min or 0, dim.max or 0) for dim in ws.column_dimensions.values() if dim.min]
        widths = column_widths(self.flat.select(self.appended))
        for k, width in enumerate(widths):
            c = first + k
            if not any(lo <= c <= hi for lo, hi in taken):
                ws.column_dimensions[get_column_letter(c)].width = width

    def _extend_table(self, table: Any, layout: _Layout, first: int) -> None:
        """An Excel table whose header is the header row and that ends at the table's end."""
        min_col, min_row, max_col, max_row = range_boundaries(table.ref)
        if min_row != layout.header or max_col != first - 1 or not table.headerRowCount:
            return
        last = first + len(self.appended) - 1
        table.ref = f"{get_column_letter(min_col)}{min_row}:{get_column_letter(last)}{max_row}"
        next_id = max((col.id for col in table.tableColumns), default=0) + 1
        for k, name in enumerate(self.appended):
            table.tableColumns.append(TableColumn(id=next_id + k, name=name))
        if table.autoFilter is not None and table.autoFilter.ref:
            table.autoFilter.ref = table.ref


def _values_as_read(source: Path, sheet: str) -> tuple[list[list[Any]], tuple[int, int]]:
    """The sheet's values as the reader sees them (from A1), and where its used range starts."""
    try:
        workbook = CalamineWorkbook.from_path(str(source))
        try:
            data = workbook.get_sheet_by_name(sheet)
            start = data.start or (0, 0)
            grid: list[list[Any]] = data.to_python(skip_empty_area=False)
        finally:
            workbook.close()
    except (CalamineError, OSError, ValueError) as exc:
        raise CannotKeep(f"cannot read it again ({why(exc)})") from None
    return grid, (int(start[0]), int(start[1]))


def _agrees(want: object, got: object) -> bool:
    """Whether a cell as calamine reads it now (``got``; empty is "") says what the table holds.

    Empty must meet empty; text, booleans and numbers must be equal, a number in a
    text column (a mixed column) must give the same digits. Kinds the two readings
    render differently (dates, times, fractions as text) are not compared further.
    """
    if got == "" or want is None or want == "":
        return got == "" and (want is None or want == "")
    if isinstance(want, str) and isinstance(got, str):
        return want == got
    if isinstance(want, bool) or isinstance(got, bool):
        return not (isinstance(want, bool) and isinstance(got, bool)) or want == got
    if isinstance(want, int | float) and isinstance(got, int | float):
        return float(want) == float(got)
    if isinstance(want, str) and isinstance(got, float) and got.is_integer():
        return want == str(int(got))
    return True


def _set_text(cell: Any, text: str) -> None:
    cell.value = _xlsx_text(text)
    cell.data_type = "s"  # openpyxl makes "=…" a formula and "#N/A" an error: text is text


def _set_value(cell: Any, value: object) -> None:
    if isinstance(value, str):
        _set_text(cell, value)
    elif isinstance(value, bool | int | float):
        cell.value = value
    else:
        _set_text(cell, str(value))


def _clip_rows(ref: str, last_row: int) -> str:
    min_col, min_row, max_col, max_row = range_boundaries(ref)
    max_row = max(min(max_row, last_row), min_row)
    return f"{get_column_letter(min_col)}{min_row}:{get_column_letter(max_col)}{max_row}"


def _extend(ref: str, layout: _Layout, last_col: int) -> str:
    """A filter over the whole table covers the new columns too; another stays as it is."""
    min_col, min_row, max_col, max_row = range_boundaries(ref)
    if min_row != layout.header or min_col > layout.first_col or max_col != layout.last_col:
        return ref
    return f"{get_column_letter(min_col)}{min_row}:{get_column_letter(last_col)}{max_row}"


def why(exc: BaseException) -> str:
    """An exception in one line: its type and the first line of its message."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
