"""Bad inputs and bad arguments: one clear line, the documented exit code, no call, nothing written.

Every case runs ``enrich run`` (click's CliRunner) in an empty folder holding only
the case's files, against a live emulator, and checks:

- the exit code: 1 for a bad file, column, sheet, job file or missing credentials;
  2 for a usage error (SPEC "Bad input");
- stderr is exactly ONE line, ``enrich: error: <message>``, pinned here. Only click's
  own parse errors (a value click cannot convert, an unknown option) use click's
  standard usage block: ``Usage: …``, ``Try '… --help' for help.``, a blank line and
  ``Error: <message>``; its ``Error:`` line is pinned;
- no traceback, nothing on stdout;
- no request reached the emulator;
- the folder is unchanged: no output, error report, summary, ledger, lock or temp file.

Static files live in ``tests/data/bad/``; what a static file cannot express
(Parquet and XLSX files, a FIFO, a directory, an unreadable file) is built here.

Decision (SPEC is silent): a phone column whose cells are all empty is NOT an
error. Every row is reported ``invalid_phone`` / ``Client.MissingPhone`` in the
error report, a warning says so, no call is made and the exit code is 0 (a
nightly export can have a bad day; ``--max-error-rate`` turns it into exit 4).
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pytest
import xlsxwriter
from click.testing import CliRunner, Result

from enrich.cli import cli
from enrich.emulator import EmulatorServer

DATA = Path(__file__).parent / "data" / "bad"
CREDS = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "testAKID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "testSecret"}


# ---------------------------------------------------------------- builders of special files


def parquet_without_phone(folder: Path) -> None:
    pl.DataFrame({"id": [1, 2], "name": ["Ada", "Bob"]}).write_parquet(folder / "nophone.parquet")


def xlsx_chart_only(folder: Path) -> None:
    """A workbook that shows only a chart sheet (its data sits on a hidden worksheet)."""
    wb = xlsxwriter.Workbook(str(folder / "chart.xlsx"))
    sheet = wb.add_chartsheet()
    data = wb.add_worksheet("data")
    data.write_column(0, 0, [1, 2, 3])
    chart = wb.add_chart({"type": "line"})
    chart.add_series({"values": "=data!$A$1:$A$3"})
    sheet.set_chart(chart)
    sheet.activate()
    data.hide()
    wb.close()


def xlsx_no_sheets(folder: Path) -> None:
    """A well-formed workbook whose sheet list is empty."""
    good = folder / "good.tmp.xlsx"
    wb = xlsxwriter.Workbook(str(good))
    wb.add_worksheet().write(0, 0, "phone")
    wb.close()
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(folder / "nosheets.xlsx", "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "xl/workbook.xml":
                data = re.sub(rb"<sheets>.*</sheets>", b"<sheets/>", data)
            zout.writestr(item, data)
    good.unlink()


def xlsx_good(folder: Path) -> None:
    pl.DataFrame({"phone": ["+8613800138000"]}).write_excel(folder / "book.xlsx")


def fifo(folder: Path) -> None:
    os.mkfifo(folder / "pipe.csv")


def directory(name: str) -> Callable[[Path], None]:
    def build(folder: Path) -> None:
        (folder / name).mkdir()
        (folder / name / "inside.txt").write_text("x")

    return build


def plain_file(name: str) -> Callable[[Path], None]:
    def build(folder: Path) -> None:
        (folder / name).write_text("x")

    return build


# ------------------------------------------------------------------------------ the table


@dataclass(frozen=True)
class Case:
    id: str
    args: list[str]
    exit: int
    message: str
    """The whole stderr line after ``enrich: error: ``, or click's ``Error:`` line."""
    files: tuple[str, ...] = ()
    """Files copied from tests/data/bad/."""
    build: Callable[[Path], None] | None = None
    env: dict[str, str] = field(default_factory=lambda: dict(CREDS))
    prefix: bool = False
    """``message`` is a stable prefix (the rest comes from a third-party reader)."""
    click_usage: bool = False
    """A click parse error: click's usage block instead of ``enrich: error:``."""
    endpoint: bool = True
    """Point the run at the emulator (off where the endpoint itself is under test)."""


S1 = ["--cust-space-id", "S1"]
FOLDERS = "use .csv, .parquet or .xlsx"

CASES = [
    # --- the input file (exit 1)
    Case("binary-garbage", ["binary.csv", *S1], 1,
         "binary.csv is binary data, not a CSV text file", files=("binary.csv",)),
    Case("garbage-without-nul", ["garbage_no_nul.csv", *S1], 1,
         "garbage_no_nul.csv is not valid UTF-8 (line 1, byte 3); save it as UTF-8 CSV, "
         "or name its encoding: --encoding cp1252 for Excel's \"CSV (Comma delimited)\"",
         files=("garbage_no_nul.csv",)),
    Case("txt-extension", ["notes.txt", *S1], 1,
         f"unknown input format '.txt' for notes.txt; {FOLDERS}", files=("notes.txt",)),
    Case("xls-extension", ["legacy.xls", *S1], 1,
         "input format '.xls' of legacy.xls is not supported; save the workbook as .xlsx "
         "(or export .csv)", files=("legacy.xls",)),
    Case("no-extension", ["phones", *S1], 1,
         f"unknown input format (no extension) for phones; {FOLDERS}", files=("phones",)),
    Case("empty-0-bytes", ["empty.csv", *S1], 1, "empty.csv is empty (0 bytes)",
         files=("empty.csv",)),
    Case("blank-lines-only", ["blank_lines.csv", *S1], 1,
         "blank_lines.csv has no header row (only blank lines)", files=("blank_lines.csv",)),
    Case("ragged-row", ["ragged.csv", *S1], 1,
         "ragged.csv: line 3 has 3 fields, header has 2; fix that line (or quote a field "
         "that contains the separator)", files=("ragged.csv",)),
    Case("unclosed-quote", ["unclosed_quote.csv", *S1], 1,
         "unclosed_quote.csv: unclosed quote in the record starting on line 2; close it "
         '(a quote inside a quoted field is written "")', files=("unclosed_quote.csv",)),
    Case("invalid-utf8", ["invalid_utf8.csv", *S1], 1,
         "invalid_utf8.csv is not valid UTF-8 (line 2, byte 35); save it as UTF-8 CSV, "
         "or name its encoding: --encoding cp1252 for Excel's \"CSV (Comma delimited)\"",
         files=("invalid_utf8.csv",)),
    Case("utf16-with-bom", ["utf16.csv", *S1], 1, "utf16.csv is UTF-16 text; save it as UTF-8 CSV",
         files=("utf16.csv",)),
    Case("utf16-without-bom", ["utf16_nobom.csv", *S1], 1,
         "utf16_nobom.csv is UTF-16 text; save it as UTF-8 CSV", files=("utf16_nobom.csv",)),
    Case("parquet-named-csv", ["parquet_named.csv", *S1], 1,
         "parquet_named.csv is a Parquet file, not CSV; rename it to .parquet",
         files=("parquet_named.csv",)),
    Case("xlsx-named-csv", ["xlsx_named.csv", *S1], 1,
         "xlsx_named.csv is a ZIP file (an XLSX workbook?), not CSV; rename it to .xlsx",
         files=("xlsx_named.csv",)),
    Case("duplicate-column-names", ["duplicate_columns.csv", *S1], 1,
         "duplicate_columns.csv has two columns named 'name'; rename one of them",
         files=("duplicate_columns.csv",)),
    Case("no-phone-column", ["no_phone_column.csv", *S1], 1,
         "no phone column found in no_phone_column.csv; name it with --phone-column NAME "
         "(columns: id, name)", files=("no_phone_column.csv",)),
    Case("newline-in-a-column-name", ["newline_in_header.csv", *S1], 1,
         "no phone column found in newline_in_header.csv; name it with --phone-column NAME "
         "(columns: id, first\\nname)", files=("newline_in_header.csv",)),
    Case("ambiguous-phone-columns", ["ambiguous_columns.csv", *S1], 1,
         "several columns of ambiguous_columns.csv look like phone columns ('phone', "
         "'mobile'); choose one with --phone-column NAME", files=("ambiguous_columns.csv",)),
    Case("phone-column-not-found", ["good.csv", "--phone-column", "tel", *S1], 1,
         "column 'tel' not found in good.csv; columns: id, phone, space", files=("good.csv",)),
    Case("phone-column-with-crlf", ["good.csv", "--phone-column", "ph\r\nX-Evil: 1", *S1], 1,
         "column 'ph\\r\\nX-Evil: 1' not found in good.csv; columns: id, phone, space",
         files=("good.csv",)),
    Case("already-enriched-input", ["enriched_input.csv", *S1], 1,
         "bp_status already in the input: is it an enriched file? Enrich the original file "
         "instead", files=("enriched_input.csv",)),
    Case("reserved-column-name", ["reserved_column.csv", *S1], 1,
         "the input has a column named _raw, a name enrich keeps for its error report; "
         "rename that column and run again", files=("reserved_column.csv",)),
    Case("parquet-without-phone-column", ["nophone.parquet", *S1], 1,
         "no phone column found in nophone.parquet; name it with --phone-column NAME "
         "(columns: id, name)", build=parquet_without_phone),
    Case("parquet-garbage", ["garbage.parquet", *S1], 1,
         "garbage.parquet is not a Parquet file (or it is truncated)", files=("garbage.parquet",)),
    Case("parquet-truncated", ["truncated.parquet", *S1], 1,
         "truncated.parquet is not a readable Parquet file: ", prefix=True,
         files=("truncated.parquet",)),
    Case("xlsx-empty-zip", ["zip_junk.xlsx", *S1], 1,
         "zip_junk.xlsx is not a readable XLSX workbook: ", prefix=True, files=("zip_junk.xlsx",)),
    Case("xlsx-not-a-zip", ["not_a_zip.xlsx", *S1], 1,
         "not_a_zip.xlsx is not a readable XLSX workbook: ", prefix=True,
         files=("not_a_zip.xlsx",)),
    Case("xlsx-no-sheets", ["nosheets.xlsx", *S1], 1, "nosheets.xlsx has no sheets",
         build=xlsx_no_sheets),
    Case("xlsx-chart-only", ["chart.xlsx", *S1], 1,
         "sheet 'Chart1' of chart.xlsx is empty (no header row); choose another with "
         "--sheet NAME (sheets: Chart1, data)", build=xlsx_chart_only),
    Case("wrong-sheet-name", ["book.xlsx", "--sheet", "Nope", *S1], 1,
         "sheet 'Nope' not found in book.xlsx; sheets: Sheet1", build=xlsx_good),
    Case("wrong-sheet-position", ["book.xlsx", "--sheet", "5", *S1], 1,
         "sheet 5 not found in book.xlsx: positions start at 1 and it has 1 sheet (Sheet1)",
         build=xlsx_good),
    Case("sheet-name-with-newline", ["book.xlsx", "--sheet", "a\nb", *S1], 1,
         "sheet 'a\\nb' not found in book.xlsx; sheets: Sheet1", build=xlsx_good),
    Case("input-missing", ["nope.csv", *S1], 1, "input file nope.csv does not exist"),
    Case("input-is-a-directory", ["folder.csv", *S1], 1,
         "folder.csv is a directory, not an input file", build=directory("folder.csv")),
    Case("input-is-a-fifo", ["pipe.csv", *S1], 1,
         "pipe.csv is not a regular file (a pipe or a device?); save it as a file", build=fifo),
    # --- CustSpaceId and credentials (exit 1)
    Case("no-cust-space-id", ["good.csv"], 1,
         "no CustSpaceId: pass --cust-space-id ID (or set CAMS_CUST_SPACE_ID), or "
         "--cust-space-column NAME", files=("good.csv",)),
    Case("cust-space-column-missing", ["good.csv", "--cust-space-column", "a\r\nX-Evil: 1"], 1,
         "--cust-space-column 'a\\r\\nX-Evil: 1' not found in good.csv; columns: id, phone, "
         "space", files=("good.csv",)),
    # SPEC.md "Credentials": the whole chain was looked at, and the line names it all
    Case("missing-credentials", ["good.csv", *S1], 1,
         "no Alibaba Cloud credentials found; looked at: ALIBABA_CLOUD_ACCESS_KEY_ID/_SECRET "
         "(not set); ALIBABA_CLOUD_ROLE_ARN/_OIDC_PROVIDER_ARN/_OIDC_TOKEN_FILE (not set); ",
         files=("good.csv",), env={}, prefix=True),
    Case("missing-secret", ["good.csv", *S1], 1,
         "missing credentials: set ALIBABA_CLOUD_ACCESS_KEY_SECRET in the environment (or use "
         "--mock to try the local emulator)", files=("good.csv",),
         env={"ALIBABA_CLOUD_ACCESS_KEY_ID": "testAKID"}),
    # --- job files (exit 1)
    Case("job-missing-env", ["--job", "job_missing_env.toml"], 1,
         "job_missing_env.toml: cust_space_id uses ${ENRICH_TEST_UNSET_VAR} but "
         "ENRICH_TEST_UNSET_VAR is not set", files=("job_missing_env.toml", "good.csv")),
    Case("job-invalid-toml", ["--job", "job_invalid.toml"], 1,
         "job_invalid.toml is not valid TOML: ", prefix=True,
         files=("job_invalid.toml", "good.csv")),
    Case("job-unknown-key", ["--job", "job_unknown_key.toml", *S1], 1,
         "job_unknown_key.toml: unknown key 'speed'; known keys: ", prefix=True,
         files=("job_unknown_key.toml", "good.csv")),
    # issue 16: a job value the option refuses exits like the flag (2) and names the key
    Case("job-bad-value", ["--job", "job_bad_value.toml", *S1], 2,
         'rate in job_bad_value.toml: must be a number, not "fast"',
         files=("job_bad_value.toml", "good.csv")),
    Case("job-nowhere", ["--job", "nowhere.toml", *S1], 1, "job file nowhere.toml not found"),
    # --- usage errors (exit 2)
    Case("no-input", [*S1], 2, "name an INPUT file, or a job file with --job"),
    Case("max-attempts-0", ["good.csv", "--max-attempts", "0", *S1], 2,
         "--max-attempts must be at least 1, not 0", files=("good.csv",)),
    Case("rate-0", ["good.csv", "--rate", "0", *S1], 2,
         "--rate must be a positive number of requests per second, not 0", files=("good.csv",)),
    Case("rate-negative", ["good.csv", "--rate", "-1", *S1], 2,
         "--rate must be a positive number of requests per second, not -1", files=("good.csv",)),
    Case("rate-nan", ["good.csv", "--rate", "nan", *S1], 2,
         "--rate must be a positive number of requests per second, not nan", files=("good.csv",)),
    Case("timeout-0", ["good.csv", "--timeout", "0", *S1], 2,
         "--timeout must be a positive number of seconds, not 0", files=("good.csv",)),
    Case("concurrency-0", ["good.csv", "--concurrency", "0", *S1], 2,
         "--concurrency must be at least 1, not 0", files=("good.csv",)),
    Case("max-error-rate-2", ["good.csv", "--max-error-rate", "2", *S1], 2,
         "--max-error-rate must be between 0 and 1, not 2", files=("good.csv",)),
    Case("limit-0", ["good.csv", "--limit", "0", *S1], 2, "--limit must be at least 1, not 0",
         files=("good.csv",)),
    Case("separator-two-chars", ["good.csv", "--separator", ";;", *S1], 2,
         "--separator must be one character, not ';;'", files=("good.csv",)),
    Case("max-age-bogus", ["good.csv", "--max-age", "bogus", *S1], 2,
         "--max-age 'bogus' is not a duration such as 30m, 12h or 7d", files=("good.csv",)),
    Case("default-region-uk", ["good.csv", "--default-region", "UK", *S1], 2,
         "unknown region 'UK' for --default-region (the United Kingdom is GB); use an ISO 3166 "
         "two-letter code such as US, GB, CN or ID", files=("good.csv",)),
    Case("unknown-output-extension", ["good.csv", "-o", "out.json", *S1], 2,
         f"unknown output format '.json' for out.json; {FOLDERS}", files=("good.csv",)),
    Case("xls-output", ["good.csv", "-o", "out.xls", *S1], 2,
         "output format '.xls' of out.xls is not supported; save the workbook as .xlsx "
         "(or export .csv)", files=("good.csv",)),
    Case("errors-not-csv", ["good.csv", "--errors", "errors.txt", *S1], 2,
         "--errors errors.txt: the error report is a .csv file", files=("good.csv",)),
    Case("summary-not-json", ["good.csv", "--summary", "summary.csv", *S1], 2,
         "--summary summary.csv: the run summary is a .json file", files=("good.csv",)),
    Case("output-is-input", ["good.csv", "-o", "good.csv", *S1], 2,
         "input, output, error report and summary must be four different files",
         files=("good.csv",)),
    Case("errors-is-output", ["good.csv", "-o", "out.csv", "--errors", "out.csv", *S1], 2,
         "input, output, error report and summary must be four different files",
         files=("good.csv",)),
    Case("output-folder-missing", ["good.csv", "-o", "missing/out.csv", *S1], 2,
         "cannot write missing/out.csv: folder missing does not exist", files=("good.csv",)),
    Case("output-parent-is-a-file", ["good.csv", "-o", "afile/out.csv", *S1], 2,
         "cannot write afile/out.csv: afile is not a folder", files=("good.csv",),
         build=plain_file("afile")),
    Case("output-is-a-directory", ["good.csv", "-o", "out.csv", *S1], 2,
         "cannot write out.csv: it is a directory", files=("good.csv",),
         build=directory("out.csv")),
    Case("summary-folder-missing", ["good.csv", "--summary", "nodir/s.json", *S1], 2,
         "cannot write nodir/s.json: folder nodir does not exist", files=("good.csv",)),
    Case("cache-and-no-cache", ["good.csv", "--cache", "c.sqlite3", "--no-cache", *S1], 2,
         "give either --cache PATH or --no-cache, not both", files=("good.csv",)),
    Case("both-cust-space-options", ["good.csv", "--cust-space-column", "space", *S1], 2,
         "give either --cust-space-id or --cust-space-column, not both", files=("good.csv",)),
    Case("endpoint-plain-http-remote", ["good.csv", "--endpoint", "http://example.com", *S1], 2,
         "--endpoint 'http://example.com' uses plain http to a non-loopback host; use https "
         "(http is allowed only for 127.0.0.1/localhost)", files=("good.csv",)),
    Case("endpoint-ftp", ["good.csv", "--endpoint", "ftp://127.0.0.1/", *S1], 2,
         "--endpoint 'ftp://127.0.0.1/' is not an http(s) URL such as "
         "https://cams.ap-southeast-1.aliyuncs.com", files=("good.csv",)),
    Case("endpoint-no-host", ["good.csv", "--endpoint", "https://", *S1], 2,
         "--endpoint 'https://' is not an http(s) URL such as "
         "https://cams.ap-southeast-1.aliyuncs.com", files=("good.csv",)),
    Case("region-id-bogus", ["good.csv", "--region-id", "a b", *S1], 2,
         "--region-id 'a b' is not a region id such as ap-southeast-1", files=("good.csv",),
         endpoint=False),
    # --- click's own parse errors (exit 2, click's usage block)
    Case("rate-not-a-number", ["good.csv", "--rate", "abc", *S1], 2,
         "Error: Invalid value for '--rate': 'abc' is not a valid float.", files=("good.csv",),
         click_usage=True),
    Case("max-attempts-not-a-number", ["good.csv", "--max-attempts", "x", *S1], 2,
         "Error: Invalid value for '--max-attempts': 'x' is not a valid integer.",
         files=("good.csv",), click_usage=True),
    Case("unknown-option", ["good.csv", "--bogus", *S1], 2, "Error: No such option '--bogus'.",
         files=("good.csv",), click_usage=True),
    Case("log-format-bogus", ["good.csv", "--log-format", "xml", *S1], 2,
         "Error: Invalid value for '--log-format': 'xml' is not one of 'text', 'json'.",
         files=("good.csv",), click_usage=True),
    Case("job-is-a-directory", ["--job", "jobs", *S1], 2,
         "Error: Invalid value for '--job': File 'jobs' is a directory.",
         build=directory("jobs"), click_usage=True),
    Case("cache-is-a-directory", ["good.csv", "--cache", "cachedir", *S1], 2,
         "Error: Invalid value for '--cache': File 'cachedir' is a directory.",
         files=("good.csv",), build=directory("cachedir"), click_usage=True),
]


def snapshot(folder: Path) -> dict[str, tuple[bool, int]]:
    """Every path under ``folder`` (hidden ones too) → (is a dir, size)."""
    return {
        str(p.relative_to(folder)): (p.is_dir(), p.stat().st_size if p.is_file() else 0)
        for p in sorted(folder.rglob("*"))
    }


def setup_case(case: Case, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in case.files:
        shutil.copyfile(DATA / name, folder / name)
    if case.build is not None:
        case.build(folder)
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)


def assert_one_line(res: Result, case: Case) -> None:
    assert "Traceback" not in res.stderr + res.stdout
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    assert res.stdout == ""
    lines = res.stderr.splitlines()
    if case.click_usage:
        assert len(lines) == 4, res.stderr
        assert lines[0].startswith("Usage: ") and lines[1].startswith("Try '")
        assert lines[2] == ""
        got = lines[3]
    else:
        assert len(lines) == 1, res.stderr
        assert lines[0].startswith("enrich: error: "), res.stderr
        got = lines[0].removeprefix("enrich: error: ")
    if case.prefix:
        assert got.startswith(case.message), got
    else:
        assert got == case.message


def test_the_corpus_is_big_enough() -> None:
    assert len(CASES) >= 25
    assert len({c.id for c in CASES}) == len(CASES)
    used = {name for c in CASES for name in c.files} | {"header_only.csv", "phone_all_empty.csv"}
    assert used == {p.name for p in DATA.iterdir()}  # no orphan file in tests/data/bad


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, server: EmulatorServer, tmp_path: Path,
                   monkeypatch: pytest.MonkeyPatch) -> None:
    setup_case(case, tmp_path, monkeypatch)
    before = snapshot(tmp_path)
    calls = server.stats.requests_total
    args = ["run", *case.args]
    if case.endpoint and "--endpoint" not in args:
        args += ["--endpoint", server.url]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == case.exit, res.stderr
    assert_one_line(res, case)
    assert server.stats.requests_total == calls
    assert snapshot(tmp_path) == before


def test_header_only_is_not_an_error(server: EmulatorServer, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    case = Case("header-only", ["header_only.csv", *S1], 0, "", files=("header_only.csv",))
    setup_case(case, tmp_path, monkeypatch)
    calls = server.stats.requests_total
    res = CliRunner().invoke(cli, ["run", *case.args, "--endpoint", server.url])
    assert res.exit_code == 0, res.stderr
    assert "enrich: warning: header_only.csv has no data rows" in res.stderr
    assert "enrich: error" not in res.stderr
    assert server.stats.requests_total == calls
    assert json.loads(Path("header_only.summary.json").read_text())["rows"] == 0


def test_phone_column_all_empty_is_reported_not_fatal(server: EmulatorServer, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Decision: every row is invalid_phone / Client.MissingPhone, a warning, exit 0, no call."""
    case = Case("all-empty", ["phone_all_empty.csv", *S1], 0, "", files=("phone_all_empty.csv",))
    setup_case(case, tmp_path, monkeypatch)
    calls = server.stats.requests_total
    res = CliRunner().invoke(cli, ["run", *case.args, "--endpoint", server.url])
    assert res.exit_code == 0, res.stderr
    assert ("enrich: warning: column 'phone' of phone_all_empty.csv holds no valid number; "
            "every row is reported, calling nothing") in res.stderr.splitlines()
    assert server.stats.requests_total == calls
    with Path("phone_all_empty.enriched.csv").open(newline="") as f:
        assert [r["bp_status"] for r in csv.DictReader(f)] == ["invalid_phone"] * 3
    with Path("phone_all_empty.errors.csv").open(newline="") as f:
        assert [r["error_code"] for r in csv.DictReader(f)] == ["Client.MissingPhone"] * 3
    summary = json.loads(Path("phone_all_empty.summary.json").read_text())
    assert (summary["rows"], summary["invalid"], summary["api_calls"]) == (3, 3, 0)
    # the operator's switch for "a bad night is a failure"
    res = CliRunner().invoke(cli, ["run", *case.args, "--endpoint", server.url,
                                   "--max-error-rate", "0.5"])
    assert res.exit_code == 4


# ----------------------------------------------------------------- an unreadable input

# Tests run as root, and root reads a chmod 000 file (CAP_DAC_OVERRIDE). The child
# below drops every capability from its bounding set before exec'ing Python, so the
# new process is uid 0 without capabilities: file permissions apply to it again.
_DROP_CAPS = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
for cap in range(64):
    if libc.prctl(24, cap, 0, 0, 0) != 0 and ctypes.get_errno() != 22:  # PR_CAPBSET_DROP
        sys.exit("cannot drop capabilities")
os.execv(sys.executable, [sys.executable, "-m", "enrich", *sys.argv[1:]])
"""


def _run_without_caps(args: list[str], folder: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALIBABA_CLOUD_", "CAMS_"))}
    env.update(CREDS, XDG_CACHE_HOME=str(folder / ".cache"))
    cmd = [sys.executable, "-c", _DROP_CAPS, *args] if os.geteuid() == 0 else [
        sys.executable, "-m", "enrich", *args]
    return subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True, timeout=60,
                          check=False)


def test_unreadable_input(server: EmulatorServer, tmp_path: Path) -> None:
    src = tmp_path / "secret.csv"
    shutil.copyfile(DATA / "good.csv", src)
    src.chmod(0)
    before = snapshot(tmp_path)
    calls = server.stats.requests_total
    res = _run_without_caps(["run", "secret.csv", "--endpoint", server.url, *S1], tmp_path)
    assert "Traceback" not in res.stderr
    assert server.stats.requests_total == calls
    assert res.stderr.splitlines() == ["enrich: error: cannot read secret.csv: Permission denied"]
    assert res.returncode == 1
    assert snapshot(tmp_path) == before


def test_unreadable_input_today(server: EmulatorServer, tmp_path: Path) -> None:
    """What happens now (until the cli.py fix): a usage error, no call, nothing written."""
    src = tmp_path / "secret.csv"
    shutil.copyfile(DATA / "good.csv", src)
    src.chmod(0)
    before = snapshot(tmp_path)
    calls = server.stats.requests_total
    res = _run_without_caps(["run", "secret.csv", "--endpoint", server.url, *S1], tmp_path)
    assert "Traceback" not in res.stderr
    assert res.returncode in (1, 2)
    assert "secret.csv" in res.stderr
    assert "is not readable" in res.stderr or "Permission denied" in res.stderr
    assert server.stats.requests_total == calls
    assert snapshot(tmp_path) == before
