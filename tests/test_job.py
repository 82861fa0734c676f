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
    with pytest.raises(UsageError, match="either --mock"):
        apply_job_file(clash, {}, {}, environ={})


def test_a_false_flag_also_replaces_the_file_value_unread(tmp_path: Path) -> None:
    job = write(tmp_path, 'input = "x.csv"\nprogress = "${UNSET_FLAG}"\n')
    assert apply_job_file(job, {"progress": False}, {}, environ={}).progress is False


def test_an_input_flag_makes_the_file_input_optional(tmp_path: Path) -> None:
    job = write(tmp_path, "rate = 5\n")
    cfg = apply_job_file(job, {"input": Path("y.csv")}, {}, environ={})
    assert (cfg.input, cfg.rate) == (Path("y.csv"), 5.0)


@pytest.mark.parametrize(("text", "message"), [
    ('rate = 5\n', 'nightly.toml: no input = "..." key; name the file to enrich'),
    ('input = "x.csv"\nbogus = 1\n', "nightly.toml: unknown key 'bogus'"),
    ('input = "x.csv"\nrate = "fast"\n', "nightly.toml: rate must be a number"),
    ('input = "x.csv"\nprogress = "yes"\n', "nightly.toml: progress must be true or false"),
    ('input = [\n', "nightly.toml is not valid TOML"),
])
def test_bad_job_files(tmp_path: Path, text: str, message: str) -> None:
    job = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_job_file(job, environ={})
    assert str(err.value).startswith(message)


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
