"""XLSX output keeps the workbook as its user made it (issue 16 point 4).

Workbooks are made here as their users save them:

* ``excel_workbook``: as Excel saves one (xlsxwriter writes every formula with
  its last value, as Excel does): sheets [Cover, Data, Notes], number formats
  ``0`` (a 12-digit phone), ``£#,##0.00``, ``0.0%`` and a date, column widths,
  a filter over the table, frozen panes, formulas with stored values, a text
  cell ``=1+1``, merged cells and a picture on the cover, a header-less Notes
  sheet;
* ``script_workbook``: as a script saves one (openpyxl: formulas with no stored
  value), the table under two empty rows and made an Excel table.

``enrich run --mock`` runs on them, and the output is reopened with openpyxl.
``write_table`` is also called directly, for what the CLI cannot reach yet
(``header_row``) and for the fast writer above the size limit.
"""

from __future__ import annotations

import datetime as dt
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import openpyxl
import polars as pl
import pytest
import xlsxwriter
from click.testing import CliRunner, Result
from openpyxl.worksheet.table import Table as ExcelTable

from enrich.cli import cli
from enrich.frames import read_table, write_table
from enrich.frames.xlsx_output import KEEP_MAX_CELLS, NOT_KEPT
from enrich.frames.xlsx_parts import workbook_cells
from enrich.report import API_TEXT_COLUMNS, BP_COLUMNS

# The run passes the input workbook to frames.write_table once report.write_outputs
# takes it (``source=``); until then the CLI tests below wait for it.

DATA_HEADER = ["id", "name", "phone", "amount", "rate", "joined", "total", "note"]
PHONES = ["447946000001", "+44 20 7946 0958", "abc", "8613800138000", "+1 415 555 0100"]
FORMATS = {"phone": "0", "amount": "£#,##0.00", "rate": "0.0%", "joined": "dd/mm/yyyy"}
WIDTHS = {"A": 6, "B": 14, "C": 16, "D": 12, "E": 8, "F": 12, "G": 10, "H": 10}
NOTE_TEXTS = {1: "=1+1", 2: "   ", 3: " padded "}  # formula-like, spaces only, padded
NOTES = [["checked by Ana"], [42], ["=SUM(A1:A2)"], [None], ["last line"]]


def tiny_png() -> bytes:
    """A 1×1 white PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\xff\xff")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(
        b"IEND", b""
    )


def excel_workbook(
    path: Path, *, picture: bool = False, phones: list[str] = PHONES
) -> Path:
    """A workbook as Excel saves it: Cover, Data (second), Notes."""
    wb = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False,
                                         "strings_to_numbers": False})
    fmt = {name: wb.add_format({"num_format": f}) for name, f in FORMATS.items()}
    bold = wb.add_format({"bold": True, "bg_color": "#FFF2CC"})
    cover = wb.add_worksheet("Cover")
    cover.merge_range("A1:C1", "Leads, March", bold)
    cover.write_string(2, 0, "owner")
    cover.write_string(2, 1, "sales ops")
    if picture:
        png = path.with_suffix(".png")
        png.write_bytes(tiny_png())
        cover.insert_image("E2", str(png))
    ws = wb.add_worksheet("Data")
    ws.write_row(0, 0, DATA_HEADER, bold)
    for r, phone in enumerate(phones, start=1):
        ws.write_number(r, 0, r)
        ws.write_string(r, 1, f"Customer {r}")
        if phone.isdigit():
            ws.write_number(r, 2, int(phone), fmt["phone"])
        else:
            ws.write_string(r, 2, phone)
        ws.write_number(r, 3, 1234.5 * r, fmt["amount"])
        ws.write_number(r, 4, 0.125 * r, fmt["rate"])
        ws.write_datetime(r, 5, dt.datetime(2024, 3, r), fmt["joined"])
        ws.write_formula(r, 6, f"=D{r + 1}*E{r + 1}", None, 1234.5 * r * 0.125 * r)
        ws.write_string(r, 7, NOTE_TEXTS.get(r, f"note {r}"))
    for letter, width in WIDTHS.items():
        ws.set_column(f"{letter}:{letter}", width)
    ws.autofilter(0, 0, len(phones), len(DATA_HEADER) - 1)
    ws.freeze_panes(1, 2)
    notes = wb.add_worksheet("Notes")
    for r, (value,) in enumerate(NOTES):
        if isinstance(value, str):
            notes.write_string(r, 0, value)
        elif value is not None:
            notes.write_number(r, 0, value)
    wb.close()
    return path


def script_workbook(path: Path) -> Path:
    """A workbook as a script saves it: formulas without stored values, an Excel table."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Leads"
    ws.append([])
    ws.append([])
    ws.append(["name", "phone", "score", "double"])
    for r, phone in enumerate(["+44 20 7946 0958", "+8613800138000", "12"], start=4):
        ws.append([f"n{r}", phone, r, f"=C{r}*2"])
    ws.add_table(ExcelTable(displayName="Leads", ref="A3:D6"))
    ws["C4"].number_format = "0.0%"
    ws.freeze_panes = "B4"
    wb.save(path)
    return path


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def run_mock(src: Path, *extra: str) -> tuple[Path, str]:
    out = src.with_name("out.xlsx")
    res = invoke("run", str(src), "--mock", "--no-progress", "-o", str(out), *extra)
    assert res.exit_code == 0, res.stderr
    return out, res.stderr


def enriched(df: pl.DataFrame, about: list[str | None] | None = None) -> pl.DataFrame:
    """``df`` with the bp_* columns as the report makes them (websites still lists)."""
    n = df.height
    texts = about if about is not None else ["=cmd|' /C calc'!A0", "@SUM(1)", None] * n
    bp: dict[str, Any] = {name: [None] * n for name in BP_COLUMNS}
    bp["bp_status"] = ["ok"] * n
    bp["bp_phone"] = [str(8613800138000 + i) for i in range(n)]
    bp["bp_about"] = texts[:n]
    bp["bp_websites"] = [["https://a.example", "=b.example"]] + [[]] * (n - 1) if n else []
    bp["bp_fetched_at"] = ["2024-05-01T10:00:00Z"] * n
    schema = {name: pl.List(pl.String) if name == "bp_websites" else pl.String
              for name in BP_COLUMNS}
    return pl.concat([df, pl.DataFrame(bp, schema=schema)], how="horizontal")


def write_kept(src: Path, out: Path, df: pl.DataFrame | None = None, **kwargs: Any) -> list[str]:
    table = read_table(src, sheet=kwargs.pop("sheet", None))
    return write_table(
        df if df is not None else enriched(table.df), out, fmt="xlsx",
        api_text_columns=API_TEXT_COLUMNS, sheet_name=table.sheet_name,
        other_sheets=table.other_sheets, numeric_cells=table.numeric_cells, source=src, **kwargs,
    )


def cells(ws: Any) -> list[list[tuple[Any, str, str]]]:
    """Every cell of a sheet: value, type and number format."""
    return [[(c.value, c.data_type, c.number_format) for c in row] for row in ws.iter_rows()]


def widths(ws: Any) -> dict[str, float]:
    return {letter: dim.width for letter, dim in ws.column_dimensions.items() if dim.width}


# ----------------------------------------------------------------- what is kept, through the CLI


def assert_kept(src: Path, out: Path, *, rows: int) -> None:
    """``out`` is ``src`` with the bp_* columns beside the Data table, the first ``rows`` rows."""
    before, after = openpyxl.load_workbook(src), openpyxl.load_workbook(out)
    assert after.sheetnames == ["Cover", "Data", "Notes"]  # order kept, the data sheet in place
    for name in ("Cover", "Notes"):
        assert cells(after[name]) == cells(before[name]), name
        assert after[name].merged_cells.ranges == before[name].merged_cells.ranges
    assert not any(str(v).startswith("__UNNAMED__") for row in cells(after["Notes"]) for v in row)

    data, was = after["Data"], before["Data"]
    width = len(DATA_HEADER)
    got, want = cells(data), cells(was)
    assert len(got) == rows + 1
    assert [row[:width] for row in got] == want[: rows + 1]  # values, types, number formats
    assert [v for v, _, _ in got[0][width:]] == list(BP_COLUMNS)
    assert got[1][2] == (447946000001, "n", "0")  # shows as 447946000001, not 4.47946E+11
    assert got[1][3][2] == "£#,##0.00" and got[1][4][2] == "0.0%"
    assert got[1][6] == ("=D2*E2", "f", "General")  # the user's formula, still a formula
    assert got[1][7] == ("=1+1", "s", "General")  # text that looks like a formula stays text
    assert data["A1"].font.b and data["A1"].fill.fgColor.rgb == was["A1"].fill.fgColor.rgb
    assert {k: v for k, v in widths(data).items() if k in WIDTHS} == widths(was)
    assert data.freeze_panes == was.freeze_panes == "C2"
    last = openpyxl.utils.get_column_letter(width + len(BP_COLUMNS))
    assert data.auto_filter.ref == f"A1:{last}{rows + 1}"  # over the new columns too
    for row in data.iter_rows(min_row=2, min_col=width + 1):
        for cell in row:
            if cell.value is not None:
                assert cell.data_type == "s", (cell.coordinate, cell.value)
                assert not str(cell.value).startswith(("=", "+", "-", "@", "\t", "\r"))


def assert_answered(out: Path, *, rows: int) -> None:
    """The run's own bp_* values beside the rows they answer."""
    data = openpyxl.load_workbook(out)["Data"]
    width = len(DATA_HEADER)
    statuses = [data.cell(r, width + 1).value for r in range(2, rows + 2)]
    assert statuses[2:3] in ([], ["invalid_phone"])  # "abc"
    assert set(statuses) <= {"ok", "no_profile", "invalid_phone"}
    assert data.cell(2, width + 2).value == "447946000001"  # bp_phone: the digits, as text


def test_the_workbook_comes_back_as_its_user_made_it() -> None:
    src = excel_workbook(Path("leads.xlsx"))
    out, stderr = run_mock(src, "--sheet", "Data")
    assert_kept(src, out, rows=len(PHONES))
    assert_answered(out, rows=len(PHONES))
    assert "written anew" not in stderr and "no stored value" not in stderr


def test_limit_keeps_the_first_rows_of_the_kept_workbook() -> None:
    src = excel_workbook(Path("leads.xlsx"))
    out, _ = run_mock(src, "--sheet", "Data", "--limit", "1")
    assert_kept(src, out, rows=1)
    assert_answered(out, rows=1)


def test_formulas_without_stored_values_are_warned_about() -> None:
    src = script_workbook(Path("script.xlsx"))
    out, stderr = run_mock(src)
    assert (
        "column 'double' of sheet 'Leads' holds formulas with no stored value (3 cells; the "
        "file was saved by a program that does not calculate, not by Excel): they were read "
        "as empty, and stay formulas"
    ) in stderr
    ws = openpyxl.load_workbook(out)["Leads"]
    assert [ws.cell(r, 4).value for r in range(4, 7)] == ["=C4*2", "=C5*2", "=C6*2"]
    assert ws["C4"].number_format == "0.0%" and ws.freeze_panes == "B4"
    assert [ws.cell(3, c).value for c in range(5, 5 + len(BP_COLUMNS))] == list(BP_COLUMNS)
    assert ws.cell(4, 6).value == "442079460958" and ws.cell(6, 5).value == "invalid_phone"
    table = ws.tables["Leads"]
    last = openpyxl.utils.get_column_letter(4 + len(BP_COLUMNS))
    assert table.ref == f"A3:{last}6"
    assert [c.name for c in table.tableColumns][4:] == list(BP_COLUMNS)


def test_a_workbook_too_large_to_keep_is_written_anew_with_a_warning() -> None:
    # a sparse sheet whose used range spans 100,000 rows × 11 columns: over the limit
    src = Path("big.xlsx")
    wb = xlsxwriter.Workbook(str(src))
    ws = wb.add_worksheet("S")
    ws.write_row(0, 0, ["phone", "n"])
    ws.write_row(1, 0, ["+8613800138000", 1])
    ws.write_string(99_999, 10, "end of export")
    wb.close()
    assert workbook_cells(src) == 100_000 * 11 > KEEP_MAX_CELLS
    out, stderr = run_mock(src)
    assert (
        f"out.xlsx: big.xlsx with the added columns spans {100_000 * 11 + 3 * len(BP_COLUMNS):,} "
        f"cells, more than the {KEEP_MAX_CELLS:,} an output keeps as the workbook was; "
        f"written anew from its values: {NOT_KEPT}"
    ) in stderr.replace("\n", " ")
    assert openpyxl.load_workbook(out)["S"]["A2"].value == "+8613800138000"


def test_a_header_row_given_with_header_row_keeps_the_title_above_it() -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "S"
    ws["A1"] = "Leads export, March"  # a title, then the header on row 3
    ws["A1"].font = openpyxl.styles.Font(size=16, bold=True)
    ws.append([])
    ws.append(["phone", "amount"])
    ws.append(["+8613800138000", 12.5])
    ws["B4"].number_format = "£#,##0.00"
    ws.append(["+8613800138001", 99])
    wb.save("titled.xlsx")
    out, stderr = run_mock(Path("titled.xlsx"), "--header-row", "3")
    got = openpyxl.load_workbook(out)["S"]
    assert got["A1"].value == "Leads export, March" and got["A1"].font.sz == 16
    assert [got.cell(3, c).value for c in range(1, 4)] == ["phone", "amount", "bp_status"]
    assert got["B4"].number_format == "£#,##0.00"
    assert [got.cell(r, 4).value for r in (4, 5)] == ["8613800138000", "8613800138001"]
    assert "written anew" not in stderr


# ------------------------------------------------------------------- write_table, directly


def test_write_table_keeps_the_workbook() -> None:
    src = excel_workbook(Path("leads.xlsx"))
    warnings = write_kept(src, Path("out.xlsx"), sheet="Data")
    assert warnings == []
    assert_kept(src, Path("out.xlsx"), rows=len(PHONES))
    ws = openpyxl.load_workbook("out.xlsx")["Data"]
    width = len(DATA_HEADER)
    about = width + 1 + list(BP_COLUMNS).index("bp_about")
    sites = width + 1 + list(BP_COLUMNS).index("bp_websites")
    assert [ws.cell(r, about).value for r in (2, 3, 4)] == ["'=cmd|' /C calc'!A0", "'@SUM(1)",
                                                            None]
    assert ws.cell(2, sites).value == "https://a.example =b.example"
    # through calamine, as a program reads it: the text cells as they were, spaces too
    back = read_table(Path("out.xlsx"), sheet="Data").df
    assert back["note"].to_list() == ["=1+1", "   ", " padded ", "note 4", "note 5"]
    # the fast writer's look for the new headers; the user's for the rest
    header = ws.cell(1, width + 1)
    assert header.font.b and header.fill.fill_type == "solid"
    assert ws.cell(1, 1).fill.fgColor.rgb.endswith("FFF2CC")


def test_write_table_prefix_drops_the_rows_after_it() -> None:
    src = excel_workbook(Path("leads.xlsx"))
    table = read_table(src, sheet="Data")
    write_kept(src, Path("out.xlsx"), enriched(table.df.head(2)), sheet="Data")
    assert_kept(src, Path("out.xlsx"), rows=2)


def test_the_header_row_may_be_lower_down() -> None:
    # a title row and a blank row above the header: rows 1-2 are not the table
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "S"
    ws["A1"] = "Export of 1 May"
    ws.append([])
    ws.append(["phone", "n"])
    ws.append(["+8613800138000", 1])
    ws.append([])  # a blank row inside the table: skipped when read, kept as it is
    ws.append(["+8613800138001", 2])
    ws.auto_filter.ref = "A3:B6"
    wb.save("titled.xlsx")
    df = pl.DataFrame({"phone": ["+8613800138000", "+8613800138001"], "n": [1.0, 2.0]})
    warnings = write_table(
        enriched(df, ["first", "second"]), Path("out.xlsx"), fmt="xlsx",
        api_text_columns=API_TEXT_COLUMNS, sheet_name="S", source=Path("titled.xlsx"),
        header_row=3,
    )
    assert warnings == []
    got = openpyxl.load_workbook("out.xlsx")["S"]
    assert got["A1"].value == "Export of 1 May" and got["C1"].value is None
    assert [got.cell(3, c).value for c in range(1, 4)] == ["phone", "n", "bp_status"]
    about = 3 + list(BP_COLUMNS).index("bp_about")
    assert [got.cell(r, about).value for r in (4, 5, 6)] == ["first", None, "second"]
    assert got.auto_filter.ref == f"A3:{openpyxl.utils.get_column_letter(2 + len(BP_COLUMNS))}6"


def test_an_excel_table_is_widened_and_shortened_with_the_rows() -> None:
    src = script_workbook(Path("script.xlsx"))
    table = read_table(src)
    warnings = write_kept(src, Path("out.xlsx"), enriched(table.df.head(1)))
    assert len(warnings) == 1 and "column 'double'" in warnings[0]  # no stored values
    ws = openpyxl.load_workbook("out.xlsx")["Leads"]
    last = openpyxl.utils.get_column_letter(4 + len(BP_COLUMNS))
    assert ws.tables["Leads"].ref == f"A3:{last}4"  # the header and the one row kept
    assert ws.max_row == 4 and ws["D4"].value == "=C4*2"


def test_the_new_columns_go_right_of_a_merged_range_under_the_header() -> None:
    src = Path("merged.xlsx")
    wb = xlsxwriter.Workbook(str(src))
    ws = wb.add_worksheet("S")
    ws.write_row(0, 0, ["phone", "n"])
    ws.merge_range("C2:E2", "see the call notes")  # beside the first data row
    ws.write_row(1, 0, ["+8613800138000", 1])
    ws.write_row(2, 0, ["+8613800138001", 2])
    wb.close()
    assert write_kept(src, Path("out.xlsx")) == []
    got = openpyxl.load_workbook("out.xlsx")["S"]
    assert [got.cell(1, c).value for c in range(1, 7)] == ["phone", "n", None, None, None,
                                                           "bp_status"]
    assert {str(m) for m in got.merged_cells.ranges} == {"C2:E2"}
    assert got["C2"].value == "see the call notes" and got["F3"].value == "ok"


def test_above_the_limit_the_fast_writer_says_what_is_not_kept() -> None:
    src = excel_workbook(Path("leads.xlsx"))
    warnings = write_kept(src, Path("out.xlsx"), sheet="Data", keep_max_cells=50)
    cells_now = workbook_cells(src) + (len(PHONES) + 1) * len(BP_COLUMNS)
    assert warnings == [
        f"out.xlsx: leads.xlsx with the added columns spans {cells_now:,} cells, more than "
        f"the 50 an output keeps as the workbook was; written anew from its values: {NOT_KEPT}"
    ]
    wb = openpyxl.load_workbook("out.xlsx")
    assert wb.sheetnames == ["Cover", "Data", "Notes"]  # the order is kept even so
    assert wb.active.title == "Data"
    ws = wb["Data"]
    assert ws.freeze_panes == "A2"  # the fast writer's own look
    assert ws["C2"].value == 447946000001 and ws["G2"].data_type == "n"  # values, no formula


@pytest.mark.parametrize(
    ("phones", "why"),
    [
        # a row inserted while the run went on: same shape, other values from row 3 on
        ([PHONES[0], "+44 7700 900123", *PHONES[1:]], "row 3 of its data sheet differs"),
        # a row deleted: fewer rows than were read
        (PHONES[:1] + PHONES[2:], "its data sheet has fewer rows than were read"),
    ],
)
def test_a_workbook_changed_since_it_was_read_is_not_matched_to_the_wrong_rows(
    phones: list[str], why: str
) -> None:
    src = excel_workbook(Path("leads.xlsx"))
    table = read_table(src, sheet="Data")
    excel_workbook(src, phones=phones)  # the user saves it again before the run ends
    warnings = write_table(
        enriched(table.df), Path("out.xlsx"), fmt="xlsx", api_text_columns=API_TEXT_COLUMNS,
        sheet_name="Data", other_sheets=table.other_sheets, numeric_cells=table.numeric_cells,
        source=src,
    )
    assert len(warnings) == 1
    assert warnings[0].startswith(f"out.xlsx: cannot keep leads.xlsx as it is: {why}")
    assert warnings[0].endswith(f"; written anew from its values: {NOT_KEPT}")
    got = openpyxl.load_workbook("out.xlsx")["Data"]
    assert [got.cell(r, 3).value for r in range(2, 7)] == [
        447946000001, "+44 20 7946 0958", "abc", 8613800138000, "+1 415 555 0100"
    ]  # the rows as read, each beside its own answers


def test_api_text_is_text_even_when_it_looks_like_a_formula_an_error_or_a_control() -> None:
    src = excel_workbook(Path("leads.xlsx"))
    table = read_table(src, sheet="Data")
    texts = ["#N/A", "a\x01b\rc", "x _x000D_ y", "=1+1", "0042"]
    write_kept(src, Path("out.xlsx"), enriched(table.df, texts), sheet="Data")
    ws = openpyxl.load_workbook("out.xlsx")["Data"]
    about = len(DATA_HEADER) + 1 + list(BP_COLUMNS).index("bp_about")
    assert all(ws.cell(r, about).data_type == "s" for r in range(2, 7))
    back = read_table(Path("out.xlsx"), sheet="Data").df  # through calamine: escapes decoded
    assert back["bp_about"].to_list() == ["#N/A", "a\x01b\rc", "x _x000D_ y", "'=1+1", "0042"]


def test_what_openpyxl_cannot_carry_is_named() -> None:
    src = excel_workbook(Path("leads.xlsx"), picture=True)
    warnings = write_kept(src, Path("out.xlsx"), sheet="Data")
    try:
        import PIL  # noqa: F401  # openpyxl keeps pictures only with Pillow
    except ImportError:
        assert warnings == [
            "out.xlsx: the workbook is kept as it was, except what openpyxl cannot carry: "
            "pictures (dropped)"
        ]
    else:
        assert warnings == []
    assert_kept(src, Path("out.xlsx"), rows=len(PHONES))


def test_a_csv_input_gets_the_fast_writer_without_a_warning() -> None:
    df = enriched(pl.DataFrame({"phone": ["+8613800138000"]}))
    assert write_table(df, Path("o.xlsx"), fmt="xlsx", api_text_columns=API_TEXT_COLUMNS) == []
    assert write_table(df, Path("o.csv"), fmt="csv", api_text_columns=API_TEXT_COLUMNS) == []


def test_workbook_cells_reads_the_used_ranges() -> None:
    src = excel_workbook(Path("leads.xlsx"))
    # Cover A1:C3, Data A1:H6, Notes A1:A5
    assert workbook_cells(src) == 3 * 3 + 8 * 6 + 1 * 5


def test_openpyxl_is_loaded_only_to_keep_a_workbook() -> None:
    code = "import sys, enrich.frames, enrich.cli; print('openpyxl' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "False"
