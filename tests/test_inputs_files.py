"""Files as data teams have them (issue 16), read and written by enrich.frames.

Excel's two CSV flavours, title rows, padded blank rows, quoted newlines, .tsv,
gzip and zstd, standard input, and the way a CSV output keeps the input's BOM and
line ends. Where the user finds a row (``Table.source_rows``): the file line for
CSV, the sheet row for XLSX.
"""

from __future__ import annotations

import gzip
import io
import shutil
from pathlib import Path
from typing import Any

import openpyxl
import polars as pl
import pytest

from enrich.errors import InputError, OutputError, UsageError
from enrich.frames import (
    file_type,
    format_for,
    is_stdio,
    read_table,
    split_name,
    staged_outputs,
    write_table,
)

DATA = Path(__file__).parent / "data" / "inputs"
EXCEL_ROWS = [
    ("José Álvarez", "+44 7700 900001", "Málaga"),
    ("Zoë Brontë", "+44 7700 900002", "Köln"),
    ("Ånne Ødegård", "12", "Tromsø"),
]


def read_error(path: Path, **kwargs: Any) -> str:
    with pytest.raises(InputError) as err:
        read_table(path, **kwargs)
    message = str(err.value)
    assert "\n" not in message
    return message


def copy(name: str, to: str | None = None) -> Path:
    target = Path(to or name)
    shutil.copyfile(DATA / name, target)
    return target


# ------------------------------------------------------------------- names and formats


@pytest.mark.parametrize(
    ("name", "fmt", "ext", "sep", "compression"),
    [
        ("a.csv", "csv", ".csv", None, None),
        ("a.TSV", "csv", ".tsv", "\t", None),
        ("a.csv.gz", "csv", ".csv.gz", None, "gzip"),
        ("a.tsv.gz", "csv", ".tsv.gz", "\t", "gzip"),
        ("a.CSV.ZST", "csv", ".csv.zst", None, "zstd"),
        ("a.tsv.zst", "csv", ".tsv.zst", "\t", "zstd"),
        ("a.parquet", "parquet", ".parquet", None, None),
        ("a.xlsx", "xlsx", ".xlsx", None, None),
        ("-", "csv", ".csv", None, None),
    ],
)
def test_formats_by_name(name: str, fmt: str, ext: str, sep: str | None, compression: str | None
                         ) -> None:
    for role in ("input", "output"):
        kind = file_type(Path(name), role=role)  # type: ignore[arg-type]
        assert (kind.fmt, kind.extension, kind.separator, kind.compression) == (
            fmt, ext, sep, compression)


def test_input_format_overrides_the_name() -> None:
    assert format_for(Path("leads.txt"), role="input", given="csv") == "csv"
    assert file_type(Path("-"), role="input", given="tsv").separator == "\t"
    assert format_for(Path("-"), role="input", given="parquet") == "parquet"
    assert is_stdio(Path("-")) and not is_stdio(Path("./-x"))


def test_unknown_extensions_keep_their_messages() -> None:
    with pytest.raises(InputError, match=r"unknown input format '\.gz' for a\.gz"):
        format_for(Path("a.gz"), role="input")
    with pytest.raises(UsageError, match=r"unknown output format '\.zst' for out\.zst"):
        format_for(Path("out.zst"), role="output")


def test_split_name() -> None:
    assert split_name(Path("d/leads.csv.gz")) == ("leads", ".csv.gz")
    assert split_name(Path("leads.TSV")) == ("leads", ".TSV")
    assert split_name(Path("x.txt")) == ("x", ".txt")
    assert split_name(Path("x.enriched.xlsx")) == ("x.enriched", ".xlsx")


# ------------------------------------------------------------------- encodings, BOM, CRLF


def test_excel_ansi_csv_needs_its_encoding() -> None:
    path = copy("excel_ansi.csv")
    assert read_error(path) == (
        "excel_ansi.csv is not valid UTF-8 (line 2, byte 21); save it as UTF-8 CSV, or name "
        'its encoding: --encoding cp1252 for Excel\'s "CSV (Comma delimited)"'
    )
    table = read_table(path, encoding="cp1252")
    assert table.df.rows() == EXCEL_ROWS
    assert (table.encoding, table.line_terminator) == ("cp1252", "\r\n")
    assert table.bom  # written back as UTF-8 with a BOM, which Excel reads right
    assert read_table(path, encoding="latin-1").df["Name"][0] == "José Álvarez"


def test_excel_utf8_csv_keeps_its_bom_and_crlf() -> None:
    table = read_table(copy("excel_utf8.csv"))
    assert table.df.columns == ["Name", "Phone", "City"]
    assert table.df.rows() == EXCEL_ROWS
    assert (table.bom, table.line_terminator, table.encoding) == (True, "\r\n", "utf-8")
    # a UTF-8 BOM wins over a wrong --encoding
    assert read_table(Path("excel_utf8.csv"), encoding="cp1252").df.rows() == EXCEL_ROWS


def test_plain_files_have_no_bom_and_lf(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_bytes(b"phone\n+8613800138000\n")
    table = read_table(path)
    assert (table.bom, table.line_terminator) == (False, "\n")


def test_a_csv_output_is_written_as_the_input_was() -> None:
    table = read_table(copy("excel_utf8.csv"))
    out = Path("out.csv")
    write_table(table.df, out, fmt="csv", api_text_columns=(), separator=table.separator,
                bom=table.bom, line_terminator=table.line_terminator)
    assert out.read_bytes() == (DATA / "excel_utf8.csv").read_bytes()
    ansi = read_table(copy("excel_ansi.csv"), encoding="cp1252")
    write_table(ansi.df, out, fmt="csv", api_text_columns=(), bom=ansi.bom,
                line_terminator=ansi.line_terminator)
    assert out.read_bytes() == (DATA / "excel_ansi.csv").read_bytes().decode(
        "cp1252").encode("utf-8-sig")


def test_unknown_and_invalid_encodings() -> None:
    path = copy("excel_ansi.csv")
    with pytest.raises(UsageError, match="unknown encoding 'klingon' for --encoding"):
        read_table(path, encoding="klingon")
    Path("bad.csv").write_bytes(b"a,b\n1,\x81\n")
    assert read_error(Path("bad.csv"), encoding="cp1252") == (
        "bad.csv is not valid cp1252 (line 2, byte 7); name the file's encoding with "
        "--encoding NAME (latin-1 reads any byte)"
    )


def test_utf16_reads_with_its_encoding() -> None:
    Path("u.csv").write_bytes("phone,name\n+8613800138000,Zoë\n".encode("utf-16"))
    assert read_error(Path("u.csv")) == "u.csv is UTF-16 text; save it as UTF-8 CSV"
    table = read_table(Path("u.csv"), encoding="utf-16")
    assert table.df.rows() == [("+8613800138000", "Zoë")]
    assert table.bom


# ------------------------------------------------------------------- titles, blanks, lines


def test_title_rows_and_padding_as_excel_saves_them() -> None:
    path = copy("title_rows.csv")
    table = read_table(path, header_row=3)
    assert table.df.columns == ["Name", "Phone"]  # the padding ",," is dropped
    assert table.df.rows() == [("Ada", "+8613800138000"), ("Bob", "abc"),
                               ("Cy", "+44 7700 900003")]
    assert table.source_rows is not None
    assert table.source_rows.to_list() == [4, 6, 7]  # line 5 is ",,,": no data row
    assert table.header_row == 3


def test_a_title_without_header_row_is_caught() -> None:
    Path("t.csv").write_text("Leads export,,\nName,Phone,City\nAda,+8613800138000,X\n")
    assert read_error(Path("t.csv")) == (
        "t.csv: the header (line 1) has 2 columns without a name; name them, or if line 1 "
        "is a title, give the header's line with --header-row N"
    )
    Path("t1.csv").write_text("Leads export\nName,Phone\nAda,+8613800138000\n")
    assert read_error(Path("t1.csv"), separator=",") == (
        "t1.csv: line 2 has 2 fields, header has 1; fix that line (or quote a field that "
        "contains the separator); or, if line 1 is a title, give the header's line with "
        "--header-row 2"
    )
    assert read_table(Path("t1.csv"), header_row=2).df.rows() == [("Ada", "+8613800138000")]


def test_header_row_past_the_end_or_blank() -> None:
    Path("h.csv").write_text("title\n\nphone\n+8613800138000\n")
    assert read_error(Path("h.csv"), header_row=9) == (
        "h.csv has 4 lines; --header-row 9 is past its end"
    )
    assert read_error(Path("h.csv"), header_row=2) == (
        "h.csv: line 2 is blank; --header-row names the line of the header"
    )
    table = read_table(Path("h.csv"), header_row=3)
    assert table.df.rows() == [("+8613800138000",)]
    assert table.source_rows is not None and table.source_rows.to_list() == [4]


def test_blank_records_are_no_rows_but_a_one_column_blank_is_a_value() -> None:
    Path("b.csv").write_text('name,phone,note\nAda,+8613800138000,\n,,\n"","",""\n\nBo,12,x\n')
    table = read_table(Path("b.csv"))
    assert table.df.rows() == [("Ada", "+8613800138000", None), ("Bo", "12", "x")]
    assert table.source_rows is not None and table.source_rows.to_list() == [2, 6]
    Path("one.csv").write_text("phone\n+8613800138000\n\n12\n")
    one = read_table(Path("one.csv"))
    assert one.df["phone"].to_list() == ["+8613800138000", None, "12"]
    assert one.source_rows is not None and one.source_rows.to_list() == [2, 3, 4]


def test_nameless_columns_at_the_right() -> None:
    Path("e.csv").write_text("Name,Phone,,\nAda,+8613800138000,,\nBo,12,,\n")
    assert read_table(Path("e.csv")).df.columns == ["Name", "Phone"]
    # a nameless column that holds values stays, named ''
    Path("k.csv").write_text("Name,Phone,\nAda,+8613800138000,x\n")
    assert read_table(Path("k.csv")).df.columns == ["Name", "Phone", ""]
    # a nameless column in the middle with values at the right of it stays too
    Path("m.csv").write_text("Name,,Phone,\nAda,,+8613800138000,\n")
    assert read_table(Path("m.csv")).df.columns == ["Name", "", "Phone"]
    Path("h.csv").write_text("Name,Phone,,\n")
    assert read_table(Path("h.csv")).df.columns == ["Name", "Phone"]


def test_source_rows_follow_quoted_newlines() -> None:
    table = read_table(copy("quoted_newlines.csv"))
    assert table.df["id"].to_list() == ["1", "2", "3", "4"]
    assert table.df["note"][1] == "first line\nsecond line\nthird line"
    assert table.source_rows is not None
    assert table.source_rows.to_list() == [2, 3, 6, 7]
    # the same file where the record-by-record walk runs (a blank line in it)
    Path("q2.csv").write_bytes((DATA / "quoted_newlines.csv").read_bytes() + b"\r\n5,x,\r\n")
    walked = read_table(Path("q2.csv"))
    assert walked.source_rows is not None
    assert walked.source_rows.to_list() == [2, 3, 6, 7, 10]


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_source_rows_with_any_line_end(newline: str) -> None:
    lines = ["a,b", "1,x", '2,"y', 'z"', "3,w"]
    Path("n.csv").write_bytes(newline.join(lines).encode() + newline.encode())
    table = read_table(Path("n.csv"))
    assert table.df["a"].to_list() == ["1", "2", "3"]
    assert table.source_rows is not None and table.source_rows.to_list() == [2, 3, 5]
    assert table.line_terminator == newline


# ------------------------------------------------------------------- .tsv, gzip, zstd, stdin


def test_tsv_is_tab_separated_whatever_its_content() -> None:
    Path("a.tsv").write_text("phone\tnote\n+8613800138000\ta, b; c\n")
    table = read_table(Path("a.tsv"))
    assert table.separator == "\t"
    assert table.df.rows() == [("+8613800138000", "a, b; c")]
    assert read_table(Path("a.tsv"), separator="tab").separator == "\t"


def test_compressed_csv_by_name_and_by_content() -> None:
    raw = (DATA / "google_contacts.csv").read_bytes()
    plain = read_table(copy("google_contacts.csv")).df
    Path("g.csv.gz").write_bytes(gzip.compress(raw))
    assert read_table(Path("g.csv.gz")).df.equals(plain)
    Path("misnamed.csv").write_bytes(gzip.compress(raw))  # first bytes decide
    assert read_table(Path("misnamed.csv")).df.equals(plain)
    Path("t.tsv.gz").write_bytes(gzip.compress(b"phone\tx\n+8613800138000\t1\n"))
    assert read_table(Path("t.tsv.gz")).df.rows() == [("+8613800138000", "1")]


def test_zstd_csv() -> None:
    zstandard = pytest.importorskip("zstandard")
    raw = (DATA / "excel_utf8.csv").read_bytes()
    Path("e.csv.zst").write_bytes(zstandard.ZstdCompressor().compress(raw))
    table = read_table(Path("e.csv.zst"))
    assert table.df.rows() == EXCEL_ROWS
    assert (table.bom, table.line_terminator) == (True, "\r\n")
    # streamed frames (no content size in the header) read too
    buffer = io.BytesIO()
    with zstandard.ZstdCompressor().stream_writer(buffer, closefd=False) as writer:
        writer.write(raw)
    Path("s.csv.zst").write_bytes(buffer.getvalue())
    assert read_table(Path("s.csv.zst")).df.rows() == EXCEL_ROWS


def test_broken_compressed_files_are_one_line() -> None:
    data = gzip.compress(b"phone\n+8613800138000\n" * 50)
    Path("cut.csv.gz").write_bytes(data[: len(data) // 2])
    assert read_error(Path("cut.csv.gz")) == (
        "cut.csv.gz is not a readable gzip file: it is truncated"
    )
    Path("empty.csv.gz").write_bytes(gzip.compress(b""))
    assert read_error(Path("empty.csv.gz")) == "empty.csv.gz is empty once decompressed (gzip)"


def test_standard_input() -> None:
    data = (DATA / "excel_utf8.csv").read_bytes()
    table = read_table(Path("-"), stdin=io.BytesIO(data))
    assert table.df.rows() == EXCEL_ROWS
    assert table.bom
    gz = read_table(Path("-"), stdin=io.BytesIO(gzip.compress(data)))
    assert gz.df.rows() == EXCEL_ROWS
    tsv = read_table(Path("-"), input_format="tsv", stdin=io.BytesIO(b"a\tb\n1\t2\n"))
    assert tsv.df.rows() == [("1", "2")]
    with pytest.raises(InputError) as err:
        read_table(Path("-"), stdin=io.BytesIO(b""))
    assert str(err.value) == "standard input is empty (0 bytes)"
    with pytest.raises(InputError) as err:
        read_table(Path("-"), stdin=io.BytesIO(b"a,b\n1,\xff\n"))
    assert str(err.value).startswith("<stdin> is not valid UTF-8 (line 2, byte 7)")


def test_standard_input_parquet_and_xlsx() -> None:
    buffer = io.BytesIO()
    pl.DataFrame({"phone": [8613800138000], "n": [1.5]}).write_parquet(buffer)
    table = read_table(Path("-"), input_format="parquet", stdin=io.BytesIO(buffer.getvalue()))
    assert table.fmt == "parquet" and table.df["phone"].to_list() == [8613800138000]
    book = (DATA / "excel_user.xlsx").read_bytes()
    xlsx = read_table(Path("-"), input_format="xlsx", sheet="Leads", header_row=3,
                      stdin=io.BytesIO(book))
    assert xlsx.df.columns == ["Name", "Phone", "Notes"]
    with pytest.raises(InputError, match=r"^<stdin> is not a Parquet file"):
        read_table(Path("-"), input_format="parquet", stdin=io.BytesIO(b"a,b\n"))
    assert not list(Path().glob("enrich-stdin-*"))


# ------------------------------------------------------------------- XLSX


def test_xlsx_title_rows_and_source_rows() -> None:
    path = copy("excel_user.xlsx")
    table = read_table(path, sheet="Leads", header_row=3)
    assert table.df.columns == ["Name", "Phone", "Notes"]
    assert table.df["Name"].to_list() == ["Ada", "Bob", "Cy", "Di"]
    assert table.header_row == 3
    assert table.source_rows is not None
    assert table.source_rows.to_list() == [4, 5, 7, 8]  # row 6 is blank
    # without --header-row the title is the header
    assert read_table(path, sheet="Leads").df.columns[0] == "Leads, March (do not forward)"
    assert read_table(path, sheet="Leads").header_row == 1


def test_xlsx_default_header_is_the_first_row_with_a_value(tmp_path: Path) -> None:
    path = tmp_path / "low.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws["B3"], ws["C3"] = "name", "phone"
    ws["B4"], ws["C4"] = "Ada", 8613800138000
    ws["C6"] = "+44 7700 900002"
    wb.save(path)
    table = read_table(path)
    assert table.df.columns == ["name", "phone"]
    assert table.header_row == 3
    assert table.source_rows is not None and table.source_rows.to_list() == [4, 6]
    assert read_table(path, header_row=3).df.equals(table.df)


def test_xlsx_header_row_errors() -> None:
    path = copy("excel_user.xlsx")
    assert read_error(path, sheet="Leads", header_row=2) == (
        "row 2 of sheet 'Leads' of excel_user.xlsx is empty; "
        "--header-row names the row of the header"
    )
    assert read_error(path, sheet="Leads", header_row=30) == (
        "sheet 'Leads' of excel_user.xlsx has 8 rows; --header-row 30 is past its end"
    )


def test_xlsx_mixed_numeric_cells_under_a_title(tmp_path: Path) -> None:
    table = read_table(copy("excel_user.xlsx"), sheet="Leads", header_row=3)
    assert table.df["Phone"].to_list() == ["8613800138000", "+44 7700 900002", "447946095800",
                                           "abc"]
    numeric = table.numeric_cells["Leads"]["Phone"].to_list()
    assert numeric == [8613800138000.0, None, 447946095800.0, None]


# ------------------------------------------------------------------- CSV outputs


@pytest.mark.parametrize("name", ["o.tsv", "o.csv.gz", "o.tsv.gz", "o.csv.zst"])
def test_outputs_by_name(name: str) -> None:
    df = pl.DataFrame({"phone": ["+8613800138000", None], "note": ["a,b", "é"]})
    staged = Path(".staged.tmp")
    write_table(df, staged, fmt="csv", api_text_columns=(), separator=";", shown_as=Path(name),
                bom=True, line_terminator="\r\n")
    data = staged.read_bytes()
    if name.endswith(".gz"):
        data = gzip.decompress(data)
    elif name.endswith(".zst"):
        zstandard = pytest.importorskip("zstandard")
        data = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read()
    sep = "\t" if ".tsv" in name else ";"
    assert data == f"\ufeffphone{sep}note\r\n+8613800138000{sep}a,b\r\n{sep}é\r\n".encode()


def test_standard_output_is_staged_then_copied() -> None:
    out = io.BytesIO()
    targets = [Path("-"), Path("stdin.errors.csv")]
    with staged_outputs(targets, stdout=out) as (out_tmp, err_tmp):
        write_table(pl.DataFrame({"a": ["1"]}), out_tmp, fmt="csv", api_text_columns=(),
                    shown_as=Path("-"))
        err_tmp.write_text("row\n")
        assert out.getvalue() == b""  # nothing before the commit
    assert out.getvalue() == b"a\n1\n"
    assert sorted(p.name for p in Path().iterdir()) == ["stdin.errors.csv"]
    # a failed run prints nothing
    with pytest.raises(RuntimeError), staged_outputs(targets, stdout=out) as (out_tmp, _):
        out_tmp.write_text("half")
        raise RuntimeError
    assert out.getvalue() == b"a\n1\n"
    assert sorted(p.name for p in Path().iterdir()) == ["stdin.errors.csv"]


def test_a_closed_standard_output_is_one_line() -> None:
    out = io.BytesIO()
    out.close()
    with pytest.raises(OutputError) as err, staged_outputs([Path("-")], stdout=out) as (tmp,):
        tmp.write_text("x")
    assert str(err.value).startswith("cannot write the output to standard output: ")
    assert not list(Path().iterdir())
