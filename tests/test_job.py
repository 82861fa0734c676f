"""Job files: keys, ${ENV}, {date}, relative paths, flags override."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from enrich.errors import ConfigError, UsageError
from enrich.job import apply_job_file, load_job_file, parse_duration

NOW = 1_798_000_000.0  # 2026-12-23T...Z


def write(tmp_path: Path, text: str) -> Path:
    job = tmp_path / "jobs" / "nightly.toml"
    job.parent.mkdir(exist_ok=True)
    job.write_text(text)
    return job


def test_paths_relative_to_job_folder_with_date(tmp_path: Path) -> None:
    job = write(tmp_path, 'input = "../in/x.csv"\noutput = "out/x-{date}.csv"\n'
                          'summary = "/abs/s-{datetime}.json"\nrate = 5\nprogress = false\n')
    got = load_job_file(job, environ={}, now=NOW)
    day = time.strftime("%Y-%m-%d", time.gmtime(NOW))
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(NOW))
    assert got["input"] == (tmp_path / "jobs" / "../in/x.csv")
    assert got["output"] == tmp_path / "jobs" / "out" / f"x-{day}.csv"
    assert got["summary"] == Path(f"/abs/s-{stamp}.json")
    assert got["rate"] == 5.0 and got["progress"] is False


def test_env_interpolation_and_missing_variable(tmp_path: Path) -> None:
    job = write(tmp_path, 'input = "x.csv"\ncust_space_id = "${SPACE}"\n')
    assert load_job_file(job, environ={"SPACE": "123"})["cust_space_id"] == "123"
    with pytest.raises(ConfigError) as err:
        load_job_file(job, environ={})
    assert str(err.value) == "nightly.toml: cust_space_id uses ${SPACE} but SPACE is not set"


def test_flags_override_file_and_file_overrides_env_defaults(tmp_path: Path) -> None:
    job = write(tmp_path, 'input = "x.csv"\nrate = 5\nmax_attempts = 3\ncust_space_id = "F"\n')
    cfg = apply_job_file(job, {"rate": 2.0}, {"cust_space_id": "ENV", "timeout": 7.0},
                         environ={})
    assert cfg.rate == 2.0
    assert cfg.max_attempts == 3
    assert cfg.cust_space_id == "F"
    assert cfg.timeout == 7.0


def test_a_flag_replaces_the_file_value_unread(tmp_path: Path) -> None:
    job = write(tmp_path, 'input = "x.csv"\ncust_space_id = "${UNSET_SPACE}"\n'
                          'max_error_rate = 0.5\ncache = "c.sqlite3"\n')
    with pytest.raises(ConfigError, match="UNSET_SPACE is not set"):
        apply_job_file(job, {}, {}, environ={})
    cfg = apply_job_file(job, {"cust_space_id": "123", "max_error_rate": 0.0}, {}, environ={})
    assert (cfg.cust_space_id, cfg.max_error_rate) == ("123", 0.0)
    # an alternative given on the command line displaces the file's key
    cfg = apply_job_file(job, {"cust_space_column": "space", "no_cache": True}, {}, environ={})
    assert (cfg.cust_space_id, cfg.cust_space_column) == (None, "space")
    assert (cfg.cache, cfg.no_cache) == (None, True)


def test_mock_displaces_the_file_and_env_endpoint(tmp_path: Path) -> None:
    job = write(tmp_path, 'input = "x.csv"\ncust_space_id = "${UNSET_SPACE}"\n'
                          'endpoint = "https://cams.example.com"\n')
    cfg = apply_job_file(job, {"mock": True}, {"endpoint": "https://env.example.com"},
                         environ={})
    assert (cfg.mock, cfg.endpoint, cfg.cust_space_id) == (True, None, None)
    with pytest.raises(UsageError) as err:
        apply_job_file(job, {"mock": True, "endpoint": "http://127.0.0.1:1"}, {}, environ={})
    assert str(err.value) == (
        "give either --mock (the built-in emulator) or --endpoint, not both")


def test_a_stronger_layer_displaces_the_alternative_from_a_weaker_one(tmp_path: Path) -> None:
    env = {"cust_space_id": "ENV", "endpoint": "https://env.example.com"}
    column = write(tmp_path, 'input = "x.csv"\ncust_space_column = "space"\n')
    cfg = apply_job_file(column, {}, env, environ={})  # the file's column beats the env id
    assert (cfg.cust_space_id, cfg.cust_space_column) == (None, "space")
    cfg = apply_job_file(None, {"input": Path("x.csv"), "cust_space_column": "sp"}, env)
    assert (cfg.cust_space_id, cfg.cust_space_column) == (None, "sp")
    # --mock beats the env and file space ids (the demo space), unless given beside it
    spaced = write(tmp_path, 'input = "x.csv"\ncust_space_id = "FILE"\n')
    assert apply_job_file(spaced, {"mock": True}, env, environ={}).cust_space_id is None
    both = {"mock": True, "cust_space_id": "FLAG"}
    assert apply_job_file(spaced, both, env, environ={}).cust_space_id == "FLAG"
    # a file that asks for mock loses it to an --endpoint flag; both in the file clash
    mocked = write(tmp_path, 'input = "x.csv"\nmock = true\n')
    cfg = apply_job_file(mocked, {"endpoint": "http://127.0.0.1:9"}, {}, environ={})
    assert (cfg.mock, cfg.endpoint) == (False, "http://127.0.0.1:9")
    clash = write(tmp_path, 'input = "x.csv"\nmock = true\nendpoint = "https://a.example"\n')
    with pytest.raises(UsageError) as err:
        apply_job_file(clash, {}, {}, environ={})
    assert str(err.value) == "give either mock or endpoint in nightly.toml, not both"


def test_a_false_flag_also_replaces_the_file_value_unread(tmp_path: Path) -> None:
    job = write(tmp_path, 'input = "x.csv"\nprogress = "${UNSET_FLAG}"\n')
    assert apply_job_file(job, {"progress": False}, {}, environ={}).progress is False


def test_an_input_flag_makes_the_file_input_optional(tmp_path: Path) -> None:
    job = write(tmp_path, "rate = 5\n")
    cfg = apply_job_file(job, {"input": Path("y.csv")}, {}, environ={})
    assert (cfg.input, cfg.rate) == (Path("y.csv"), 5.0)


@pytest.mark.parametrize(("text", "message"), [
    ('rate = 5\n', 'nightly.toml: no input = "..." key; name the file to enrich'),
    ('input = "x.csv"\nbogus = 1\n', "nightly.toml: unknown key 'bogus'; known keys: "),
    ('input = [\n', "nightly.toml is not valid TOML"),
    ('input = "x.csv"\n[table]\nrate = 1\n', "nightly.toml: [table] tables are not supported"),
])
def test_bad_job_files(tmp_path: Path, text: str, message: str) -> None:
    job = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_job_file(job, environ={})
    assert str(err.value).startswith(message)


# ------------------------------------------------------------ did you mean (16.8)


@pytest.mark.parametrize(("key", "line"), [
    ("cust-space-id", "nightly.toml: unknown key 'cust-space-id'; did you mean cust_space_id? "
                      "(keys are the long run options with _ for -)"),
    ("max-error-rate", "nightly.toml: unknown key 'max-error-rate'; did you mean "
                       "max_error_rate? (keys are the long run options with _ for -)"),
    ("--rate", "nightly.toml: unknown key '--rate'; did you mean rate? "
               "(keys are the long run options with _ for -)"),
    ("cust_spcae_id", "nightly.toml: unknown key 'cust_spcae_id'; did you mean cust_space_id?"),
    ("max_attemps", "nightly.toml: unknown key 'max_attemps'; did you mean max_attempts?"),
    ("ouput", "nightly.toml: unknown key 'ouput'; did you mean output?"),
    ("Rate", "nightly.toml: unknown key 'Rate'; did you mean rate? "
             "(keys are the long run options with _ for -)"),
])
def test_a_misspelt_key_gets_did_you_mean(tmp_path: Path, key: str, line: str) -> None:
    job = write(tmp_path, f'input = "x.csv"\n"{key}" = "5"\n')
    with pytest.raises(ConfigError) as err:
        load_job_file(job, environ={})
    assert str(err.value) == line
    assert err.value.exit_code == 1


def test_a_key_close_to_nothing_lists_the_keys(tmp_path: Path) -> None:
    # difflib's 0.6 would say sheet; a wrong guess is worse than the list
    job = write(tmp_path, 'input = "x.csv"\nspeed = 5\n')
    with pytest.raises(ConfigError) as err:
        load_job_file(job, environ={})
    text = str(err.value)
    assert text.startswith("nightly.toml: unknown key 'speed'; known keys: cache, concurrency,")
    assert "did you mean" not in text and "job_name" not in text
    assert "\n" not in text


def test_job_name_is_no_job_file_key(tmp_path: Path) -> None:
    job = write(tmp_path, 'input = "x.csv"\njob_name = "other"\n')
    with pytest.raises(ConfigError, match="unknown key 'job_name'"):
        load_job_file(job, environ={})


# ------------------------------------------------------------ value errors (16.8)


@pytest.mark.parametrize(("text", "line"), [
    ('rate = "fast"', 'rate in nightly.toml: must be a number, not "fast"'),
    ("progress = \"yes\"", 'progress in nightly.toml: must be true or false, not "yes"'),
    ("max_attempts = 2.5", "max_attempts in nightly.toml: must be a whole number, not 2.5"),
    ("limit = true", "limit in nightly.toml: must be a whole number, not true"),
    ('log_format = "xml"', 'log_format in nightly.toml: must be "text" or "json", not "xml"'),
    ('input_format = "xls"',
     'input_format in nightly.toml: must be one of csv, tsv, parquet, xlsx, not "xls"'),
    ("cust_space_id = 2934839388494",
     'cust_space_id in nightly.toml: must be a string (in quotes: cust_space_id = '
     '"2934839388494"), not 2934839388494'),
    ("phone_column = [1, 2]",
     "phone_column in nightly.toml: must be a string or a list of strings, not [1, 2]"),
    ("output = 5", "output in nightly.toml: must be a path in quotes, not 5"),
])
def test_a_value_of_the_wrong_kind_names_the_key(tmp_path: Path, text: str, line: str) -> None:
    job = write(tmp_path, f'input = "x.csv"\n{text}\n')
    with pytest.raises(UsageError) as err:
        load_job_file(job, environ={})
    assert str(err.value) == line
    assert err.value.exit_code == 2  # as --rate fast is


@pytest.mark.parametrize(("text", "line"), [
    ("rate = 0", "rate in nightly.toml: must be a positive number of requests per second, "
                 "not 0"),
    ("concurrency = 0", "concurrency in nightly.toml: must be at least 1, not 0"),
    ("max_attempts = 0", "max_attempts in nightly.toml: must be at least 1, not 0"),
    ("timeout = -1", "timeout in nightly.toml: must be a positive number of seconds, not -1"),
    ("max_error_rate = 1.5", "max_error_rate in nightly.toml: must be between 0 and 1, not 1.5"),
    ("limit = 0", "limit in nightly.toml: must be at least 1, not 0"),
    ('separator = ";;"', "separator in nightly.toml: must be one character, not ';;'"),
    ("header_row = 0",
     "header_row in nightly.toml: must be at least 1 (the first line or row), not 0"),
    ('encoding = "klingon"', "encoding in nightly.toml: unknown encoding 'klingon'; use utf-8, "
                             'cp1252 (Excel\'s "CSV (Comma delimited)"), latin-1, …'),
    ('max_age = "a week"',
     "max_age in nightly.toml: 'a week' is not a duration such as 30m, 12h or 7d"),
    ('cust_space_id = "a"\ncust_space_column = "b"',
     "give either cust_space_id or cust_space_column in nightly.toml, not both"),
    ('cache = "c.sqlite3"\nno_cache = true',
     "give either cache or no_cache in nightly.toml, not both"),
])
def test_a_value_out_of_range_names_the_key(tmp_path: Path, text: str, line: str) -> None:
    job = write(tmp_path, f'input = "x.csv"\n{text}\n')
    with pytest.raises(UsageError) as err:
        apply_job_file(job, {}, {}, environ={})
    assert str(err.value) == line
    assert err.value.exit_code == 2


def test_a_flag_that_replaces_the_value_is_named_as_a_flag(tmp_path: Path) -> None:
    job = write(tmp_path, 'input = "x.csv"\nrate = 0\nmax_attempts = 0\n')
    with pytest.raises(UsageError) as err:
        apply_job_file(job, {"rate": 0.0, "max_attempts": 3}, {}, environ={})
    assert str(err.value) == "--rate must be a positive number of requests per second, not 0"
    # two flags that exclude each other beside a job file: named as flags
    job = write(tmp_path, 'input = "x.csv"\nmax_error_rate = 0.5\n')
    with pytest.raises(UsageError) as err:
        apply_job_file(job, {"mock": True, "endpoint": "http://127.0.0.1:1"}, {}, environ={})
    assert str(err.value) == "give either --mock (the built-in emulator) or --endpoint, not both"


def test_a_sheet_position_may_be_a_number(tmp_path: Path) -> None:
    job = write(tmp_path, 'input = "x.xlsx"\nsheet = 2\n')
    assert load_job_file(job, environ={})["sheet"] == "2"


@pytest.mark.parametrize("command", ["run", "check"])
@pytest.mark.parametrize(("text", "code", "line"), [
    ('rate = "fast"', 2, 'rate in nightly.toml: must be a number, not "fast"'),
    ("rate = 0", 2, "rate in nightly.toml: must be a positive number of requests per second, "
                    "not 0"),
    ('cust-space-id = "S1"', 1, "nightly.toml: unknown key 'cust-space-id'; did you mean "
                                "cust_space_id? (keys are the long run options with _ for -)"),
])
def test_the_command_line_shows_one_line_and_the_flags_exit_code(
    tmp_path: Path, command: str, text: str, code: int, line: str
) -> None:
    from click.testing import CliRunner

    from enrich.cli import cli

    (tmp_path / "x.csv").write_text("phone\n+8613800138000\n")
    job = write(tmp_path, f'input = "../x.csv"\n{text}\n')
    res = CliRunner().invoke(cli, [command, "--job", str(job), "--mock"])
    assert (res.exit_code, res.stderr) == (code, f"enrich: error: {line}\n")
    assert res.stdout == ""
    flag = CliRunner().invoke(cli, [command, str(tmp_path / "x.csv"), "--mock", "--rate", "fast"])
    assert flag.exit_code == 2  # what the job value's exit code follows


def test_missing_job_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"job file .*nope\.toml not found"):
        load_job_file(tmp_path / "nope.toml", environ={})


@pytest.mark.parametrize(("overrides", "message"), [
    ({"rate": 0.0}, "--rate must be a positive number of requests per second, not 0"),
    ({"max_attempts": 0}, "--max-attempts must be at least 1, not 0"),
    ({"timeout": -1.0}, "--timeout must be a positive number of seconds, not -1"),
    ({"max_error_rate": 1.5}, "--max-error-rate must be between 0 and 1, not 1.5"),
    ({"max_age": "soon"}, "--max-age 'soon' is not a duration such as 30m, 12h or 7d"),
    ({"cust_space_id": "a", "cust_space_column": "b"},
     "give either --cust-space-id or --cust-space-column, not both"),
])
def test_usage_errors(overrides: dict, message: str) -> None:
    with pytest.raises(UsageError) as err:
        apply_job_file(None, {"input": Path("x.csv"), **overrides}, {})
    assert str(err.value) == message


def test_durations() -> None:
    assert parse_duration("30m", option="x") == 1800
    assert parse_duration("12h", option="x") == 43200
    assert parse_duration("7d", option="x") == 604800
    assert parse_duration("1.5h", option="x") == 5400
