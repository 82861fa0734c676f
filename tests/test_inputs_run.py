"""``enrich run`` and ``enrich check`` on inputs as data teams have them (issue 16).

Against the emulator as a real server. The files in ``tests/data/inputs`` were made
by their tools (``make_inputs.py``): pandas, Excel's two CSV flavours, a title-row
sheet saved as CSV, a Google Contacts export, an Excel user's workbook.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner, Result

from enrich.cli import cli
from enrich.emulator import EmulatorServer
from enrich.job import RunConfig
from enrich.prepare import prepare
from enrich.report import BP_COLUMNS, ERROR_COLUMNS

DATA = Path(__file__).parent / "data" / "inputs"
CREDS = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "testAKID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "testSecret"}


def invoke(*args: str, input: bytes | None = None) -> Result:
    return CliRunner(env=CREDS).invoke(cli, list(args), input=input, catch_exceptions=False)


def run(server: EmulatorServer, *args: str, input: bytes | None = None) -> Result:
    return invoke("run", *args, "--endpoint", server.url, "--cust-space-id", "S1",
                  "--no-cache", "--quota", "off", "--no-progress", input=input)


def copy(name: str) -> Path:
    shutil.copyfile(DATA / name, name)
    return Path(name)


def rows(path: Path, encoding: str = "utf-8", delimiter: str = ",") -> list[dict[str, str]]:
    with path.open(newline="", encoding=encoding) as f:
        return list(csv.DictReader(f, delimiter=delimiter))


def one_line_error(res: Result, code: int = 1) -> str:
    assert res.exit_code == code, res.stderr
    assert res.stdout == ""
    lines = res.stderr.splitlines()
    assert len(lines) == 1, res.stderr
    assert "Traceback" not in res.stderr
    return lines[0].removeprefix("enrich: error: ")


@pytest.fixture
def calls(server: EmulatorServer) -> list[int]:
    """The requests the shared emulator has had before the test (check with ``no_call``)."""
    return [server.stats.requests_total]


def no_call(server: EmulatorServer, calls: list[int]) -> None:
    assert server.stats.requests_total == calls[0]


# ------------------------------------------------------------------ pandas' float leftovers


def test_pandas_export_sends_the_numbers_its_cells_say(server: EmulatorServer) -> None:
    src = copy("pandas_blanks.csv")
    res = run(server, str(src))
    assert res.exit_code == 0, res.stderr
    out = rows(Path("pandas_blanks.enriched.csv"))
    assert [r["phone"] for r in out] == ["8613800138000.0", "", "447946095800.0",
                                         "14155550100.0", "8613800138001.0"]  # unchanged
    assert [r["bp_phone"] for r in out] == ["8613800138000", "", "447946095800",
                                            "14155550100", "8613800138001"]
    assert [r["bp_status"] for r in out].count("invalid_phone") == 1
    sent = {number for _, number in server.stats.successes}
    assert {"8613800138000", "447946095800", "14155550100", "8613800138001"} <= sent
    assert "86138001380000" not in sent


# ------------------------------------------------------------------ encodings, BOM, CRLF


def test_excel_ansi_csv_without_encoding_is_one_line(server: EmulatorServer, calls: list[int]
                                                     ) -> None:
    src = copy("excel_ansi.csv")
    message = one_line_error(run(server, str(src)))
    assert message == (
        "excel_ansi.csv is not valid UTF-8 (line 2, byte 21); save it as UTF-8 CSV, or name "
        'its encoding: --encoding cp1252 for Excel\'s "CSV (Comma delimited)"'
    )
    assert sorted(p.name for p in Path().iterdir()) == ["excel_ansi.csv"]
    no_call(server, calls)


def test_excel_ansi_csv_with_its_encoding(server: EmulatorServer) -> None:
    src = copy("excel_ansi.csv")
    res = run(server, str(src), "--encoding", "cp1252")
    assert res.exit_code == 0, res.stderr
    out = Path("excel_ansi.enriched.csv").read_bytes().decode("utf-8-sig")
    assert out.splitlines()[1].startswith("José Álvarez,+44 7700 900001,Málaga,")
    errors = rows(Path("excel_ansi.errors.csv"))
    assert [(r["row"], r["phone"], r["source_row"]) for r in errors] == [("3", "12", "4")]


def test_excel_utf8_csv_keeps_its_bom_and_crlf(server: EmulatorServer) -> None:
    src = copy("excel_utf8.csv")
    res = run(server, str(src))
    assert res.exit_code == 0, res.stderr
    data = Path("excel_utf8.enriched.csv").read_bytes()
    assert data.startswith(b"\xef\xbb\xbfName,Phone,City,bp_status,")
    assert data.count(b"\r\n") == 4 and data.count(b"\n") == 4


# ------------------------------------------------------------------ titles, blanks, padding


def test_title_rows_with_header_row(server: EmulatorServer, calls: list[int]) -> None:
    src = copy("title_rows.csv")
    message = one_line_error(run(server, str(src)))
    assert message.startswith("no phone column found in title_rows.csv; ")
    assert message.endswith("is row 1 a title? give the header's row with --header-row N")
    no_call(server, calls)
    res = run(server, str(src), "--header-row", "3")
    assert res.exit_code == 0, res.stderr
    out = rows(Path("title_rows.enriched.csv"))
    assert list(out[0]) == ["Name", "Phone", *BP_COLUMNS]  # the padding is gone
    assert [r["Name"] for r in out] == ["Ada", "Bob", "Cy"]  # the ",,," row is no row
    errors = rows(Path("title_rows.errors.csv"))
    assert list(errors[0]) == list(ERROR_COLUMNS)
    assert ERROR_COLUMNS[-1] == "source_row"
    assert [(r["row"], r["phone"], r["error_code"], r["source_row"]) for r in errors] == [
        ("2", "abc", "Client.InvalidPhone", "6")]
    summary = json.loads(Path("title_rows.summary.json").read_text())
    assert summary["rows"] == 3 and summary["invalid"] == 1


def test_quoted_newlines_give_the_line_a_row_starts_on(server: EmulatorServer) -> None:
    src = copy("quoted_newlines.csv")
    res = run(server, str(src))
    assert res.exit_code == 0, res.stderr
    errors = rows(Path("quoted_newlines.errors.csv"))
    assert [(r["row"], r["source_row"]) for r in errors] == [("2", "3"), ("3", "6"), ("4", "7")]


# ------------------------------------------------------------------ formats by name, stdin


def test_tsv_gzip_and_zstd_inputs_and_outputs(server: EmulatorServer) -> None:
    import gzip

    Path("leads.tsv.gz").write_bytes(gzip.compress(b"name\tphone\nAda\t+8613800138000\n"))
    res = run(server, "leads.tsv.gz", "-o", "leads.enriched.tsv.gz")
    assert res.exit_code == 0, res.stderr
    out = gzip.decompress(Path("leads.enriched.tsv.gz").read_bytes()).decode()
    assert out.startswith("name\tphone\tbp_status\tbp_phone\t")
    assert out.splitlines()[1].startswith("Ada\t+8613800138000\tok\t8613800138000\t")
    assert Path("leads.errors.csv").read_text().startswith("row,phone,")
    res = run(server, "leads.tsv.gz", "-o", "again.csv")
    assert res.exit_code == 0, res.stderr
    assert Path("again.csv").read_text().startswith("name\tphone\tbp_status")  # its separator
    zstandard = pytest.importorskip("zstandard")
    res = run(server, "leads.tsv.gz", "-o", "z.tsv.zst")
    assert res.exit_code == 0, res.stderr
    with Path("z.tsv.zst").open("rb") as f:
        data = zstandard.ZstdDecompressor().stream_reader(f).read().decode()
    assert data.splitlines()[0] == out.splitlines()[0]
    assert data.splitlines()[1].startswith("Ada\t+8613800138000\tok\t8613800138000\t")


def test_default_names_keep_the_whole_extension(server: EmulatorServer) -> None:
    import gzip

    Path("leads.csv.gz").write_bytes(gzip.compress(b"name,phone\nAda,+8613800138000\n"))
    res = run(server, "leads.csv.gz")
    assert res.exit_code == 0, res.stderr
    assert sorted(p.name for p in Path().iterdir()) == [
        "leads.csv.gz", "leads.enriched.csv.gz", "leads.errors.csv", "leads.summary.json"]


def test_standard_input(server: EmulatorServer) -> None:
    data = (DATA / "excel_utf8.csv").read_bytes()
    res = run(server, "-", "-o", "out.csv", input=data)
    assert res.exit_code == 0, res.stderr
    assert [r["bp_phone"] for r in rows(Path("out.csv"), "utf-8-sig")] == [
        "447700900001", "447700900002", ""]
    res = run(server, "-", "--input-format", "tsv", "-o", "t.csv",
              input=b"name\tphone\nAda\t+8613800138000\n")
    assert res.exit_code == 0, res.stderr
    assert rows(Path("t.csv"), delimiter="\t")[0]["bp_phone"] == "8613800138000"  # its tabs


def test_empty_standard_input_is_one_line(server: EmulatorServer, calls: list[int]) -> None:
    assert one_line_error(run(server, "-", "-o", "out.csv", input=b"")) == (
        "standard input is empty (0 bytes)")
    assert not list(Path().iterdir())
    no_call(server, calls)


def test_enriched_csv_to_standard_output(server: EmulatorServer) -> None:
    data = (DATA / "excel_utf8.csv").read_bytes()
    res = run(server, "-", "-o", "-", input=data)
    assert res.exit_code == 0, res.stderr
    assert res.stdout.splitlines()[0].endswith(",".join(BP_COLUMNS))
    assert sorted(p.name for p in Path().iterdir()) == ["stdin.errors.csv", "stdin.summary.json"]


# ------------------------------------------------------------------ Google Contacts


def test_google_contacts_export(server: EmulatorServer) -> None:
    src = copy("google_contacts.csv")
    res = run(server, str(src))
    assert res.exit_code == 0, res.stderr
    out = rows(Path("google_contacts.enriched.csv"))
    assert list(out[0])[-len(BP_COLUMNS):] == list(BP_COLUMNS)
    assert [r["bp_phone"] for r in out] == ["447700900001", "8613800138000", "14155550100", ""]
    assert out[0]["Phone 1 - Value"] == "+44 7700 900001 ::: +44 7700 900002"  # unchanged
    prep = prepare(RunConfig(input=src, cust_space_id="S1"))
    assert prep.phone_column == "Phone 1 - Value"
    assert prep.multi_number_cells == 2


def test_the_summary_counts_cells_with_several_numbers(server: EmulatorServer) -> None:
    src = copy("google_contacts.csv")
    assert run(server, str(src)).exit_code == 0
    assert json.loads(Path("google_contacts.summary.json").read_text())["multi_number_cells"] == 2


def test_several_phone_columns(server: EmulatorServer) -> None:
    src = copy("google_contacts.csv")
    res = run(server, str(src), "--phone-column", "Phone 2 - Value",
              "--phone-column", "Phone 1 - Value")
    assert res.exit_code == 0, res.stderr
    out = rows(Path("google_contacts.enriched.csv"))
    assert list(out[0])[-len(BP_COLUMNS) - 1:] == [*BP_COLUMNS, "bp_phone_column"]
    assert [(r["bp_phone"], r["bp_phone_column"]) for r in out] == [
        ("442079460958", "Phone 2 - Value"),
        ("8613800138000", "Phone 1 - Value"),
        ("14155550100", "Phone 1 - Value"),
        ("14155550101", "Phone 2 - Value"),
    ]
    # one column given: no 14th column
    assert run(server, str(src), "--phone-column", "Phone 1 - Value").exit_code == 0
    assert "bp_phone_column" not in rows(Path("google_contacts.enriched.csv"))[0]


def test_several_phone_columns_in_a_job_file(server: EmulatorServer) -> None:
    copy("google_contacts.csv")
    Path("j.toml").write_text(
        'input = "google_contacts.csv"\n'
        'phone_column = ["Phone 2 - Value", "Phone 1 - Value"]\n'
        'output = "j.csv"\n'
    )
    res = run(server, "--job", "j.toml")
    assert res.exit_code == 0, res.stderr
    assert rows(Path("j.csv"))[0]["bp_phone_column"] == "Phone 2 - Value"


def test_a_missing_second_phone_column_is_one_line(server: EmulatorServer, calls: list[int]
                                                   ) -> None:
    src = copy("google_contacts.csv")
    message = one_line_error(run(server, str(src), "--phone-column", "Phone 1 - Value",
                                 "--phone-column", "phone 2 - value"))
    assert message.startswith(
        "column 'phone 2 - value' not found in google_contacts.csv "
        "(did you mean 'Phone 2 - Value'?); columns: First Name, ")
    no_call(server, calls)


# ------------------------------------------------------------------ an Excel user's workbook


def test_a_cover_page_first_names_the_other_sheets(server: EmulatorServer, calls: list[int]
                                                   ) -> None:
    src = copy("excel_user.xlsx")
    message = one_line_error(run(server, str(src)))
    assert message == (
        "no phone column found in excel_user.xlsx; name it with --phone-column NAME "
        "(columns: Q1 leads); other sheets: Leads, Notes (choose one with --sheet NAME)"
    )
    assert sorted(p.name for p in Path().iterdir()) == ["excel_user.xlsx"]
    no_call(server, calls)


def test_the_data_sheet_under_a_title_row(server: EmulatorServer) -> None:
    src = copy("excel_user.xlsx")
    res = run(server, str(src), "--sheet", "Leads", "--header-row", "3", "-o", "out.csv")
    assert res.exit_code == 0, res.stderr
    out = rows(Path("out.csv"))
    assert [(r["Name"], r["Phone"], r["bp_phone"]) for r in out] == [
        ("Ada", "8613800138000", "8613800138000"),
        ("Bob", "+44 7700 900002", "447700900002"),
        ("Cy", "447946095800", "447946095800"),
        ("Di", "abc", ""),
    ]
    errors = rows(Path("out.errors.csv"))
    assert [(r["row"], r["source_row"]) for r in errors] == [("4", "8")]  # as Excel shows it


# ------------------------------------------------------------------ enrich check takes them all


def test_check_takes_every_new_input_option() -> None:
    copy("title_rows.csv")
    res = invoke("check", "title_rows.csv", "--header-row", "3", "--encoding", "utf-8",
                 "--input-format", "csv", "--separator", ",", "--phone-column", "Phone",
                 "--phone-column", "Name", "--json")
    assert res.exit_code == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["phone_column"] == "Phone, Name"
    assert (report["rows"], report["valid"]) == (3, 2)
    data = (DATA / "excel_ansi.csv").read_bytes()
    res = invoke("check", "-", "--encoding", "cp1252", "--json", input=data)
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["valid"] == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--header-row", "0"], "--header-row must be at least 1 (the first line or row), not 0"),
        (["--encoding", "klingon"], "unknown encoding 'klingon' for --encoding; use utf-8, "
         'cp1252 (Excel\'s "CSV (Comma delimited)"), latin-1, …'),
        (["--separator", "ab"], "--separator must be one character, not 'ab'"),
    ],
)
def test_bad_values_are_usage_errors(args: list[str], message: str) -> None:
    copy("title_rows.csv")
    for command in ("run", "check"):
        res = invoke(command, "title_rows.csv", *args, "--mock")
        assert one_line_error(res, code=2) == message
    assert sorted(p.name for p in Path().iterdir()) == ["title_rows.csv"]


def test_tab_spellings_of_the_separator(server: EmulatorServer) -> None:
    pl.DataFrame({"phone": ["+8613800138000"], "n": ["1"]}).write_csv("t.csv", separator="\t")
    for spelling in ("tab", "\\t", "\t"):
        res = invoke("check", "t.csv", "--separator", spelling, "--json")
        assert res.exit_code == 0, res.stderr
        assert json.loads(res.stdout)["valid"] == 1
