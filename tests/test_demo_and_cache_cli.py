"""The README demo (--mock on every sample format), the cache commands, retries under the limit."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from enrich.cli import cli
from enrich.report import BP_COLUMNS

ROOT = Path(__file__).resolve().parent.parent


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.mark.parametrize("name", ["contacts.csv", "contacts.parquet", "contacts.xlsx"])
def test_mock_demo_writes_all_three_outputs(tmp_path: Path, name: str) -> None:
    shutil.copytree(ROOT / "sample_data", tmp_path / "sample_data")
    src = tmp_path / "sample_data" / name
    res = invoke("run", str(src), "--mock", "--no-progress")
    assert res.exit_code == 0, res.stderr
    stem, ext = src.stem, src.suffix
    out = src.with_name(f"{stem}.enriched{ext}")
    errors = src.with_name(f"{stem}.errors.csv")
    summary = json.loads(src.with_name(f"{stem}.summary.json").read_text())
    assert errors.exists()
    assert summary["rows"] == 40 and summary["throttled"] == 0
    if ext == ".csv":
        original = pl.read_csv(src, infer_schema=False)
        enriched = pl.read_csv(out, infer_schema=False)
    elif ext == ".parquet":
        original = pl.read_parquet(src)
        enriched = pl.read_parquet(out)
    else:
        original = pl.read_excel(src, engine="calamine")
        enriched = pl.read_excel(out, engine="calamine")
    assert enriched.columns == original.columns + list(BP_COLUMNS)
    assert enriched.select(original.columns).equals(original)  # same rows, same order


def test_cache_commands(emulator, creds, tmp_path: Path) -> None:
    server = emulator()
    src = tmp_path / "n.csv"
    src.write_text("phone\n+8613900000001\n+8613900000002\n")
    cache = str(tmp_path / "c.sqlite3")
    assert invoke("run", str(src), "--endpoint", server.url, "--cust-space-id", "S",
                  "--cache", cache).exit_code == 0
    stats = json.loads(invoke("cache", "stats", "--cache", cache).stdout)
    assert stats["entries"] == 2
    assert invoke("cache", "prune", "--cache", cache, "--older-than", "1d").stdout == (
        "pruned 0 answers older than 1d\n")
    assert invoke("cache", "clear", "--cache", cache).stdout == "cleared 2 answers\n"
    assert json.loads(invoke("cache", "stats", "--cache", cache).stdout)["entries"] == 0
    bad = invoke("cache", "prune", "--cache", cache, "--older-than", "soon")
    assert bad.exit_code == 2
    assert bad.stderr == (
        "enrich: error: --older-than 'soon' is not a duration such as 30m, 12h or 7d\n")


def test_cache_commands_never_create_a_cache(tmp_path: Path) -> None:
    missing = tmp_path / "typo" / "ledger.sqlite3"
    stats = invoke("cache", "stats", "--cache", str(missing))
    assert stats.exit_code == 1
    assert stats.stderr == (
        f"enrich: error: no cache at {missing}; pass the --cache PATH that run used\n")
    prune = invoke("cache", "prune", "--cache", str(missing), "--older-than", "30d")
    assert (prune.exit_code, prune.stdout) == (0, f"nothing to prune: no cache at {missing}\n")
    clear = invoke("cache", "clear", "--cache", str(missing))
    assert (clear.exit_code, clear.stdout) == (0, f"nothing to clear: no cache at {missing}\n")
    assert list(tmp_path.iterdir()) == []  # not even the folder


def test_mock_and_emulator_answers_never_land_in_the_account_cache(
    emulator, creds, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    src = tmp_path / "n.csv"
    src.write_text("phone\n+8613900000001\n")
    assert invoke("run", str(src), "--mock", "--no-progress").exit_code == 0
    server = emulator()
    res = invoke("run", str(src), "--endpoint", server.url, "--cust-space-id", "S1",
                 "--no-progress", "-o", "n.local.csv")
    assert res.exit_code == 0, res.stderr
    folder = tmp_path / "xdg" / "cams-enrich"
    # (beside them, the shared quota store: it keeps no answer)
    assert sorted(p.name for p in folder.glob("ledger*.sqlite3")) == [
        "ledger-local.sqlite3", "ledger-mock.sqlite3"]
    res = invoke("cache", "stats")
    assert res.exit_code == 1
    assert res.stderr == (
        f"enrich: error: no cache at {folder / 'ledger.sqlite3'} yet; --mock and emulator "
        f"answers are kept apart in {folder / 'ledger-mock.sqlite3'} and "
        f"{folder / 'ledger-local.sqlite3'}\n")
    for name in ("ledger-mock.sqlite3", "ledger-local.sqlite3"):
        stats = invoke("cache", "stats", "--cache", str(folder / name))
        assert json.loads(stats.stdout)["entries"] == 1


def test_retries_also_stay_under_the_limit(emulator, creds, tmp_path: Path) -> None:
    server = emulator(rate_limit=10)
    src = tmp_path / "n.csv"
    src.write_text("phone\n" + "".join(f"+86138{i:08d}\n" for i in range(12)))
    res = invoke("run", str(src), "--endpoint", server.url, "--cust-space-id",
                 "fault-http503_json-1", "--no-cache", "--rate", "10")
    assert res.exit_code == 0, res.stderr
    summary = json.loads((tmp_path / "n.summary.json").read_text())
    assert summary["api_calls"] == 24 and summary["retries"] == 12
    assert server.stats.requests_total == 24
    assert server.stats.max_in_window(1.0) <= 10
    assert server.stats.codes.get("System.LimitControl", 0) == 0
