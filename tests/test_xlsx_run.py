"""XLSX in, XLSX out, through `enrich run` against the emulator, read back with openpyxl.

The input sheet comes back cell for cell (numbers stay numbers, text stays
text, dates stay dates), the API's text is text, no cell becomes a live
formula, the other sheets are carried, and a sheet written anew looks like a
report. What a kept workbook keeps is in tests/test_xlsx_keep.py.
"""

from __future__ import annotations

import csv
import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import xlsxwriter
from click.testing import CliRunner, Result

from enrich.cli import cli
from enrich.report import API_TEXT_COLUMNS, BP_COLUMNS

# An XLSX input is kept as its user made it once the run passes it to frames
# (report.write_outputs(source=...)); before that it is written anew.

SAMPLES = Path(__file__).resolve().parent.parent / "sample_data"
HEADER = ["id", "name", "Phone Number", "joined", "amount", "active", "note", "calc"]
ROWS: list[tuple[Any, ...]] = [
    (1, "Ada", "+86 138 0013 8000", dt.date(2024, 1, 2), 12.5, True, "=1+1"),
    (2, "Bo", "+44 20 7946 0958", dt.date(2024, 2, 3), 7.0, False, "+plus"),
    (3, "Cy", "+1 415 555 0100", dt.date(2024, 3, 4), 0.25, True, "-minus"),
    (4, "Di", "abc", dt.date(2024, 3, 5), 1.0, True, "@at"),
    (5, "Ed", "+86 138 0013 8000", dt.date(2024, 3, 6), 1e15, False, "\tTab"),
    (6, "Fa", "+8613800138001", dt.datetime(2024, 3, 7, 9, 30), -3.0, True, None),
]


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def kind(value: object) -> str:
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, dt.datetime | dt.date):
        return "date"
    return "text"


def make_workbook(path: Path) -> None:
    """A cover sheet, the data sheet (2nd), a lookup sheet; one formula per data row."""
    wb = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False,
                                         "strings_to_numbers": False})
    date = wb.add_format({"num_format": "dd/mm/yyyy"})
    cover = wb.add_worksheet("Cover")
    cover.write_row(0, 0, ["About", "n"])
    cover.write_string(1, 0, "=SUM(B2:B3)")  # text that looks like a formula
    cover.write_number(1, 1, 42)
    cover.write_string(2, 0, "leads for Q1")
    cover.write_number(2, 1, 0.5)
    ws = wb.add_worksheet("Leads")
    ws.write_row(0, 0, HEADER)
    for r, (i, name, phone, joined, amount, active, note) in enumerate(ROWS, start=1):
        ws.write_number(r, 0, i)
        ws.write_string(r, 1, name)
        ws.write_string(r, 2, phone)
        when = joined if isinstance(joined, dt.datetime) else dt.datetime.combine(joined, dt.time())
        ws.write_datetime(r, 3, when, date)
        ws.write_number(r, 4, amount)
        ws.write_boolean(r, 5, active)
        if note is not None:
            ws.write_string(r, 6, note)
        ws.write_formula(r, 7, f"=A{r + 1}*2", None, i * 2)  # a real formula, cached value
    lookup = wb.add_worksheet("Lookup")
    lookup.write_row(0, 0, ["code", "since"])
    lookup.write_string(1, 0, "=HYPERLINK(\"http://example.com\")")
    lookup.write_datetime(1, 1, dt.datetime(2024, 1, 1), date)
    wb.close()


def values(ws: Any) -> list[list[object]]:
    return [[c.value for c in row] for row in ws.iter_rows()]


def assert_formulas_as_given(given: Path, path: Path) -> None:
    """The formula cells of ``path`` are exactly those of ``given``, as written there."""

    def formulas(p: Path) -> dict[tuple[str, str], Any]:
        wb = openpyxl.load_workbook(p)
        return {(ws.title, c.coordinate): c.value
                for ws in wb for row in ws.iter_rows() for c in row if c.data_type == "f"}

    assert formulas(path) == formulas(given)


def assert_no_formula(path: Path) -> None:
    wb = openpyxl.load_workbook(path)  # not data_only: a formula would show as one
    for ws in wb:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (ws.title, cell.coordinate, cell.value)


@pytest.fixture
def leads(tmp_path: Path) -> Path:
    path = tmp_path / "leads.xlsx"
    make_workbook(path)
    return path


def run_xlsx(server_url: str, src: Path, tmp_path: Path, *extra: str) -> Path:
    out = tmp_path / "out.xlsx"
    res = invoke("run", str(src), "--endpoint", server_url, "--cust-space-id", "S1",
                 "--cache", str(tmp_path / "ledger.sqlite3"), "--rate", "1000", "-o", str(out),
                 *extra)
    assert res.exit_code == 0, res.stderr
    assert res.stdout == ""
    return out


@pytest.mark.parametrize("sheet", ["Leads", "2", "leads"])
def test_xlsx_round_trip(emulator, creds, leads: Path, tmp_path: Path, sheet: str) -> None:
    server = emulator()
    out = run_xlsx(server.url, leads, tmp_path, "--sheet", sheet)
    assert server.stats.requests_total == 4  # 4 distinct valid numbers, "abc" costs nothing

    result = openpyxl.load_workbook(out)
    # the workbook kept as its user made it: its own sheet order and formulas
    assert_formulas_as_given(leads, out)
    source = openpyxl.load_workbook(leads)
    assert result.sheetnames == ["Cover", "Leads", "Lookup"]

    # every input cell: the same value and the same kind of cell
    want = values(source["Leads"])
    got = values(result["Leads"])
    width = len(HEADER)
    assert got[0] == HEADER + list(BP_COLUMNS)
    assert len(got) == len(want) == len(ROWS) + 1
    for w_row, g_row in zip(want[1:], got[1:], strict=True):
        w_row = w_row + [None] * (width - len(w_row))
        assert g_row[:width] == w_row
        assert [kind(v) for v in g_row[:width]] == [kind(v) for v in w_row]
    by_name = [dict(zip(got[0], row, strict=True)) for row in got[1:]]
    assert by_name[0]["note"] == "=1+1"  # input text is never neutralised, never a formula
    assert by_name[4]["note"] == "\tTab"
    assert [r["calc"] for r in by_name] == [f"=A{r}*2" for r in range(2, 8)]
    assert by_name[4]["amount"] == 1e15 and kind(by_name[4]["amount"]) == "number"
    assert by_name[5]["joined"] == dt.datetime(2024, 3, 7, 9, 30)

    # the API's answers are text cells (neutralised where they could start a formula)
    data = result["Leads"]
    for row in data.iter_rows(min_row=2):
        cells = dict(zip(HEADER + list(BP_COLUMNS), row, strict=True))
        for name in BP_COLUMNS:
            cell = cells[name]
            if cell.value is not None:
                assert cell.data_type == "s", (name, cell.value)
                if name in API_TEXT_COLUMNS:
                    assert not str(cell.value).startswith(("=", "+", "-", "@", "\t", "\r"))
    statuses = [r["bp_status"] for r in by_name]
    assert statuses[3] == "invalid_phone"
    assert set(statuses) - {"invalid_phone"} <= {"ok", "no_profile"}
    assert by_name[0]["bp_phone"] == by_name[4]["bp_phone"] == "8613800138000"

    # the other sheets are carried cell for cell
    for name in ("Cover", "Lookup"):
        assert values(result[name]) == values(source[name])
        assert [[kind(v) for v in r] for r in values(result[name])] == [
            [kind(v) for v in r] for r in values(source[name])
        ]


def test_xlsx_output_is_readable(emulator, creds, tmp_path: Path) -> None:
    # a CSV to XLSX: written anew, as a report (a kept workbook keeps its user's look)
    src = tmp_path / "leads.csv"
    with src.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows([*row[:-1], row[-1] or "", row[0] * 2] for row in ROWS)
    out = run_xlsx(emulator().url, src, tmp_path)
    ws = openpyxl.load_workbook(out).active
    header = [c for c in next(ws.iter_rows(max_row=1))]
    names = [c.value for c in header]
    assert names == HEADER + list(BP_COLUMNS)

    # headers bold; the bp_* ones visibly distinct: a fill and a font colour of their own
    plain_fills = {c.fill.fgColor.rgb for c in header if not c.value.startswith("bp_")}
    bp_fills = {c.fill.fgColor.rgb for c in header if c.value.startswith("bp_")}
    assert all(c.font.b for c in header)
    assert len(bp_fills) == 1 and bp_fills.isdisjoint(plain_fills)
    assert all(c.fill.fill_type == "solid" for c in header if c.value.startswith("bp_"))
    assert all(c.fill.fill_type is None for c in header if not c.value.startswith("bp_"))
    assert {c.font.color.rgb for c in header if c.value.startswith("bp_")} != {None}

    # widths fit the header and the contents, within a cap; the header row stays in view
    widths = {}  # openpyxl keeps one <col min max> entry for a run of equal widths
    for dim in ws.column_dimensions.values():
        for index in range(dim.min, dim.max + 1):
            widths[index] = dim.width
    for cell in header:
        letter = cell.column_letter
        width = widths[cell.column]
        longest = max(len(str(c.value)) for c in ws[letter] if c.value is not None)
        assert width >= min(longest, 58), (cell.value, width, longest)
        assert 8 <= width <= 61  # xlsxwriter stores 60 characters as 60.71
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref is not None


def test_numeric_phone_cells_stay_numbers(emulator, creds, tmp_path: Path) -> None:
    src = tmp_path / "numbers.xlsx"
    wb = xlsxwriter.Workbook(str(src))
    ws = wb.add_worksheet("Sheet1")
    ws.write_row(0, 0, ["name", "MSISDN"])
    for r, number in enumerate([8613800138000, 442079460958, 14155550100], start=1):
        ws.write_string(r, 0, f"n{r}")
        ws.write_number(r, 1, number)
    wb.close()
    out = run_xlsx(emulator().url, src, tmp_path)
    assert_no_formula(out)
    got = values(openpyxl.load_workbook(out)["Sheet1"])
    assert [r[1] for r in got[1:]] == [8613800138000, 442079460958, 14155550100]
    assert [r[3] for r in got[1:]] == ["8613800138000", "442079460958", "14155550100"]


def test_the_sample_workbook(emulator, creds, tmp_path: Path) -> None:
    src = tmp_path / "contacts.xlsx"
    shutil.copyfile(SAMPLES / "contacts.xlsx", src)
    out = run_xlsx(emulator().url, src, tmp_path)
    assert_no_formula(out)
    source = openpyxl.load_workbook(src)
    result = openpyxl.load_workbook(out)
    assert result.sheetnames == ["Contacts", "Notes"]
    assert values(result["Notes"]) == values(source["Notes"])
    want, got = values(source["Contacts"]), values(result["Contacts"])
    assert len(got) == len(want) == 41
    header = want[0]
    phone = header.index("phone")
    for w_row, g_row in zip(want[1:], got[1:], strict=True):
        w_row = w_row + [None] * (len(header) - len(w_row))
        for c, (w, g) in enumerate(zip(w_row, g_row[: len(header)], strict=True)):
            if c == phone:
                assert str(g) == str(w) if w is not None else g is None
            else:
                assert (g, kind(g)) == (w, kind(w)), (header[c], w, g)
    companies = [r[header.index("company")] for r in got[1:]]
    assert '=HYPERLINK("http://example.com")' in companies


def test_mixed_phone_column_keeps_numeric_cells_numeric(emulator, creds, tmp_path: Path) -> None:
    src = tmp_path / "contacts.xlsx"
    shutil.copyfile(SAMPLES / "contacts.xlsx", src)
    out = run_xlsx(emulator().url, src, tmp_path)
    want = values(openpyxl.load_workbook(src)["Contacts"])
    got = values(openpyxl.load_workbook(out)["Contacts"])
    phone = want[0].index("phone")
    assert [kind(r[phone]) for r in got[1:]] == [kind(r[phone]) for r in want[1:]]
