"""`enrich check`: the right counts, and an estimate that `enrich run` then keeps."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from enrich.cli import cli

SAMPLES = Path(__file__).resolve().parent.parent / "sample_data"
FORMATS = ["csv", "parquet", "xlsx"]


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def sample(tmp_path: Path, fmt: str) -> Path:
    dst = tmp_path / f"contacts.{fmt}"
    shutil.copyfile(SAMPLES / f"contacts.{fmt}", dst)
    return dst


def check_json(*args: str) -> dict:
    res = invoke("check", *args, "--json")
    assert res.exit_code == 0, res.output
    assert res.stderr == ""
    return json.loads(res.stdout)


# ------------------------------------------------------------------ the sample files


@pytest.mark.parametrize("fmt", FORMATS)
def test_sample_counts(tmp_path: Path, fmt: str) -> None:
    r = check_json(str(sample(tmp_path, fmt)), "--cust-space-id", "S1")
    assert r["phone_column"] == "phone"
    assert (r["rows"], r["valid"], r["invalid"]) == (40, 33, 7)
    assert (r["duplicates"], r["unique_numbers"]) == (4, 29)
    assert (r["fresh_in_cache"], r["calls_needed"]) == (0, 29)
    assert r["missing_cust_space_id"] == 0
    assert r["estimated_s"] == pytest.approx(29 / 9.75, abs=0.1)  # a few % under --rate 10
    assert [(e["row"], e["error_code"]) for e in r["invalid_examples"]] == [
        (31, "Client.MissingPhone"),
        (32, "Client.MissingPhone"),
        (33, "Client.InvalidPhone"),
        (34, "Client.InvalidPhone"),
        (35, "Client.InvalidPhone"),
    ]


@pytest.mark.parametrize("fmt", FORMATS)
def test_sample_counts_with_a_default_region(tmp_path: Path, fmt: str) -> None:
    # row 37 "020 7946 0958" becomes +44 20 7946 0958: valid, and a duplicate of row 5
    r = check_json(str(sample(tmp_path, fmt)), "--cust-space-id", "S1", "--default-region", "GB")
    assert (r["rows"], r["valid"], r["invalid"]) == (40, 34, 6)
    assert (r["duplicates"], r["unique_numbers"], r["calls_needed"]) == (5, 29, 29)


def test_sample_report_as_text(tmp_path: Path) -> None:
    res = invoke("check", str(sample(tmp_path, "xlsx")), "--cust-space-id", "S1",
                 "--cache", str(tmp_path / "c.sqlite3"))
    assert res.exit_code == 0 and res.stderr == ""
    lines = res.stdout.splitlines()
    assert "rows             40" in lines
    assert "valid numbers    33" in lines
    assert "invalid          7" in lines
    assert "  row 31: (empty) Client.MissingPhone" in lines
    assert "  row 32: '   ' Client.MissingPhone" in lines
    assert "  … and 2 more (all of them in the run's error report)" in lines
    assert "duplicates       4" in lines
    assert "distinct numbers 29" in lines
    assert f"fresh in cache   0 (cache {tmp_path / 'c.sqlite3'})" in lines
    assert "calls needed     29" in lines
    assert "estimated time   3s at 10 requests/s (plus retries)" in lines


def test_limit_counts_the_rows_up_to_the_nth_number(tmp_path: Path) -> None:
    r = check_json(str(sample(tmp_path, "csv")), "--cust-space-id", "S1", "--limit", "28")
    # rows 1-26 hold 26 numbers, 27-37 duplicates, blanks and invalid ones: the
    # 28th distinct number is on row 39, and row 40 is left out
    assert (r["rows"], r["rows_in_file"], r["limit"]) == (39, 40, 28)
    assert (r["unique_numbers"], r["calls_needed"], r["duplicates"], r["invalid"]) == (28, 28, 4, 7)
    res = invoke("check", str(tmp_path / "contacts.csv"), "--cust-space-id", "S1",
                 "--limit", "28")
    assert "rows             39 of 40 (up to distinct number 28, --limit)" in res.stdout


def test_without_a_cust_space_id_the_cache_cannot_be_asked(tmp_path: Path) -> None:
    r = check_json(str(sample(tmp_path, "csv")))
    assert r["fresh_in_cache"] is None
    assert r["calls_needed"] == 29
    text = invoke("check", str(tmp_path / "contacts.csv")).stdout
    assert "fresh in cache   unknown: give --cust-space-id (or --cust-space-column)" in text
    assert "calls needed     29 at most" in text


# ------------------------------------------------------- the estimate is what run does


@pytest.mark.parametrize("fmt", FORMATS)
def test_calls_announced_are_calls_made(emulator, creds, tmp_path: Path, fmt: str) -> None:
    server = emulator()
    src = sample(tmp_path, fmt)
    common = ["--cust-space-id", "S1", "--cache", str(tmp_path / "ledger.sqlite3")]
    run_opts = ["--endpoint", server.url, "--rate", "1000", "--no-progress",
                "-o", str(tmp_path / f"out.{fmt}")]
    made = 0

    def announced_then_made(*extra: str) -> tuple[dict, dict]:
        nonlocal made
        before = check_json(str(src), *common, *extra)
        res = invoke("run", str(src), *common, *run_opts, *extra)
        assert res.exit_code == 0, res.stderr
        # the summary is named after the output (SPEC.md "Names of the side files")
        summary = json.loads((tmp_path / "out.summary.json").read_text())
        assert summary["api_calls"] == server.stats.requests_total - made
        made = server.stats.requests_total
        return before, summary

    # cold, a trial of the first numbers
    before, after = announced_then_made("--limit", "7")
    assert before["calls_needed"] == after["api_calls"] == 7
    assert before["rows"] == after["rows"] == 7
    # partly warm, a longer trial: only the 5 numbers not seen yet
    before, after = announced_then_made("--limit", "12")
    assert (before["fresh_in_cache"], before["calls_needed"]) == (7, 5)
    assert (after["cache_hits"], after["api_calls"]) == (7, 5)
    assert before["unique_numbers"] == after["unique_numbers"] == 12
    # partly warm, the whole file
    before, after = announced_then_made()
    assert (before["fresh_in_cache"], before["calls_needed"]) == (12, 17)
    assert (after["cache_hits"], after["api_calls"]) == (12, 17)
    for key in ("rows", "unique_numbers", "invalid"):
        assert before[key] == after[key]
    # warm: nothing to call
    before, after = announced_then_made()
    assert before["calls_needed"] == after["api_calls"] == 0
    # every distinct number was called exactly once in all
    assert server.stats.requests_total == 29
    assert sorted(server.stats.successes.values()) == [1] * 29


def test_an_expired_answer_is_announced_as_a_call(emulator, creds, tmp_path: Path) -> None:
    server = emulator()
    src = sample(tmp_path, "csv")
    common = ["--cust-space-id", "S1", "--cache", str(tmp_path / "ledger.sqlite3")]
    res = invoke("run", str(src), *common, "--endpoint", server.url, "--rate", "1000",
                 "--limit", "3")
    assert res.exit_code == 0, res.stderr
    # 7d (the default) keeps them fresh; 0s makes them all stale
    assert check_json(str(src), *common, "--limit", "3")["calls_needed"] == 0
    assert check_json(str(src), *common, "--limit", "3", "--max-age", "0s")["calls_needed"] == 3


def test_mock_check_counts_what_mock_runs_cached(tmp_path: Path) -> None:
    src = sample(tmp_path, "csv")
    res = invoke("run", str(src), "--mock", "--limit", "3")
    assert res.exit_code == 0, res.stderr
    r = check_json(str(src), "--mock")
    assert (r["fresh_in_cache"], r["calls_needed"]) == (3, 26)
    # a real account's cache is a different file: nothing of the demo is in it
    assert check_json(str(src), "--cust-space-id", "demo-space")["fresh_in_cache"] == 0


# ------------------------------------------------------------ forgiving column names


@pytest.mark.parametrize("header", ["Phone Number", "MOBILE", " msisdn ", "WhatsApp #", "Tel.",
                                    "phone-number", "Cell Phone"])
def test_phone_column_spellings_are_found(tmp_path: Path, header: str) -> None:
    src = tmp_path / "in.csv"
    src.write_text(f'name,"{header}"\nAda,+8613800138000\n', encoding="utf-8")
    r = check_json(str(src))
    assert r["phone_column"] == header
    assert r["valid"] == 1


@pytest.mark.parametrize("command", ["check", "run"])
def test_no_phone_column_is_one_line_listing_the_columns(tmp_path: Path, command: str) -> None:
    src = tmp_path / "people.csv"
    src.write_text("id,name,company\n1,Ada,Acme\n", encoding="utf-8")
    extra = ["--mock"] if command == "run" else []
    res = invoke(command, str(src), *extra)
    assert res.exit_code == 1
    assert res.stdout == ""
    assert res.stderr == (
        "enrich: error: no phone column found in people.csv; name it with "
        "--phone-column NAME (columns: id, name, company)\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == [
        "people.csv"
    ]


@pytest.mark.parametrize("command", ["check", "run"])
def test_several_phone_columns_ask_for_one(tmp_path: Path, command: str) -> None:
    src = tmp_path / "people.csv"
    src.write_text("name,Phone,Mobile\nAda,+8613800138000,+8613800138001\n", encoding="utf-8")
    extra = ["--mock"] if command == "run" else []
    res = invoke(command, str(src), *extra)
    assert res.exit_code == 1
    assert res.stderr == (
        "enrich: error: several columns of people.csv look like phone columns "
        "('Phone', 'Mobile'); choose one with --phone-column NAME\n"
    )
    r = check_json(str(src), "--phone-column", "Mobile")
    assert r["phone_column"] == "Mobile" and r["valid"] == 1
