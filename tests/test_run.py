"""`enrich run` end to end against the emulator as a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner, Result

from enrich.cli import cli
from enrich.emulator.profiles import data_on_wire
from enrich.report import BP_COLUMNS, ERROR_COLUMNS

SUMMARY_KEYS = {
    "input", "output", "errors", "rows", "unique_numbers", "invalid", "cache_hits", "api_calls",
    "retries", "throttled", "ok", "no_profile", "error_rows", "errors_by_code", "started_at",
    "finished_at", "elapsed_s", "requests_per_s", "exit_code",
    "credentials",  # SPEC.md "Credentials": which provider served the run
    "quota", "quota_wait_s",  # SPEC.md "Sharing the account's quota"
    "multi_number_cells",  # SPEC.md "Inputs as data teams have them"
}

CSV_TEXT = (
    "id,name,phone,amount,joined\n"
    "1,Ada,+86 138 0013 8000,007,2024-01-02\n"
    "2,Bob,008613800138000,1.50,2024-01-03\n"  # same number, other spelling
    "3,Cy,8613800138001,0010,\n"
    "4,Di,,3,2024-02-01\n"  # blank
    "5,Ed,12,4,2024-02-02\n"  # invalid
    '6,"Fa, Jr.",+44 20 7946 0958,5,2024-02-03\n'
    "7,Gu,+1 415 555 0100,6,2024-02-04\n"
    "8,Ha,8613800138001,7,2024-02-05\n"  # duplicate
    "9,Io,abc,8,2024-02-06\n"  # invalid
    "10,Jo,+49 30 901820,9,2024-02-07\n"
)
VALID = {"8613800138000", "8613800138001", "442079460958", "14155550100", "4930901820"}


def dict_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def expected_profile(space: str, number: str) -> dict[str, object] | None:
    """The cleaned profile; None only for "Data": null (an all-empty Data is an empty profile)."""
    data = data_on_wire(space, number)
    if data is None:
        return None

    def clean(v: object) -> object:
        return v.strip() or None if isinstance(v, str) else v

    out = {k: clean(data.get(k)) for k in
           ("About", "Address", "Description", "Vertical", "Email", "ProfilePictureUrl")}
    out["Websites"] = [s.strip() for s in data.get("Websites") or [] if s and s.strip()]
    return out


def neutral(value: str | None) -> str | None:
    if value and value[0] in "=+-@\t\r":
        return "'" + value
    return value


@pytest.fixture
def contacts(tmp_path: Path) -> Path:
    path = tmp_path / "contacts.csv"
    path.write_text(CSV_TEXT, encoding="utf-8")
    return path


def test_csv_end_to_end(emulator, creds, contacts: Path, tmp_path: Path) -> None:
    server = emulator()
    res = invoke("run", str(contacts), "--endpoint", server.url, "--cust-space-id", "S1",
                 "--cache", str(tmp_path / "c.sqlite3"))
    assert res.exit_code == 0, res.stderr
    assert res.stdout == ""
    out = tmp_path / "contacts.enriched.csv"
    errors = tmp_path / "contacts.errors.csv"
    summary = json.loads((tmp_path / "contacts.summary.json").read_text())

    # every input row, in order, input text unchanged, then exactly the bp_* columns
    with contacts.open(newline="") as f:
        original = list(csv.reader(f))
    with out.open(newline="", encoding="utf-8") as f:
        enriched = list(csv.reader(f))
    assert enriched[0] == original[0] + list(BP_COLUMNS)
    assert len(enriched) == len(original)
    width = len(original[0])
    for a, b in zip(original[1:], enriched[1:], strict=True):
        assert b[:width] == a

    # exactly one request per distinct valid number
    assert server.stats.requests_total == len(VALID)
    assert sorted(server.stats.successes.values()) == [1] * len(VALID)
    assert {p for _, p in server.stats.successes} == VALID

    rows = {r["id"]: r for r in dict_rows(out)}
    assert rows["4"]["bp_status"] == "invalid_phone"
    assert rows["4"]["bp_error_code"] == "Client.MissingPhone"
    assert rows["5"]["bp_error_code"] == "Client.InvalidPhone"
    assert rows["1"]["bp_phone"] == rows["2"]["bp_phone"] == "8613800138000"
    for r in rows.values():
        if r["bp_phone"]:
            want = expected_profile("S1", r["bp_phone"])
            assert r["bp_status"] == ("ok" if want else "no_profile")
            assert r["bp_request_id"]
            assert r["bp_fetched_at"].endswith("Z")
            if want:
                assert r["bp_address"] == (neutral(want["Address"]) or "")
                assert r["bp_about"] == (neutral(want["About"]) or "")
                assert r["bp_websites"] == " ".join(neutral(s) for s in want["Websites"])

    report = dict_rows(errors)
    assert list(report[0].keys()) == list(ERROR_COLUMNS)
    assert [(r["row"], r["phone"], r["error_code"]) for r in report] == [
        ("4", "", "Client.MissingPhone"), ("5", "12", "Client.InvalidPhone"),
        ("9", "abc", "Client.InvalidPhone")]

    assert set(summary) == SUMMARY_KEYS
    assert summary["rows"] == 10
    assert summary["unique_numbers"] == len(VALID)
    assert summary["invalid"] == 3
    assert summary["api_calls"] == len(VALID)
    assert summary["cache_hits"] == 0
    assert summary["ok"] + summary["no_profile"] + summary["error_rows"] == 10
    assert summary["error_rows"] == 3
    assert summary["errors_by_code"] == {"Client.InvalidPhone": 2, "Client.MissingPhone": 1}
    assert summary["exit_code"] == 0


def test_rerun_uses_the_ledger_and_writes_the_same_output(emulator, creds, contacts, tmp_path):
    server = emulator()
    args = ["run", str(contacts), "--endpoint", server.url, "--cust-space-id", "S1",
            "--cache", str(tmp_path / "c.sqlite3")]
    assert invoke(*args).exit_code == 0
    first = (tmp_path / "contacts.enriched.csv").read_bytes()
    calls = server.stats.requests_total
    res = invoke(*args)
    assert res.exit_code == 0
    assert server.stats.requests_total == calls  # zero new calls
    assert (tmp_path / "contacts.enriched.csv").read_bytes() == first
    summary = json.loads((tmp_path / "contacts.summary.json").read_text())
    assert summary["cache_hits"] == len(VALID) and summary["api_calls"] == 0


def test_parquet_keeps_dtypes_and_lists(emulator, creds, tmp_path: Path) -> None:
    server = emulator()
    df = pl.DataFrame({
        "phone": [8613800138000, 8613800138001, None, 8613800138000],
        "score": [1.5, 2.5, 3.5, 4.5],
        "flag": [True, False, None, True],
        "day": pl.Series([None, None, None, None], dtype=pl.Date),
    })
    src = tmp_path / "p.parquet"
    df.write_parquet(src)
    res = invoke("run", str(src), "--endpoint", server.url, "--cust-space-id", "S1",
                 "--no-cache")
    assert res.exit_code == 0, res.stderr
    out = pl.read_parquet(tmp_path / "p.enriched.parquet")
    assert out.columns == df.columns + list(BP_COLUMNS)
    assert out.select(df.columns).equals(df)
    assert out.schema["bp_websites"] == pl.List(pl.String)
    assert out["bp_phone"].to_list() == ["8613800138000", "8613800138001", None, "8613800138000"]
    assert server.stats.requests_total == 2


def test_header_only_file_is_not_an_error(emulator, creds, tmp_path: Path) -> None:
    server = emulator()
    src = tmp_path / "empty.csv"
    src.write_text("id,phone\n")
    res = invoke("run", str(src), "--endpoint", server.url, "--cust-space-id", "S1",
                 "--no-cache")
    assert res.exit_code == 0
    assert "empty.csv has no data rows" in res.stderr
    assert (tmp_path / "empty.enriched.csv").read_text().splitlines() == [
        "id,phone," + ",".join(BP_COLUMNS)]
    assert json.loads((tmp_path / "empty.summary.json").read_text())["rows"] == 0
    assert server.stats.requests_total == 0


def test_rate_is_never_exceeded_in_any_sliding_second(emulator, creds, tmp_path: Path) -> None:
    server = emulator(rate_limit=10)
    src = tmp_path / "n.csv"
    src.write_text("phone\n" + "".join(f"+86138{i:08d}\n" for i in range(24)))
    res = invoke("run", str(src), "--endpoint", server.url, "--cust-space-id", "S1",
                 "--no-cache", "--rate", "10")
    assert res.exit_code == 0, res.stderr
    assert server.stats.requests_total == 24
    assert server.stats.codes.get("System.LimitControl", 0) == 0
    assert server.stats.max_in_window(1.0) <= 10
    summary = json.loads((tmp_path / "n.summary.json").read_text())
    assert summary["throttled"] == 0


FAULTS = ["http500_html", "http503_json", "http429", "throttle", "truncated_json", "garbage",
          "code_not_ok", "xml_error", "drop", "hang"]


@pytest.mark.parametrize("kind", FAULTS)
def test_each_fault_is_retried_then_succeeds(emulator, creds, tmp_path: Path, kind: str) -> None:
    server = emulator(hang_s=5.0)
    src = tmp_path / "f.csv"
    src.write_text("phone\n+8613800138000\n+8613800138001\n")
    space = f"fault-{kind}-2"
    res = invoke("run", str(src), "--endpoint", server.url, "--cust-space-id", space,
                 "--no-cache", "--timeout", "0.5", "--rate", "1000")
    assert res.exit_code == 0, res.stderr
    summary = json.loads((tmp_path / "f.summary.json").read_text())
    assert summary["error_rows"] == 0
    assert summary["api_calls"] == 6 and summary["retries"] == 4
    if kind in ("throttle", "http429"):
        assert summary["throttled"] == 4
    assert sorted(server.stats.successes.values()) == [1, 1]


def test_retries_run_out_and_are_reported(emulator, creds, tmp_path: Path) -> None:
    server = emulator()
    src = tmp_path / "f.csv"
    src.write_text("phone\n+8613800138000\n")
    res = invoke("run", str(src), "--endpoint", server.url, "--cust-space-id",
                 "fault-http503_json-9", "--no-cache", "--max-attempts", "3", "--rate", "1000")
    assert res.exit_code == 0
    report = dict_rows(tmp_path / "f.errors.csv")
    assert [(r["error_code"], r["http_status"], r["attempts"]) for r in report] == [
        ("ServiceUnavailable", "503", "3")]
    assert report[0]["request_id"]
    assert server.stats.requests_total == 3


@pytest.mark.parametrize("code", ["Product.Unsubscript", "Ram.PermissionDeny"])
def test_fatal_account_error_aborts_early(emulator, creds, tmp_path: Path, code: str) -> None:
    server = emulator(force_code=code)
    src = tmp_path / "n.csv"
    src.write_text("phone\n" + "".join(f"+86138{i:08d}\n" for i in range(200)))
    res = invoke("run", str(src), "--endpoint", server.url, "--cust-space-id", "S1",
                 "--cache", str(tmp_path / "c.sqlite3"))
    assert res.exit_code == 3
    lines = res.stderr.strip().splitlines()
    assert lines[-1].startswith(f"enrich: error: aborted: the API answered {code}")
    # one error line (log lines name absolute paths, and this test's folder says "error")
    assert sum(line.startswith("enrich: error:") for line in lines) == 1
    assert server.stats.requests_total < 20
    # nothing written beside the input (the user's cache folder holds the shared quota)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != ".cache") == [
        "c.sqlite3", "n.csv"]  # fmt: skip


def test_wrong_secret_is_fatal(emulator, creds, tmp_path: Path, monkeypatch) -> None:
    server = emulator()
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "wrongSecret")
    src = tmp_path / "n.csv"
    src.write_text("phone\n+8613800138000\n+8613800138001\n")
    res = invoke("run", str(src), "--endpoint", server.url, "--cust-space-id", "S1", "--no-cache")
    assert res.exit_code == 3
    assert "SignatureDoesNotMatch" in res.stderr and "ALIBABA_CLOUD_ACCESS_KEY_SECRET" in res.stderr
    assert "wrongSecret" not in res.stderr
    # the service's message quotes its string-to-sign, newlines and all: still one line
    lines = res.stderr.strip().splitlines()
    assert all(line.startswith("enrich: ") for line in lines), lines
    assert sum(line.startswith("enrich: error:") for line in lines) == 1


@pytest.mark.parametrize(
    ("latency_s", "extra", "calls"),
    [
        # one at a time: its first answer comes before its next number leaves
        (0.0, ["--concurrency", "1"], (1, 1)),
        # at 48.75/s about five leave in the 0.2 s before the first answer; the workers
        # already waiting for a slot then must not send theirs
        (0.2, ["--rate", "50"], (2, 8)),
    ],
)
def test_a_rejected_space_fails_only_its_rows_and_gets_no_further_call(
    emulator, creds, tmp_path: Path, latency_s: float, extra: list[str], calls: tuple[int, int]
) -> None:
    """SPEC.md: with a column, a rejected CustSpaceId fails its rows, no further calls."""
    server = emulator(latency_s=latency_s)
    src = tmp_path / "s.csv"
    rows = "".join(f"{sp},+86138{i:08d}\n" for i in range(20) for sp in ("S1", "foreign-9"))
    src.write_text("space,phone\n" + rows)
    res = invoke("run", str(src), "--endpoint", server.url, "--cust-space-column", "space",
                 "--no-cache", *extra)
    assert res.exit_code == 0, res.stderr
    assert calls[0] <= server.stats.codes["Unknown.ResourceOwnerId"] <= calls[1]
    assert res.stderr.count("CustSpaceId 'foreign-9' rejected") == 1
    summary = json.loads((tmp_path / "s.summary.json").read_text())
    assert summary["errors_by_code"] == {"Unknown.ResourceOwnerId": 20}
    assert summary["ok"] + summary["no_profile"] == 20


def test_foreign_space_is_fatal_with_a_single_id(emulator, creds, tmp_path: Path) -> None:
    server = emulator()
    src = tmp_path / "s.csv"
    src.write_text("phone\n+8613800138000\n")
    res = invoke("run", str(src), "--endpoint", server.url, "--cust-space-id", "foreign-9",
                 "--no-cache")
    assert res.exit_code == 3
    assert "Unknown.ResourceOwnerId" in res.stderr and "--cust-space-id" in res.stderr


def test_max_error_rate_exits_4(emulator, creds, contacts: Path, tmp_path: Path) -> None:
    server = emulator()
    res = invoke("run", str(contacts), "--endpoint", server.url, "--cust-space-id", "S1",
                 "--no-cache", "--max-error-rate", "0.2")
    assert res.exit_code == 4  # 3 invalid rows of 10
    assert json.loads((tmp_path / "contacts.summary.json").read_text())["exit_code"] == 4
    assert (tmp_path / "contacts.enriched.csv").exists()


def test_api_errors_carry_their_request_id_and_time_fresh_or_cached(
    emulator, creds, tmp_path: Path
) -> None:
    """An API error is an answer: its RequestId and time, the same from the cache."""
    server = emulator()
    src = tmp_path / "s.csv"
    src.write_text("space,phone\nS1,+8613800000001\nerr-Biz.NotAllowed,+8613800000002\n"
                   "foreign-9,+8613800000003\n")
    args = ["run", str(src), "--endpoint", server.url, "--cust-space-column", "space",
            "--cache", str(tmp_path / "c.sqlite3"), "--concurrency", "1"]

    def rows(out: str) -> dict[str, dict[str, str]]:
        res = invoke(*args, "-o", out)
        assert res.exit_code == 0, res.stderr
        with (tmp_path / out).open(newline="", encoding="utf-8") as f:
            return {r["space"]: r for r in csv.DictReader(f)}

    fresh = rows("fresh.csv")
    for space, code in (("err-Biz.NotAllowed", "Biz.NotAllowed"),
                        ("foreign-9", "Unknown.ResourceOwnerId")):
        assert fresh[space]["bp_error_code"] == code
        assert fresh[space]["bp_request_id"], space
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", fresh[space]["bp_fetched_at"])
    cached = rows("cached.csv")
    assert cached["err-Biz.NotAllowed"] == fresh["err-Biz.NotAllowed"]


def test_side_files_are_named_after_the_output(emulator, creds, tmp_path: Path) -> None:
    """Two runs of one input with two outputs never share an error report or a summary."""
    from click.testing import CliRunner

    from enrich.cli import cli
    from enrich.runner import side_name

    assert side_name(Path("d/a.enriched.csv"), ".errors.csv") == Path("d/a.errors.csv")
    assert side_name(Path("a.csv"), ".summary.json") == Path("a.summary.json")
    assert side_name(Path("a.v2.XLSX"), ".errors.csv") == Path("a.v2.errors.csv")
    server = emulator()
    src = tmp_path / "in.csv"
    src.write_text("phone\n+8613800138000\n+8613800138001\n", "utf-8")
    for name, limit in (("a.csv", "1"), ("b.csv", "2")):
        res = CliRunner().invoke(cli, ["run", str(src), "-o", str(tmp_path / name), "--endpoint",
                                       server.url, "--cust-space-id", "c1", "--limit", limit])
        assert res.exit_code == 0, res.output
    summaries = {n: json.loads((tmp_path / f"{n}.summary.json").read_text()) for n in "ab"}
    assert summaries["a"]["rows"] == 1 and summaries["b"]["rows"] == 2
    assert summaries["a"]["errors"] == str(tmp_path / "a.errors.csv")
    assert not (tmp_path / "in.errors.csv").exists()


def test_an_unreachable_endpoint_stops_the_run(creds, tmp_path: Path) -> None:
    """SPEC.md "When nothing gets through": exit 3, one line naming the endpoint, no output."""
    import socket

    from click.testing import CliRunner

    from enrich.cli import cli

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    src = tmp_path / "in.csv"
    src.write_text("phone\n" + "".join(f"+86139{i:08d}\n" for i in range(150)), "utf-8")
    url = f"http://127.0.0.1:{port}"
    res = CliRunner().invoke(cli, ["run", str(src), "--endpoint", url, "--cust-space-id", "c1",
                                   "--rate", "1000", "--max-attempts", "2"])
    assert res.exit_code == 3, res.output
    lines = [line for line in res.output.splitlines() if line.startswith("enrich: error:")]
    assert len(lines) == 1
    assert f"{url} is unreachable: the first 50 attempts all failed (Client.Connection" in lines[0]
    assert not (tmp_path / "in.enriched.csv").exists()
