"""The Python API (``enrich.enrich_frame`` / ``enrich_frame_async`` / ``enrich_file``)
against the emulator as a real server on 127.0.0.1: the same values as ``enrich run``,
inside a running event loop, pandas in and out, exceptions instead of exit codes, an
interrupt that keeps the cache, and no progress bar where nobody watches."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

import enrich
import enrich.cli
import enrich.errors
from enrich.report import API_TEXT_COLUMNS, BP_COLUMNS, ERROR_COLUMNS

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
#: Request id and answer time differ between two runs that each ask the service.
PER_CALL = ("bp_fetched_at", "bp_request_id")


@pytest.fixture
def contacts(tmp_path: Path) -> Path:
    path = tmp_path / "contacts.csv"
    path.write_text(CSV_TEXT, encoding="utf-8")
    return path


def numbers(n: int, prefix: str = "+86139") -> list[str]:
    return [f"{prefix}{i:08d}" for i in range(n)]


def cached_keys(cache: Path) -> list[tuple[str, str]]:
    with contextlib.closing(sqlite3.connect(cache)) as db:
        return sorted(db.execute("SELECT cust_space_id, phone FROM answers").fetchall())


def as_csv_writes_it(frame: pl.DataFrame) -> pl.DataFrame:
    """The enriched frame as ``enrich run`` puts it in a CSV: websites joined by a space,
    API text neutralised against formulas, every value text."""

    def neutral(col: pl.Expr) -> pl.Expr:
        return pl.when(col.str.contains(r"^[=+\-@\t\r]")).then(pl.lit("'") + col).otherwise(col)

    sites = pl.col("bp_websites").list.eval(neutral(pl.element())).list.join(" ")
    return frame.with_columns(
        pl.when(sites == "").then(None).otherwise(sites).alias("bp_websites")
    ).with_columns(
        *(neutral(pl.col(c)).alias(c) for c in API_TEXT_COLUMNS if c != "bp_websites"),
    ).cast(pl.String)


# -- 1. the same values as `enrich run` ----------------------------------------------


def test_the_frame_holds_what_enrich_run_writes(emulator, creds, contacts, tmp_path) -> None:
    server = emulator()
    cli_cache = tmp_path / "cli.sqlite3"
    res = CliRunner().invoke(enrich.cli.cli, [
        "run", str(contacts), "--endpoint", server.url, "--cust-space-id", "c1",
        "--cache", str(cli_cache), "--no-progress",
    ])  # fmt: skip
    assert res.exit_code == 0, res.stderr
    written = pl.read_csv(tmp_path / "contacts.enriched.csv", infer_schema=False)
    written_errors = pl.read_csv(tmp_path / "contacts.errors.csv", infer_schema=False)
    summary = json.loads((tmp_path / "contacts.summary.json").read_text())
    df = pl.read_csv(contacts, infer_schema=False)

    # its own cache: the service is asked again, and answers the same
    own = enrich.enrich_frame(df, endpoint=server.url, cust_space_id="c1",
                              cache=tmp_path / "api.sqlite3", progress=False)
    assert isinstance(own.frame, pl.DataFrame)
    assert own.frame.columns == written.columns == [*df.columns, *BP_COLUMNS]
    assert own.frame.select(df.columns).equals(df)  # the caller's columns as given
    assert own.frame.schema["bp_websites"] == pl.List(pl.String)  # a list, as in Parquet
    assert own.frame["bp_websites"].list.len().sum() > 0
    assert as_csv_writes_it(own.frame).drop(PER_CALL).equals(written.drop(PER_CALL))
    assert own.summary["api_calls"] == summary["api_calls"] == 5
    for key in ("rows", "unique_numbers", "invalid", "ok", "no_profile", "error_rows",
                "errors_by_code", "exit_code"):
        assert own.summary[key] == summary[key], key
    assert own.summary["output"] is None
    assert own.output is own.errors_path is own.summary_path is None
    assert own.errors.columns == list(ERROR_COLUMNS)
    # source_row is where the user sees the row: a file line for the CLI, the frame row here
    assert own.errors.cast(pl.String).drop("source_row").equals(written_errors.drop("source_row"))

    # the command's cache: every answer from it, so every value the same
    same = enrich.enrich_frame(df, endpoint=server.url, cust_space_id="c1", cache=cli_cache,
                               progress=False)
    assert same.summary["api_calls"] == 0
    assert same.summary["cache_hits"] == 5
    assert as_csv_writes_it(same.frame).equals(written)


def test_enrich_file_does_what_enrich_run_does(emulator, creds, contacts, tmp_path) -> None:
    server = emulator()
    out = tmp_path / "out" / "leads.parquet"
    out.parent.mkdir()
    result = enrich.enrich_file(contacts, output=out, endpoint=server.url, cust_space_id="c1",
                                cache=str(tmp_path / "c.sqlite3"), progress=False)
    assert result.output == out
    assert result.errors_path == out.with_name("leads.errors.csv")  # named after the output
    assert result.summary_path == out.with_name("leads.summary.json")
    assert result.frame.equals(pl.read_parquet(out))
    assert result.errors.equals(pl.read_csv(result.errors_path, infer_schema=False))
    assert result.summary == json.loads(result.summary_path.read_text())
    assert result.summary["ok"] + result.summary["no_profile"] == 7


# -- 2. inside a running event loop ---------------------------------------------------


def test_inside_a_running_event_loop(emulator, creds, tmp_path) -> None:
    server = emulator()
    df = pl.DataFrame({"phone": numbers(5)})
    options = {"endpoint": server.url, "cust_space_id": "c1", "cache": tmp_path / "c.sqlite3",
               "progress": False}

    async def notebook_cell() -> tuple[enrich.Result, enrich.Result]:
        ticks = asyncio.create_task(asyncio.sleep(0))  # the caller's loop is running
        blocking = enrich.enrich_frame(df, **options)  # as a Jupyter cell calls it
        awaited = await enrich.enrich_frame_async(df, **options)
        await ticks
        return blocking, awaited

    blocking, awaited = asyncio.run(notebook_cell())
    assert blocking.summary["api_calls"] == 5
    assert awaited.summary["api_calls"] == 0 and awaited.summary["cache_hits"] == 5
    assert awaited.frame.equals(blocking.frame)
    assert set(blocking.frame["bp_status"]) <= {"ok", "no_profile"}


# -- 3. pandas in, pandas out ---------------------------------------------------------


def test_pandas_comes_back_as_pandas_with_its_index_and_dtypes() -> None:
    pd = pytest.importorskip("pandas")
    np = pytest.importorskip("numpy")
    df = pd.DataFrame(
        {
            "name": ["Ana", None, "Cy", "Di", "Ed"],
            # a phone column with blanks, as pandas reads one: float64 with NaN
            "phone": [8613800138000, np.nan, 8613800138001, 8613800138000, 12],
            "visits": [1, 2, 3, 4, 5],
            "spend": [1.5, np.nan, 2.25, 0.0, 3.0],
            "vip": [True, False, True, False, True],
            "joined": pd.to_datetime(["2024-01-02", None, "2024-03-04", "2024-05-06",
                                      "2024-07-08"]),
            "visits_opt": pd.array([1, None, 3, 4, 5], dtype="Int64"),
        },
        index=pd.Index(["r1", "r2", "r3", "r4", "r5"], name="key"),
    )
    assert df["phone"].dtype == "float64"
    before = df.copy()

    result = enrich.enrich_frame(df, mock=True, default_region="GB", progress=False)

    out = result.frame
    assert isinstance(out, pd.DataFrame)
    pd.testing.assert_frame_equal(out[df.columns], df)  # index, dtypes, values, nulls
    pd.testing.assert_frame_equal(df, before)  # the caller's frame is not touched
    assert list(out.columns) == [*df.columns, *BP_COLUMNS]
    assert out["bp_status"].to_dict() == {
        "r1": out.loc["r1", "bp_status"], "r2": "invalid_phone", "r3": out.loc["r3", "bp_status"],
        "r4": out.loc["r1", "bp_status"], "r5": "invalid_phone",
    }  # fmt: skip
    assert {out.loc["r1", "bp_status"], out.loc["r3", "bp_status"]} <= {"ok", "no_profile"}
    assert out.loc["r1", "bp_phone"] == "8613800138000"  # never 8.6138e12
    assert out.loc["r2", "bp_phone"] is None
    assert out.loc["r2", "bp_error_code"] == "Client.MissingPhone"
    assert out.loc["r5", "bp_error_code"] == "Client.InvalidPhone"
    # a list per enriched row, as in polars; None for a number never sent
    assert [type(v).__name__ for v in out["bp_websites"]] == ["list", "NoneType", "list",
                                                             "list", "NoneType"]
    assert result.summary["api_calls"] == 2

    errors = result.errors
    assert isinstance(errors, pd.DataFrame)
    assert list(errors.columns) == list(ERROR_COLUMNS)
    assert errors["row"].tolist() == [2, 5]
    assert errors["error_code"].tolist() == ["Client.MissingPhone", "Client.InvalidPhone"]


def test_pandas_needs_no_pyarrow() -> None:
    pytest.importorskip("pandas")
    code = (
        "import sys\n"
        "sys.modules['pyarrow'] = None  # as if it were not installed\n"
        "import pandas as pd, enrich\n"
        "df = pd.DataFrame({'phone': ['+8613800138000', None], 'n': ['a', 'b']})\n"
        "r = enrich.enrich_frame(df, mock=True, progress=False)\n"
        "print(list(r.frame['bp_status']))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=child_env(), timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() in ("['ok', 'invalid_phone']", "['no_profile', 'invalid_phone']")



def test_the_environment_stands_in_for_keywords_as_for_the_command(
    emulator, creds, monkeypatch, tmp_path
) -> None:
    server = emulator()
    cache = tmp_path / "c.sqlite3"
    monkeypatch.setenv("CAMS_CUST_SPACE_ID", "env-space")
    monkeypatch.setenv("CAMS_ENDPOINT", server.url)
    df = pl.DataFrame({"space": ["col-space"] * 2, "phone": numbers(2)})
    enrich.enrich_frame(df, cache=cache, progress=False)
    # a keyword displaces the environment's alternative, as a flag does
    enrich.enrich_frame(df, cache=cache, cust_space_column="space", progress=False)
    assert {space for space, _ in cached_keys(cache)} == {"env-space", "col-space"}
    assert server.stats.requests_total == 4
    mocked = enrich.enrich_frame(df, mock=True, progress=False)  # CAMS_ENDPOINT ignored
    assert mocked.summary["api_calls"] == 2
    assert server.stats.requests_total == 4


def test_the_same_environment_variables_as_the_command() -> None:
    import click

    from enrich.api import _ENVIRONMENT

    run = enrich.cli.cli.get_command(click.Context(enrich.cli.cli), "run")
    assert run is not None
    from_click = {p.name: p.envvar for p in run.params if isinstance(p, click.Option) and p.envvar}
    assert from_click == _ENVIRONMENT

# -- 4. exceptions, never SystemExit ---------------------------------------------------


def test_no_credentials_is_an_input_error(server) -> None:
    df = pl.DataFrame({"phone": ["+8613800138000"]})
    with pytest.raises(enrich.InputError, match=r"^no Alibaba Cloud credentials found; ") as e:
        enrich.enrich_frame(df, endpoint=server.url, cust_space_id="c1", progress=False)
    assert "Set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET" in str(e.value)
    assert e.value.exit_code == 1
    assert server.stats.requests_total == 0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"rate": 0}, "--rate must be a positive number of requests per second, not 0"),
        ({"max_attempts": 0}, "--max-attempts must be at least 1, not 0"),
        ({"rate": "fast"}, "rate must be int or float, not 'fast'"),
        ({"limit": 2.5}, "limit must be int, not 2.5"),
        ({"mock": "yes"}, "mock must be bool, not 'yes'"),
        ({"log_format": "xml"}, "log_format must be one of 'text'/'json', not 'xml'"),
        ({"colour": "red"}, "unknown option(s) colour"),
        ({"output": "x.csv"}, "unknown option(s) output (a frame in memory has no files)"),
        ({"cust_space_id": "1", "cust_space_column": "s"},
         "give either --cust-space-id or --cust-space-column, not both"),
    ],
)
def test_a_bad_option_is_a_usage_error(options: dict[str, object], message: str) -> None:
    df = pl.DataFrame({"phone": ["+8613800138000"]})
    with pytest.raises(enrich.UsageError) as e:
        enrich.enrich_frame(df, progress=False, **options)
    assert str(e.value) == message
    assert e.value.exit_code == 2


def test_not_a_frame_is_a_usage_error() -> None:
    with pytest.raises(enrich.UsageError, match=r"^enrich_frame takes a polars or pandas "
                                                r"DataFrame, not list$"):
        enrich.enrich_frame([{"phone": "+8613800138000"}], mock=True)


def test_a_missing_phone_column_is_an_input_error() -> None:
    df = pl.DataFrame({"name": ["Ana"]})
    with pytest.raises(enrich.InputError, match=r"^no phone column found in <frame>"):
        enrich.enrich_frame(df, mock=True, progress=False)


def test_a_fatal_account_error_mid_run_keeps_the_answers_so_far(emulator, creds,
                                                                tmp_path) -> None:
    server = emulator()
    cache = tmp_path / "c.sqlite3"
    spaces = ["S1"] * 10 + ["err-Product.Unsubscript"] * 10
    df = pl.DataFrame({"space": spaces, "phone": numbers(20)})
    with pytest.raises(enrich.FatalApiError) as e:
        enrich.enrich_frame(df, endpoint=server.url, cust_space_column="space", cache=cache,
                            concurrency=1, progress=False)
    assert str(e.value).startswith(
        "aborted: the API answered Product.Unsubscript (You have not subscribed to the "
        "specified product.); subscribe the account to ChatApp Message Service (CAMS). "
    )
    assert e.value.exit_code == 3
    assert isinstance(e.value, enrich.EnrichError)
    # one at a time, in input order: the S1 answers came before the fatal one
    assert cached_keys(cache) == [("S1", n.lstrip("+")) for n in numbers(10)]
    assert server.stats.requests_total == 11
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == [
        "c.sqlite3"
    ]  # nothing else written


def test_enrich_file_raises_too_and_writes_nothing(emulator, creds, contacts, tmp_path) -> None:
    server = emulator(force_code="Ram.PermissionDeny")
    with pytest.raises(enrich.FatalApiError, match=r"^aborted: the API answered "
                                                   r"Ram.PermissionDeny "):
        enrich.enrich_file(contacts, endpoint=server.url, cust_space_id="c1",
                           cache=tmp_path / "c.sqlite3", progress=False)
    assert not list(tmp_path.glob("contacts.*.*"))
    assert cached_keys(tmp_path / "c.sqlite3") == []


# -- 5. an interrupt ------------------------------------------------------------------

INTERRUPTED = r"""
import sys, time
import polars as pl
import enrich

df = pl.DataFrame({"phone": [f"+86139{i:08d}" for i in range(int(sys.argv[3]))]})
print("ready", flush=True)
try:
    enrich.enrich_frame(df, endpoint=sys.argv[1], cust_space_id="c1", cache=sys.argv[2],
                        rate=20, progress=False)
except KeyboardInterrupt as e:
    print(f"stopped at {time.monotonic():.3f} by {e!r}", flush=True)
else:
    print("finished", flush=True)
"""


def child_env(**extra: str) -> dict[str, str]:
    """The test's own hermetic environment (conftest's), for a child process."""
    return {**os.environ, **extra}


def test_an_interrupt_cancels_keeps_the_answers_and_reraises(emulator, creds, tmp_path) -> None:
    n = 60
    server = emulator(latency_s=0.2)
    cache = tmp_path / "c.sqlite3"
    proc = subprocess.Popen([sys.executable, "-c", INTERRUPTED, server.url, str(cache), str(n)],
                            env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
        deadline = time.monotonic() + 15
        while server.stats.requests_total < 15 and time.monotonic() < deadline:
            time.sleep(0.005)  # about 0.8 s into the run, of its 3 s at 20/s
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    line = out.strip()
    assert line.startswith("stopped at ") and line.endswith(" by KeyboardInterrupt()"), out + err
    stopped = float(line.split()[2])  # CLOCK_MONOTONIC: the same clock in both processes
    assert stopped - sent < 3.0
    assert "Traceback" not in err

    kept = len(cached_keys(cache))
    assert 0 < kept < n
    calls_before = server.stats.requests_total

    df = pl.DataFrame({"phone": numbers(n)})
    again = enrich.enrich_frame(df, endpoint=server.url, cust_space_id="c1", cache=cache,
                                rate=50, progress=False)
    assert again.summary["cache_hits"] == kept
    assert again.summary["api_calls"] == n - kept
    assert server.stats.requests_total - calls_before == n - kept
    assert again.summary["ok"] + again.summary["no_profile"] == n


# -- 6. progress ----------------------------------------------------------------------


def log_lines_only(stderr: str) -> bool:
    return all(line.startswith("enrich: ") for line in stderr.splitlines())


def test_no_progress_gives_log_lines_only(emulator, creds, tmp_path, capfd) -> None:
    server = emulator()
    df = pl.DataFrame({"phone": numbers(3)})
    enrich.enrich_frame(df, endpoint=server.url, cust_space_id="c1", no_cache=True,
                        progress=False)
    out, err = capfd.readouterr()
    assert out == ""
    assert err.splitlines()[0] == "enrich: 3 rows, 3 distinct numbers from <frame> " \
                                  "(credentials: environment)"
    assert err.splitlines()[-1].startswith("enrich: done: ")
    assert log_lines_only(err), err

    enrich.enrich_frame(df, endpoint=server.url, cust_space_id="c1", no_cache=True,
                        progress=True)  # asked for: drawn even on a pipe
    out, err = capfd.readouterr()
    assert out == ""
    assert not log_lines_only(err), err


def test_a_script_whose_stderr_is_not_a_terminal_gets_no_bar(tmp_path) -> None:
    code = (
        "import polars as pl, enrich\n"
        "r = enrich.enrich_frame(pl.DataFrame({'phone': ['+8613800138000', '+8613800138001']}),"
        " mock=True)\n"
        "print(r.summary['rows'])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=child_env(), timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "2\n"
    assert log_lines_only(proc.stderr), proc.stderr
    assert proc.stderr.splitlines()[-1].startswith("enrich: done: ")


# -- 7. the public names --------------------------------------------------------------


def test_every_public_name_exists() -> None:
    assert sorted(enrich.__all__) == enrich.__all__
    for name in enrich.__all__:
        assert getattr(enrich, name) is not None, name
    assert enrich.FatalApiError is enrich.errors.FatalApiError
    assert issubclass(enrich.InputError, enrich.EnrichError)
    with pytest.raises(AttributeError, match="has no attribute 'enrich_frames'"):
        enrich.enrich_frames  # noqa: B018
    fields = {f.name for f in enrich.Result.__dataclass_fields__.values()}
    assert fields == {"frame", "errors", "summary", "output", "errors_path", "summary_path"}


def test_import_enrich_does_not_import_polars() -> None:
    code = "import sys, enrich; print('polars' in sys.modules, enrich.enrich_frame.__name__)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "False enrich_frame\n"


SNIPPET = '''
from __future__ import annotations

import polars as pl

import enrich


def cell(df: pl.DataFrame) -> int:
    try:
        result: enrich.Result = enrich.enrich_frame(df, cust_space_id="1", default_region="GB")
    except enrich.FatalApiError as e:
        return e.exit_code
    summary: dict[str, object] = result.summary
    print(summary, result.output, result.errors_path)
    return len(result.frame)


async def async_cell(df: pl.DataFrame) -> enrich.Result:
    return await enrich.enrich_frame_async(df, mock=True, progress=False)


def file() -> enrich.Result:
    return enrich.enrich_file("leads.xlsx", output="leads.enriched.xlsx", mock=True)
'''


def test_mypy_strict_accepts_code_using_the_api(tmp_path) -> None:
    pytest.importorskip("mypy")
    snippet = tmp_path / "snippet.py"
    snippet.write_text(SNIPPET + "\nreveal_type(enrich.enrich_frame)\n")
    # enrich as an installed package is seen (the editable install's import hook is not
    # something mypy follows): found on MYPYPATH, its own modules checked silently
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent",
         "--no-incremental", "--cache-dir", os.devnull, str(snippet)],
        capture_output=True, text=True, timeout=110, cwd=tmp_path,
        env=child_env(MYPYPATH=str(Path(enrich.__file__).parent.parent)),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'Revealed type is "def (df: Any, **options: Any) -> enrich.api.Result"' in proc.stdout
