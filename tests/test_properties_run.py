"""End-to-end properties: whatever text sits in the other columns, ``enrich run`` keeps it.

What already exists elsewhere (not repeated here): normalising never raises and is
idempotent (test_phones), the parser never raises on arbitrary bytes or JSON
(test_parse), a CSV written by ``write_table`` reads back cell for cell (test_frames).

Here the whole run is under test, against one emulator for the module: arbitrary
text cells (quotes, separators, newlines, CR, Unicode, emoji, leading ``=`` ``+`` ``-``
``@`` and tab) in non-phone columns come out of ``enrich run`` exactly as they went
in, row for row, in CSV and in XLSX.
"""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path

import xlsxwriter
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from enrich.cli import cli
from enrich.emulator import EmulatorServer
from enrich.frames import read_table

ENV = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "testAKID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "testSecret"}
PHONES = ["+8613800138000", "+44 20 7946 0958", "8613800138001", "", "12", "+1 415 555 0100"]

# No surrogates (not encodable), no NUL (a NUL makes a CSV "binary data" by design).
text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
               max_size=12)
tricky = st.sampled_from(["=1+1", "+44", "-3", "@x", "\tt", "\rr", '"q"', "a,b", "a\nb",
                          "a\r\nb", " sp ", "é😀中", "007", "1e5", "TRUE", "NaN", "null"])
cell = st.one_of(text, tricky, st.builds(lambda a, b: a + b, tricky, text))
# A record with no value at all (",,") is no data row: read_table skips it (issue 16).
rows = st.lists(st.tuples(cell, st.sampled_from(PHONES), cell).filter(any), min_size=1,
                max_size=6)
# XLSX has no empty row: a row with no value at all is not read (frames.read_table).
xlsx_rows = st.lists(st.tuples(cell, st.sampled_from(PHONES), cell).filter(any), min_size=1,
                     max_size=6)


def _run(folder: Path, server: EmulatorServer, *args: str) -> None:
    res = CliRunner(env=ENV).invoke(cli, [
        "run", *args, "--endpoint", server.url, "--cust-space-id", "S1", "--no-cache",
        "--rate", "1000"], catch_exceptions=False)
    assert res.exit_code == 0, res.stderr


def _blank_is_none(value: object) -> object:
    return None if value == "" else value


@settings(max_examples=25, deadline=None)
@given(data=rows)
def test_csv_text_cells_survive_a_run(server: EmulatorServer, data: list[tuple[str, str, str]],
                                      ) -> None:
    folder = Path(tempfile.mkdtemp(dir="."))
    src = folder / "in.csv"
    with src.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([("note", "phone", "memo"), *data])
    _run(folder, server, str(src), "--separator", ",")
    with (folder / "in.enriched.csv").open(newline="", encoding="utf-8") as f:
        out = list(csv.reader(f))
    assert out[0][:3] == ["note", "phone", "memo"]
    assert len(out) == len(data) + 1
    for given_row, got in zip(data, out[1:], strict=True):
        # CSV has one spelling for "empty": an empty cell comes back empty
        assert tuple(got[:3]) == given_row


@settings(max_examples=15, deadline=None)
@given(data=xlsx_rows)
def test_xlsx_text_cells_survive_a_run(server: EmulatorServer, data: list[tuple[str, str, str]],
                                       ) -> None:
    folder = Path(tempfile.mkdtemp(dir="."))
    src = folder / "in.xlsx"
    wb = xlsxwriter.Workbook(str(src))
    ws = wb.add_worksheet("Data")
    ws.write_row(0, 0, ["note", "phone", "memo"])
    for r, row in enumerate(data, start=1):
        for c, value in enumerate(row):
            if value != "":
                ws.write_string(r, c, value)
    wb.close()
    _run(folder, server, str(src))
    back = read_table(folder / "in.enriched.xlsx").df
    want = read_table(src).df  # what the input holds, as the reader sees it
    assert back.columns[:3] == ["note", "phone", "memo"]
    assert back.height == len(data)
    for given_row, got in zip(want.select("note", "phone", "memo").rows(),
                              back.select("note", "phone", "memo").rows(), strict=True):
        assert tuple(map(_blank_is_none, got)) == tuple(map(_blank_is_none, given_row))
    # and the input as read is the text that was written
    for given_row, got in zip(data, want.select("note", "phone", "memo").rows(), strict=True):
        assert tuple(map(_blank_is_none, got)) == tuple(map(_blank_is_none, given_row))
