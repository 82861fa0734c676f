"""`enrich check` takes every `enrich run` option (issue 16 point 5): a run's command line
with its verb swapped counts exactly the first attempts that run then makes.

Both commands are given one option list (``cli._RUN_OPTIONS``); check uses what changes
its count and accepts the rest without a word.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from enrich.cli import cli

SAMPLES = Path(__file__).resolve().parent.parent / "sample_data"

#: Options check accepts and ignores, each with a value run would take.
IGNORED: dict[str, list[str]] = {
    "output": ["-o", "out/x.xlsx"],
    "errors": ["--errors", "out/x.errors.csv"],
    "summary": ["--summary", "out/x.summary.json"],
    "metrics_file": ["--metrics-file", "out/x.prom"],
    "region_id": ["--region-id", "cn-hangzhou"],
    "concurrency": ["--concurrency", "3"],
    "max_attempts": ["--max-attempts", "2"],
    "timeout": ["--timeout", "2.5"],
    "max_error_rate": ["--max-error-rate", "0.1"],
    "progress": ["--progress"],
    "log_format": ["--log-format", "json"],
    "quota": ["--quota", "off"],
    "quota_name": ["--quota-name", "prod-account"],
}
#: Options that change check's count (each has a test below or in tests/test_check.py).
USED = frozenset({
    "job", "phone_column", "cust_space_id", "cust_space_column", "default_region", "sheet",
    "separator", "encoding", "header_row", "input_format", "rate", "cache", "no_cache",
    "max_age", "endpoint", "mock", "limit",
})


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def check_json(*args: str) -> dict:
    res = invoke("check", *args, "--json")
    assert res.exit_code == 0, res.output
    assert res.stderr == ""
    return json.loads(res.stdout)


def command(name: str) -> click.Command:
    found = cli.get_command(click.Context(cli), name)
    assert found is not None
    return found


def options(name: str) -> dict[str, click.Option]:
    return {str(p.name): p for p in command(name).params if isinstance(p, click.Option)}


# ------------------------------------------------------------ one list, both commands


def test_check_has_every_run_option_defined_alike() -> None:
    run, check = options("run"), options("check")
    assert set(check) - set(run) == {"as_json"}  # check's own --json
    assert not set(run) - set(check)
    for name, opt in run.items():
        twin = check[name]
        assert (twin.opts, twin.secondary_opts, twin.envvar, twin.multiple, twin.is_flag,
                twin.default, twin.type.name, twin.help) == (
            opt.opts, opt.secondary_opts, opt.envvar, opt.multiple, opt.is_flag,
            opt.default, opt.type.name, opt.help), name


def test_every_run_option_is_either_used_or_ignored_by_check() -> None:
    # a new run option makes this fail until someone says what check does with it
    assert set(options("run")) == USED | set(IGNORED)
    assert not USED & set(IGNORED)


def test_check_help_names_what_it_ignores() -> None:
    text = " ".join(str(command("check").help).split())  # what --help shows, unwrapped
    said = text[text.index("that do not change the count"):].split(") are accepted")[0]
    spelled = {opt.opts[-1] for name, opt in options("run").items() if name in IGNORED}
    assert {flag for flag in spelled if flag not in said} == set(), said


@pytest.fixture
def contacts(tmp_path: Path) -> Path:
    dst = tmp_path / "contacts.csv"
    shutil.copyfile(SAMPLES / "contacts.csv", dst)
    (tmp_path / "out").mkdir()
    return dst


def test_options_that_do_not_change_the_count_are_ignored(contacts: Path,
                                                           tmp_path: Path) -> None:
    base = [str(contacts), "--cust-space-id", "S1", "--cache", str(tmp_path / "c.sqlite3")]
    plain = check_json(*base)
    given = [arg for args in IGNORED.values() for arg in args]
    assert check_json(*base, *given) == plain
    for args in IGNORED.values():
        assert check_json(*base, *args) == plain, args
    # nothing is written: no output, report, summary, metrics or cache
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == [
        "contacts.csv", "out"]
    assert list((tmp_path / "out").iterdir()) == []


def test_the_run_flags_that_are_wrong_for_run_are_wrong_for_check(contacts: Path) -> None:
    # the values RunConfig checks: the same line and exit code for both verbs
    for args, line in [
        (["--rate", "0"], "--rate must be a positive number of requests per second, not 0"),
        (["--max-attempts", "0"], "--max-attempts must be at least 1, not 0"),
        (["--mock", "--endpoint", "http://127.0.0.1:1"],
         "give either --mock (the built-in emulator) or --endpoint, not both"),
    ]:
        res = invoke("check", str(contacts), *args)
        assert (res.exit_code, res.stderr) == (2, f"enrich: error: {line}\n"), args


def test_a_remote_plain_http_endpoint_is_refused_as_run_refuses_it(contacts: Path) -> None:
    res = invoke("check", str(contacts), "--endpoint", "http://cams.example.com")
    assert res.exit_code == 2
    assert "uses plain http to a non-loopback host" in res.stderr


# ------------------------------------------------------------ the cache run would use


def test_endpoint_mock_and_no_cache_pick_the_cache_run_uses(contacts: Path,
                                                            tmp_path: Path) -> None:
    folder = tmp_path / ".cache" / "cams-enrich"  # XDG_CACHE_HOME (tests/conftest.py)
    s1 = [str(contacts), "--cust-space-id", "S1"]
    assert check_json(*s1)["cache"] == str(folder / "ledger.sqlite3")
    assert check_json(*s1, "--endpoint", "https://cams.cn-hangzhou.aliyuncs.com")["cache"] == (
        str(folder / "ledger.sqlite3"))
    for local in ("http://127.0.0.1:8765", "http://localhost:1/", "http://[::1]:9"):
        assert check_json(*s1, "--endpoint", local)["cache"] == str(
            folder / "ledger-local.sqlite3"), local
    assert check_json(str(contacts), "--mock")["cache"] == str(folder / "ledger-mock.sqlite3")
    mine = tmp_path / "mine.sqlite3"
    assert check_json(*s1, "--endpoint", "http://127.0.0.1:1", "--cache", str(mine))["cache"] == (
        str(mine))
    r = check_json(*s1, "--no-cache")
    assert (r["cache"], r["fresh_in_cache"], r["calls_needed"]) == (None, 0, 29)


def test_the_endpoint_comes_from_the_environment_as_for_run(
    contacts: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAMS_ENDPOINT", "http://127.0.0.1:8765")
    r = check_json(str(contacts), "--cust-space-id", "S1")
    assert r["cache"] == str(tmp_path / ".cache" / "cams-enrich" / "ledger-local.sqlite3")


def test_rate_sets_the_estimate(contacts: Path) -> None:
    slow = check_json(str(contacts), "--cust-space-id", "S1", "--rate", "2")
    fast = check_json(str(contacts), "--cust-space-id", "S1", "--rate", "20")
    assert (slow["rate"], fast["rate"]) == (2.0, 20.0)
    assert slow["calls_needed"] == fast["calls_needed"] == 29
    assert slow["estimated_s"] == pytest.approx(10 * fast["estimated_s"], abs=0.1)


# ------------------------------------------------------------ swap the verb: same count


#: A CRM export as Excel on Windows saves it: cp1252, ';', a title line above the header,
#: national numbers, a .txt name. 24 numbers: 20 distinct valid ones (every fourth in a
#: space whose numbers are throttled once, then answered), 2 duplicates, 1 invalid, 1 blank.
def crm_export(path: Path) -> Path:
    lines = ["CRM export, 1 May;;", "Name;Tel;Space"]
    for i in range(20):
        space = "fault-throttle-1" if i % 4 == 0 else "S1"
        lines.append(f"José Müller {i};07700 900{i:03d};{space}")
    lines += ["Zoë;+44 7700 900003;S1", "Zoë;07700 900005;S1", "Åsa;abc;S1", "Noël;;S1"]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("cp1252"))
    return path


def test_check_counts_the_first_attempts_of_the_same_run(emulator, creds,
                                                         tmp_path: Path) -> None:
    server = emulator()
    src = crm_export(tmp_path / "crm.txt")
    (tmp_path / "out").mkdir()
    # every run option, as a cron line would give them; no --cache: the loopback
    # endpoint picks its own default cache, for check as for run
    line = [
        str(src), "-o", "out/crm.enriched.csv", "--errors", "out/e.csv",
        "--summary", "out/s.json", "--metrics-file", "out/m.prom",
        "--phone-column", "Tel", "--cust-space-column", "Space", "--default-region", "GB",
        "--separator", ";", "--encoding", "cp1252", "--header-row", "2",
        "--input-format", "csv", "--rate", "1000", "--max-age", "7d",
        "--region-id", "cn-hangzhou", "--endpoint", server.url, "--concurrency", "4",
        "--max-attempts", "3", "--timeout", "5", "--max-error-rate", "1.0",
        "--no-progress", "--log-format", "json", "--quota", "off", "--quota-name", "q",
    ]
    done = 0

    def swap_the_verb(*extra: str) -> tuple[dict, dict]:
        nonlocal done
        before = check_json(*line, *extra)
        res = invoke("run", *line, *extra)
        assert res.exit_code == 0, res.stderr
        summary = json.loads((tmp_path / "out" / "s.json").read_text())
        assert summary["api_calls"] == server.stats.requests_total - done
        done = server.stats.requests_total
        return before, summary

    # half of the numbers already in the endpoint's cache
    before, after = swap_the_verb("--limit", "10")
    assert before["calls_needed"] == after["api_calls"] - after["retries"] == 10
    assert after["retries"] == 3  # rows 1, 5 and 9 were throttled once
    # then the whole file: only the other half is called
    before, after = swap_the_verb()
    assert (before["fresh_in_cache"], after["cache_hits"]) == (10, 10)
    assert before["calls_needed"] == after["api_calls"] - after["retries"] == 10
    assert after["retries"] == 2
    for key in ("rows", "unique_numbers", "invalid"):
        assert before[key] == after[key], key
    assert (before["rows"], before["unique_numbers"], before["duplicates"]) == (24, 20, 2)
    assert before["cache"] == str(tmp_path / ".cache" / "cams-enrich" / "ledger-local.sqlite3")
    # the account's cache knows nothing of the emulator's answers (issue 16: check read
    # another cache and announced every number)
    no_endpoint = [a for a in line if a not in ("--endpoint", server.url)]
    assert check_json(*no_endpoint)["fresh_in_cache"] == 0
    assert sorted(server.stats.successes.values()) == [1] * 20


def test_a_job_file_checks_as_it_runs(emulator, creds, tmp_path: Path) -> None:
    server = emulator()
    crm_export(tmp_path / "crm.txt")
    job = tmp_path / "nightly.toml"
    job.write_text(
        'input = "crm.txt"\noutput = "crm-{date}.enriched.csv"\nphone_column = "Tel"\n'
        'cust_space_column = "Space"\ndefault_region = "GB"\nseparator = ";"\n'
        'encoding = "cp1252"\nheader_row = 2\ninput_format = "csv"\nrate = 1000\n'
        f'endpoint = "{server.url}"\nlog_format = "json"\nprogress = false\nquota = "off"\n'
    )
    before = check_json("--job", str(job), "--limit", "6")
    res = invoke("run", "--job", str(job), "--limit", "6")
    assert res.exit_code == 0, res.stderr
    (summary,) = tmp_path.glob("crm-*.summary.json")
    after = json.loads(summary.read_text())
    assert before["calls_needed"] == after["api_calls"] - after["retries"] == 6
    assert check_json("--job", str(job))["fresh_in_cache"] == 6


def test_sheet_and_header_row_are_read_as_run_reads_them(tmp_path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    cover = book.active
    assert cover is not None
    cover.title = "Cover"
    cover.append(["Leads, May"])
    data = book.create_sheet("Leads")
    data.append(["exported by the CRM"])
    data.append([])
    data.append(["name", "mobile"])
    for i in range(5):
        data.append([f"n{i}", f"+44 7700 900{i:03d}"])
    book.save(tmp_path / "leads.xlsx")
    r = check_json(str(tmp_path / "leads.xlsx"), "--mock", "--sheet", "Leads",
                   "--header-row", "3")
    assert (r["phone_column"], r["rows"], r["valid"], r["calls_needed"]) == ("mobile", 5, 5, 5)
    res = invoke("run", str(tmp_path / "leads.xlsx"), "--mock", "--sheet", "Leads",
                 "--header-row", "3", "--no-progress")
    assert res.exit_code == 0, res.stderr
    assert check_json(str(tmp_path / "leads.xlsx"), "--mock", "--sheet", "2",
                      "--header-row", "3")["calls_needed"] == 0
