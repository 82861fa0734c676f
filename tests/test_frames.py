"""Reading and writing tables (enrich.frames): exact text, clear errors, safe outputs."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import openpyxl
import polars as pl
import pytest
import xlsxwriter
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from enrich.errors import InputError, OutputError, UsageError
from enrich.frames import (
    DANGEROUS_PREFIXES,
    atomic_path,
    cell_texts,
    format_for,
    neutralize,
    parse_separator,
    read_table,
    write_table,
)

API = ("bp_about", "bp_email")


def write_bytes(name: str, data: bytes) -> Path:
    path = Path(name)
    path.write_bytes(data)
    return path


def make_xlsx(name: str, sheets: dict[str, list[list[Any]]]) -> Path:
    """A workbook as a data team gets it: typed cells, written cell by cell."""
    path = Path(name)
    workbook = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False})
    date_format = workbook.add_format({"num_format": "yyyy-mm-dd"})
    for sheet, rows in sheets.items():
        ws = workbook.add_worksheet(sheet)
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                if value is None:
                    continue
                if isinstance(value, dt.date):
                    ws.write_datetime(r, c, value, date_format)
                elif isinstance(value, str):
                    ws.write_string(r, c, value)
                else:
                    ws.write(r, c, value)
    workbook.close()
    return path


def read_error(path: Path, **kwargs: Any) -> str:
    with pytest.raises(InputError) as err:
        read_table(path, **kwargs)
    message = str(err.value)
    assert "\n" not in message
    return message


def sheet_cells(path: Path) -> dict[str, list[list[tuple[Any, str]]]]:
    workbook = openpyxl.load_workbook(path)
    return {
        ws.title: [[(cell.value, cell.data_type) for cell in row] for row in ws.iter_rows()]
        for ws in workbook.worksheets
    }


# ------------------------------------------------------------------------- formats


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("a.csv", "csv"), ("A.CSV", "csv"), ("b.parquet", "parquet"), ("c.XLSX", "xlsx")],
)
def test_format_for(name: str, fmt: str) -> None:
    assert format_for(Path(name), role="input") == fmt
    assert format_for(Path(name), role="output") == fmt


def test_unknown_input_format_is_an_input_error() -> None:
    with pytest.raises(InputError) as err:
        format_for(Path("x.txt"), role="input")
    assert str(err.value) == "unknown input format '.txt' for x.txt; use .csv, .parquet or .xlsx"
    assert err.value.exit_code == 1


def test_unknown_output_format_is_a_usage_error() -> None:
    with pytest.raises(UsageError) as err:
        format_for(Path("out"), role="output")
    assert (
        str(err.value)
        == "unknown output format (no extension) for out; use .csv, .parquet or .xlsx"
    )
    assert err.value.exit_code == 2


def test_xls_is_refused_with_advice() -> None:
    with pytest.raises(InputError) as err:
        format_for(Path("old.xls"), role="input")
    assert str(err.value) == (
        "input format '.xls' of old.xls is not supported; "
        "save the workbook as .xlsx (or export .csv)"
    )


@pytest.mark.parametrize(("text", "sep"), [(",", ","), (";", ";"), ("tab", "\t"), ("\\t", "\t")])
def test_parse_separator(text: str, sep: str) -> None:
    assert parse_separator(text) == sep


@pytest.mark.parametrize("text", ["", ",,", '"', "\n"])
def test_bad_separator(text: str) -> None:
    with pytest.raises(UsageError, match="--separator must be one character"):
        parse_separator(text)


# ----------------------------------------------------------------------- CSV reading


def test_csv_text_is_kept_exactly() -> None:
    path = write_bytes(
        "contacts.csv",
        "\ufeffphone,amount,id,joined,price,note\n"
        '+86 138 0013 8000,007,8613800138000,2024-01-02,1.50,"Acme, Inc."\n'
        '008613800138001,0000,1234567890123,02/01/2024,0.10,"line one\nline two"\n'
        '8613800138002,,00,2024-13-45,1e3,"say ""hi"""\n'.encode(),
    )
    table = read_table(path)
    assert table.fmt == "csv"
    assert table.separator == ","
    assert table.df.columns == ["phone", "amount", "id", "joined", "price", "note"]
    assert all(dtype == pl.String for dtype in table.df.dtypes)
    assert table.df.rows() == [
        ("+86 138 0013 8000", "007", "8613800138000", "2024-01-02", "1.50", "Acme, Inc."),
        ("008613800138001", "0000", "1234567890123", "02/01/2024", "0.10", "line one\nline two"),
        ("8613800138002", None, "00", "2024-13-45", "1e3", 'say "hi"'),
    ]


@pytest.mark.parametrize("sep", [",", ";", "\t", "|"])
def test_separator_is_sniffed(sep: str) -> None:
    rows = [["phone", "name", "amount"], ["+44 20 7946 0958", "Ann", "1,5"], ["0049", "Bo", "2"]]
    text = "\n".join(
        sep.join(f'"{v}"' if ("," in v or sep in v) else v for v in row) for row in rows
    )
    table = read_table(write_bytes("x.csv", (text + "\n").encode()))
    assert table.separator == sep
    assert table.df.rows() == [("+44 20 7946 0958", "Ann", "1,5"), ("0049", "Bo", "2")]


def test_one_column_file_takes_a_separator_that_splits_nothing() -> None:
    table = read_table(write_bytes("one.csv", b"phone\n+1 415, 555 0100\n"))
    assert table.separator == ";"
    assert table.df.rows() == [("+1 415, 555 0100",)]


def test_sniffing_respects_quotes() -> None:
    path = write_bytes("q.csv", b'"a;b";"c,d"\n"1,2";"3;4"\n')
    table = read_table(path)
    assert table.separator == ";"
    assert table.df.columns == ["a;b", "c,d"]


def test_given_separator_wins() -> None:
    path = write_bytes("g.csv", b"a;b,c\n1;2,3\n")
    assert read_table(path, separator=";").df.columns == ["a", "b,c"]
    assert read_table(path, separator=",").df.columns == ["a;b", "c"]


@pytest.mark.parametrize("data", [b"phone,name\n", b"phone,name", b"\xef\xbb\xbfphone,name\r\n"])
def test_header_only_csv_is_zero_rows(data: bytes) -> None:
    table = read_table(write_bytes("h.csv", data))
    assert table.df.shape == (0, 2)
    assert table.df.columns == ["phone", "name"]


def test_crlf_and_blank_lines() -> None:
    path = write_bytes("b.csv", b"a,b\r\n1,2\r\n\r\n3,4\r\n\r\n")
    assert read_table(path).df.rows() == [("1", "2"), ("3", "4")]


def test_blank_lines_are_empty_values_in_a_one_column_file() -> None:
    path = write_bytes("one.csv", b"phone\n+86 138 0013 8000\n\n12\n")
    assert read_table(path).df["phone"].to_list() == ["+86 138 0013 8000", None, "12"]


def test_old_mac_line_endings_and_bare_quotes() -> None:
    # Files the fast reader reads differently: the stdlib reader decides.
    assert read_table(write_bytes("mac.csv", b"a,b\r1,2\r3,4\r")).df.rows() == [
        ("1", "2"),
        ("3", "4"),
    ]
    assert read_table(write_bytes("bare.csv", b'a,b\nab"c,x\n')).df.rows() == [('ab"c', "x")]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "e.csv is empty (0 bytes)"),
        (b"\n\n  \n", "e.csv has no header row (only blank lines)"),
        (
            b"a,b,c\n1,2,3\n4,5,6\n7,8,9\n1,2,3\n4,5,6\n1,2,3,4\n",
            "e.csv: line 7 has 4 fields, header has 3; "
            "fix that line (or quote a field that contains the separator)",
        ),
        (
            b"a,b,c\n1,2,3\n1,2\n",
            "e.csv: line 3 has 2 fields, header has 3; "
            "fix that line (or quote a field that contains the separator)",
        ),
        (
            b'a,b\n1,2\n3,"4\n5,6\n',
            "e.csv: unclosed quote in the record starting on line 3; "
            'close it (a quote inside a quoted field is written "")',
        ),
        (b'a,b\n"1"x,2\n', "e.csv: malformed CSV on line 2: ',' expected after '\"'"),
        (b"id,phone,id\n1,2,3\n", "e.csv has two columns named 'id'; rename one of them"),
        (
            b"a,b\n1,2\n3,\xff\n",
            "e.csv is not valid UTF-8 (line 3, byte 11); save it as UTF-8 CSV, or name its "
            'encoding: --encoding cp1252 for Excel\'s "CSV (Comma delimited)"',
        ),
        (b"\xff\xfea\x00,\x00b\x00", "e.csv is UTF-16 text; save it as UTF-8 CSV"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "e.csv is binary data, not a CSV text file"),
        (b"PAR1\x00\x00", "e.csv is a Parquet file, not CSV; rename it to .parquet"),
        (
            b"PK\x03\x04\x14\x00",
            "e.csv is a ZIP file (an XLSX workbook?), not CSV; rename it to .xlsx",
        ),
    ],
)
def test_csv_read_errors(data: bytes, message: str) -> None:
    assert read_error(write_bytes("e.csv", data)) == message


def test_missing_file() -> None:
    assert read_error(Path("nope.csv")) == "input file nope.csv does not exist"


def test_directory() -> None:
    Path("dir.csv").mkdir()
    assert read_error(Path("dir.csv")) == "dir.csv is a directory, not an input file"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file() -> None:
    path = write_bytes("locked.csv", b"a\n1\n")
    path.chmod(0)
    assert read_error(path) == "cannot read locked.csv: Permission denied"


def test_separator_is_validated_for_csv_only() -> None:
    path = write_bytes("s.csv", b"a\n1\n")
    with pytest.raises(UsageError):
        read_table(path, separator="ab")


# ------------------------------------------------------------------- Parquet


def typed_frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "phone": ["+86 138 0013 8000", None, "12"],
            "n": pl.Series([1, None, 3], dtype=pl.Int32),
            "x": [1.5, None, 8613800138000.0],
            "d": [dt.date(2024, 1, 2), None, dt.date(1999, 12, 31)],
            "t": [dt.datetime(2024, 1, 2, 3, 4, 5), None, None],
            "ok": [True, False, None],
            "tags": [["a", "b"], [], None],
        }
    )


def test_parquet_round_trip_keeps_dtypes() -> None:
    df = typed_frame()
    write_table(df, Path("in.parquet"), fmt="parquet", api_text_columns=())
    table = read_table(Path("in.parquet"))
    assert table.fmt == "parquet"
    assert_frame_equal(table.df, df)


def test_parquet_errors() -> None:
    assert read_error(write_bytes("bad.parquet", b"a,b\n1,2\n")) == (
        "bad.parquet is not a Parquet file (or it is truncated)"
    )
    typed_frame().write_parquet("whole.parquet")
    data = Path("whole.parquet").read_bytes()
    truncated = write_bytes("cut.parquet", data[:4] + data[-40:])
    assert read_error(truncated).startswith("cut.parquet is not a readable Parquet file: ")


# ---------------------------------------------------------------------- cell texts


def test_cell_texts() -> None:
    floats = pl.Series("p", [8613800138000.0, 1.5, None, float("nan"), 7.0, -0.0, 1e20])
    assert cell_texts(floats).to_list() == [
        "8613800138000",
        "1.5",
        None,
        None,
        "7",
        "0",
        "1e+20",  # beyond Int64: str form
    ]
    assert cell_texts(pl.Series([8613800138000, None])).to_list() == ["8613800138000", None]
    assert cell_texts(pl.Series(["007", None])).to_list() == ["007", None]
    assert cell_texts(pl.Series([True, None])).to_list() == ["true", None]
    assert cell_texts(pl.Series([None, None])).to_list() == [None, None]
    assert cell_texts(pl.Series([dt.date(2024, 1, 2)])).to_list() == ["2024-01-02"]
    assert cell_texts(pl.Series([["a"], None])).to_list() == ['["a"]', None]
    assert cell_texts(floats).name == "p"
    assert cell_texts(floats).dtype == pl.String


# ----------------------------------------------------------------------- XLSX reading


def contacts_xlsx() -> Path:
    return make_xlsx(
        "book.xlsx",
        {
            "Contacts": [
                ["phone", "name", "amount", "joined"],
                [8613800138000, "=1+1", 7, dt.date(2024, 1, 2)],
                ["+44 20 7946 0958", "Ann", 1.5, dt.date(2024, 2, 3)],
                [None, None, None, None],
                [4930901820, "@bob", 3, dt.date(2024, 3, 4)],
            ],
            "Notes": [["note"], ["=SUM(A1:A2)"], ["hello"]],
            "Empty": [],
        },
    )


def test_xlsx_reads_the_first_sheet_and_keeps_the_others() -> None:
    table = read_table(contacts_xlsx())
    assert table.fmt == "xlsx"
    assert table.sheet_name == "Contacts"
    assert list(table.other_sheets) == ["Notes", "Empty"]
    df = table.df
    assert df.columns == ["phone", "name", "amount", "joined"]
    assert df.height == 3  # the empty row is skipped
    assert df["name"].to_list() == ["=1+1", "Ann", "@bob"]
    assert df["amount"].dtype == pl.Float64
    assert cell_texts(df["phone"]).to_list() == [
        "8613800138000",
        "+44 20 7946 0958",
        "4930901820",
    ]
    assert table.other_sheets["Notes"]["note"].to_list() == ["=SUM(A1:A2)", "hello"]


def test_xlsx_numeric_phone_column_gives_digits() -> None:
    path = make_xlsx("n.xlsx", {"S": [["msisdn"], [8613800138000], [14155550100], [None], [7.0]]})
    df = read_table(path).df
    assert df["msisdn"].dtype == pl.Float64
    assert cell_texts(df["msisdn"]).to_list() == ["8613800138000", "14155550100", "7"]


def test_xlsx_text_far_down_a_numeric_column_is_not_lost() -> None:
    rows: list[list[Any]] = [["phone"], *([[8613800138000 + i] for i in range(1500)])]
    rows.append(["+44 20 7946 0958"])
    df = read_table(make_xlsx("long.xlsx", {"S": rows})).df
    assert df.height == 1501
    assert cell_texts(df["phone"]).to_list()[-2:] == ["8613800139499", "+44 20 7946 0958"]


@pytest.mark.parametrize(
    ("sheet", "name"),
    [("Notes", "Notes"), ("notes", "Notes"), (2, "Notes"), ("2", "Notes"), (1, "Contacts")],
)
def test_xlsx_sheet_by_name_or_position(sheet: str | int, name: str) -> None:
    table = read_table(contacts_xlsx(), sheet=sheet)
    assert table.sheet_name == name
    assert name not in table.other_sheets
    assert len(table.other_sheets) == 2


def test_xlsx_sheet_errors() -> None:
    path = contacts_xlsx()
    assert read_error(path, sheet="Data") == (
        "sheet 'Data' not found in book.xlsx; sheets: Contacts, Notes, Empty"
    )
    assert read_error(path, sheet=4) == (
        "sheet 4 not found in book.xlsx: positions start at 1 and it has 3 sheets "
        "(Contacts, Notes, Empty)"
    )
    assert read_error(path, sheet=0).startswith("sheet 0 not found in book.xlsx")
    assert read_error(path, sheet="Empty") == (
        "sheet 'Empty' of book.xlsx is empty (no header row); "
        "choose another with --sheet NAME (sheets: Contacts, Notes, Empty)"
    )


def test_xlsx_duplicate_header() -> None:
    path = make_xlsx("dup.xlsx", {"S": [["phone", "x", "phone"], [1, 2, 3]]})
    assert (
        read_error(path)
        == "sheet 'S' of dup.xlsx has two columns named 'phone'; rename one of them"
    )


def test_xlsx_header_only() -> None:
    table = read_table(make_xlsx("h.xlsx", {"S": [["phone", "name"]]}))
    assert table.df.columns == ["phone", "name"]
    assert table.df.height == 0


def test_not_an_xlsx() -> None:
    message = read_error(write_bytes("fake.xlsx", b"phone\n123\n"))
    assert message.startswith("fake.xlsx is not a readable XLSX workbook: ")


# ---------------------------------------------------------------------------- writing


def enriched(
    df: pl.DataFrame, about: list[str | None], sites: list[list[str] | None]
) -> pl.DataFrame:
    return df.with_columns(
        pl.Series("bp_status", ["ok"] * df.height),
        pl.Series("bp_about", about, dtype=pl.String),
        pl.Series("bp_email", [None] * df.height, dtype=pl.String),
        pl.Series("bp_websites", sites, dtype=pl.List(pl.String)),
    )


DANGER = [p + "cmd|' /C calc'!A0" for p in DANGEROUS_PREFIXES]


def test_neutralize() -> None:
    assert [neutralize(t) for t in DANGER] == ["'" + t for t in DANGER]
    assert neutralize("Bakery") == "Bakery"
    assert neutralize("") == ""
    assert neutralize(" =1") == " =1"


def dangerous_frame() -> pl.DataFrame:
    n = len(DANGER)
    base = pl.DataFrame(
        {"phone": ["+86 138 0013 8000", "-1", *["=1+1"] * (n - 2)], "amount": ["007"] * n}
    )
    return enriched(base, DANGER, [["=evil.example", "https://ok.example"], *[[]] * (n - 2), None])


def test_csv_output_neutralises_api_text_only() -> None:
    df = dangerous_frame()
    write_table(df, Path("out.csv"), fmt="csv", api_text_columns=API)
    back = read_table(Path("out.csv")).df
    assert back["phone"].to_list() == df["phone"].to_list()  # input columns untouched
    assert back["amount"].to_list() == ["007"] * df.height
    assert back["bp_about"].to_list() == ["'" + t for t in DANGER]
    assert back["bp_websites"].to_list() == [
        "'=evil.example https://ok.example",
        *[None] * (df.height - 2),
        None,
    ]
    assert back["bp_email"].to_list() == [None] * df.height


def test_parquet_output_is_not_neutralised() -> None:
    df = dangerous_frame()
    write_table(df, Path("out.parquet"), fmt="parquet", api_text_columns=API)
    assert_frame_equal(pl.read_parquet("out.parquet"), df)


def test_xlsx_output_has_no_formula_anywhere() -> None:
    table = read_table(contacts_xlsx())
    df = enriched(table.df, DANGER[:3], [["=x.example", "b.example"], [], None])
    write_table(
        df,
        Path("out.xlsx"),
        fmt="xlsx",
        api_text_columns=API,
        sheet_name=table.sheet_name,
        other_sheets=table.other_sheets,
    )
    cells = sheet_cells(Path("out.xlsx"))
    assert list(cells) == ["Contacts", "Notes", "Empty"]
    assert all(kind != "f" for rows in cells.values() for row in rows for _, kind in row)
    data = cells["Contacts"]
    assert [value for value, _ in data[0]] == [
        "phone",
        "name",
        "amount",
        "joined",
        "bp_status",
        "bp_about",
        "bp_email",
        "bp_websites",
    ]
    # input cells: unchanged values, text stays text, numbers stay numbers
    assert data[1][:4] == [
        ("8613800138000", "s"),
        ("=1+1", "s"),
        (7, "n"),
        (dt.datetime(2024, 1, 2), "d"),
    ]
    assert data[3][1] == ("@bob", "s")
    # API text: text cells, neutralised
    assert [row[5] for row in data[1:]] == [("'" + t, "s") for t in DANGER[:3]]
    assert [row[7][0] for row in data[1:]] == ["'=x.example b.example", None, None]
    assert cells["Notes"] == [[("note", "s")], [("=SUM(A1:A2)", "s")], [("hello", "s")]]
    # and it reads back the same
    back = read_table(Path("out.xlsx"))
    assert_frame_equal(back.df.select(table.df.columns), table.df)
    assert_frame_equal(back.other_sheets["Notes"], table.other_sheets["Notes"])


def test_xlsx_looks_like_a_report() -> None:
    df = enriched(pl.DataFrame({"phone": ["+86 138 0013 8000"]}), ["A bakery"], [None])
    write_table(df, Path("r.xlsx"), fmt="xlsx", api_text_columns=API)
    ws = openpyxl.load_workbook("r.xlsx").active
    assert ws is not None
    assert ws.title == "Sheet1"
    assert ws.freeze_panes == "A2"
    assert ws["A1"].font.b
    assert ws["A1"].fill.fgColor.rgb != ws["B1"].fill.fgColor.rgb  # bp_* headers stand out
    assert ws["B1"].fill.fgColor.rgb == ws["C1"].fill.fgColor.rgb
    assert 8 <= ws.column_dimensions["A"].width <= 61


def test_csv_output_with_the_input_separator() -> None:
    df = pl.DataFrame({"a": ["1;2", "x"], "b": ["y", None]})
    write_table(df, Path("s.csv"), fmt="csv", api_text_columns=(), separator=";")
    assert Path("s.csv").read_text() == 'a;b\n"1;2";y\nx;\n'
    table = read_table(Path("s.csv"))
    assert table.separator == ";"
    assert_frame_equal(table.df, df)


@pytest.mark.parametrize("fmt", ["csv", "parquet", "xlsx"])
def test_header_only_round_trip(fmt: str) -> None:
    df = enriched(pl.DataFrame({"phone": pl.Series([], dtype=pl.String)}), [], [])
    path = Path(f"empty.{fmt}")
    write_table(df, path, fmt=fmt, api_text_columns=API)  # type: ignore[arg-type]
    back = read_table(path).df
    assert back.columns == df.columns
    assert back.height == 0


def test_parquet_input_written_as_csv_and_xlsx() -> None:
    df = typed_frame()
    write_table(df, Path("t.csv"), fmt="csv", api_text_columns=(), list_columns=["tags"])
    assert read_table(Path("t.csv")).df["tags"].to_list() == ["a b", None, None]
    write_table(df, Path("t2.csv"), fmt="csv", api_text_columns=(), list_columns=())
    assert read_table(Path("t2.csv")).df["tags"].to_list() == ['["a","b"]', "[]", None]
    write_table(df, Path("t.xlsx"), fmt="xlsx", api_text_columns=(), list_columns=())
    row = sheet_cells(Path("t.xlsx"))["Sheet1"][1]
    assert row == [
        ("+86 138 0013 8000", "s"),
        (1, "n"),
        (1.5, "n"),
        (dt.datetime(2024, 1, 2), "d"),
        (dt.datetime(2024, 1, 2, 3, 4, 5), "d"),
        (True, "b"),
        ('["a","b"]', "s"),
    ]


# ---------------------------------------------------------------------------- atomic


def test_failed_write_leaves_the_older_file_intact() -> None:
    Path("out.xlsx").write_bytes(b"older")
    df = pl.DataFrame({"phone": ["1"]})
    with pytest.raises(OutputError) as err:
        write_table(df, Path("out.xlsx"), fmt="xlsx", api_text_columns=(), sheet_name="bad[name]")
    assert str(err.value).startswith("cannot write out.xlsx: ")
    assert "\n" not in str(err.value)
    assert Path("out.xlsx").read_bytes() == b"older"
    assert sorted(os.listdir(".")) == ["out.xlsx"]


def test_atomic_path_publishes_on_success_only() -> None:
    target = Path("report.csv")
    target.write_text("older\n")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert target.read_text() == "older\n"
    with pytest.raises(OutputError) as err, atomic_path(target) as tmp:
        tmp.write_text("half")
        raise PermissionError(13, "Permission denied")
    assert str(err.value) == "cannot write report.csv: Permission denied"
    assert target.read_text() == "older\n"
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent
        tmp.write_text("new\n")
        assert target.read_text() == "older\n"
    assert target.read_text() == "new\n"
    assert os.listdir(".") == ["report.csv"]


def test_output_folder_problems() -> None:
    df = pl.DataFrame({"a": ["1"]})
    Path("file").write_text("x")
    with pytest.raises(OutputError) as err:
        write_table(df, Path("file/out.csv"), fmt="csv", api_text_columns=())
    assert str(err.value) == "cannot write file/out.csv: file is not a folder"
    with pytest.raises(OutputError) as err:
        write_table(df, Path("missing/out.csv"), fmt="csv", api_text_columns=())
    assert str(err.value) == "cannot write missing/out.csv: folder missing does not exist"
    Path("adir.csv").mkdir()
    with pytest.raises(OutputError) as err:
        write_table(df, Path("adir.csv"), fmt="csv", api_text_columns=())
    assert str(err.value) == "cannot write adir.csv: it is a directory"


def test_output_gets_ordinary_permissions() -> None:
    write_table(pl.DataFrame({"a": ["1"]}), Path("p.csv"), fmt="csv", api_text_columns=())
    umask = os.umask(0)
    os.umask(umask)
    assert Path("p.csv").stat().st_mode & 0o777 == 0o666 & ~umask


# ---------------------------------------------------------------------- properties

cell = st.none() | st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))


@settings(max_examples=150, deadline=None)
@given(
    shape=st.integers(min_value=1, max_value=3).flatmap(
        lambda width: st.lists(st.lists(cell, min_size=width, max_size=width), max_size=8).map(
            lambda rows: (width, rows)
        )
    ),
    separator=st.sampled_from([",", ";", "\t", "|"]),
    as_api=st.booleans(),
    sniff=st.booleans(),
)
def test_csv_round_trip_preserves_every_text_cell(
    shape: tuple[int, list[list[str | None]]], separator: str, as_api: bool, sniff: bool
) -> None:
    width, rows = shape
    if width > 1:
        # A record with no value at all is no data row: read_table skips it (issue 16).
        rows = [row for row in rows if any(row)]
    names = ["phone", "name", "note"][:width]
    df = pl.DataFrame(rows, schema=dict.fromkeys(names, pl.String), orient="row")
    path = Path("round.csv")
    write_table(df, path, fmt="csv", api_text_columns=(), separator=separator)
    back = read_table(path, separator=None if sniff else separator).df

    def empty_is_null(frame: pl.DataFrame) -> list[tuple[str | None, ...]]:
        return [tuple(v or None for v in row) for row in frame.rows()]

    assert back.columns == names
    assert empty_is_null(back) == empty_is_null(df)
    if as_api:
        # API text written to CSV reads back as the neutralised text.
        write_table(df, path, fmt="csv", api_text_columns=names, separator=separator)
        again = read_table(path, separator=separator).df
        assert empty_is_null(again) == [
            tuple(neutralize(v) if v else None for v in row) for row in df.rows()
        ]


# ------------------------------------------------------------------- the package layout

FRAMES_DIR = Path(__file__).resolve().parent.parent / "enrich" / "frames"


def test_facade_exposes_the_public_names() -> None:
    import enrich.frames as frames

    used = {"read_table", "write_table", "Table", "Format", "format_for", "parse_separator",
            "cell_texts", "neutralize", "atomic_path", "remove_stale_temps", "staged_outputs",
            "CSV_SEPARATORS", "DANGEROUS_PREFIXES"}
    assert used <= set(frames.__all__)
    for name in frames.__all__:
        assert getattr(frames, name) is not None, name


def test_frames_modules_are_small_and_never_import_the_facade() -> None:
    modules = sorted(FRAMES_DIR.glob("*.py"))
    assert len(modules) > 5
    for module in modules:
        text = module.read_text("utf-8")
        assert text.count("\n") <= 450, module.name
        if module.name != "__init__.py":
            assert "from enrich import frames" not in text, module.name
            assert "from enrich.frames import" not in text, module.name


def test_staged_outputs_renames_all_or_none() -> None:
    from enrich.frames import staged_outputs

    targets = [Path("a.csv"), Path("b.json")]
    targets[0].write_text("old a")
    with staged_outputs(targets) as staged:
        for tmp, text in zip(staged, ["new a", "new b"], strict=True):
            tmp.write_text(text)
    assert [t.read_text() for t in targets] == ["new a", "new b"]
    with pytest.raises(RuntimeError), staged_outputs(targets) as staged:
        staged[0].write_text("half")
        raise RuntimeError
    assert [t.read_text() for t in targets] == ["new a", "new b"]
    assert sorted(p.name for p in Path().iterdir()) == ["a.csv", "b.json"]
