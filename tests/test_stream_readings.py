"""Cells read by an earlier run come from the ledger, exactly as if read afresh (issue 13)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enrich import phones
from enrich.cache import Ledger
from enrich.job import RunConfig
from enrich.prepare import Readings

_PIECES = st.sampled_from(
    ["+", "00", "0", "86", "44", "1", " ", "-", "(", ")", ".", "138", "0013", "8000", "7700",
     "900123", "20 7946 0958", "ext 12", "x", ";", ",", "/", " ::: ", "tel:", "1e+12", ".0"]
)  # fmt: skip
_CELLS = st.lists(_PIECES, min_size=1, max_size=6).map("".join)


def _cfg(tmp: Path, region: str | None) -> RunConfig:
    return RunConfig(input=tmp / "in.csv", cache=tmp / "ledger.sqlite3", default_region=region)


def _read(cfg: RunConfig, cells: list[str]) -> list[tuple[object, ...]]:
    got = Readings(cfg, workers=1).read(pl.Series("raw", cells, dtype=pl.String))
    by_raw = {raw: (number, err, multi) for raw, number, err, multi in got.iter_rows()}
    return [by_raw[c] for c in cells]


def _afresh(cells: list[str], region: str | None) -> list[tuple[object, ...]]:
    out = []
    for c in cells:
        r = phones.normalize_cell(c, default_region=region)
        out.append((r.number, r.error, r.several))
    return out


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    cells=st.lists(_CELLS, min_size=1, max_size=30, unique=True),
    region=st.sampled_from([None, "GB", "CN", "US"]),
)
def test_a_remembered_reading_is_the_reading_afresh(
    tmp_path: Path, cells: list[str], region: str | None
) -> None:
    cfg = _cfg(tmp_path, region)
    Ledger(cfg.cache).close()
    first = _read(cfg, cells)  # read and remembered
    again = Readings(cfg, workers=1)
    second = _read(cfg, cells)  # from the ledger
    assert first == second == _afresh(cells, region)
    del again


def test_readings_are_remembered_and_reused(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, None)
    Ledger(cfg.cache).close()
    cells = pl.Series("raw", ["+86 138 0013 8000", "nope", "8613800138001"])
    first = Readings(cfg, workers=1)
    first.read(cells)
    assert (first.remembered, first.read_now) == (0, 3)
    second = Readings(cfg, workers=1)
    second.read(cells)
    assert (second.remembered, second.read_now) == (3, 0)


def test_another_region_or_another_phonenumbers_reads_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cells = pl.Series("raw", ["020 7946 0958"])
    Ledger(tmp_path / "ledger.sqlite3").close()
    gb = _cfg(tmp_path, "GB")
    Readings(gb, workers=1).read(cells)
    us = Readings(_cfg(tmp_path, "US"), workers=1)
    us.read(cells)
    assert us.read_now == 1
    monkeypatch.setattr(phones, "NORMALIZER_VERSION", "phonenumbers 0.0; rules 1")
    later = Readings(gb, workers=1)
    later.read(cells)
    assert later.read_now == 1


def test_no_cache_file_no_memory(tmp_path: Path) -> None:
    cfg = RunConfig(input=tmp_path / "in.csv", no_cache=True)
    r = Readings(cfg, workers=1)
    r.read(pl.Series("raw", ["+8613800138000"]))
    assert (r.remembered, r.read_now) == (0, 1)
    check = Readings(_cfg(tmp_path, None), workers=1)
    check.read(pl.Series("raw", ["+8613800138000"]))
    assert not (tmp_path / "ledger.sqlite3").exists()


def test_the_pool_reads_as_one_process_does() -> None:
    cells = [f"+86 138 {i:04d} {i % 10000:04d}" for i in range(phones.POOL_MIN_CELLS)]
    cells[5] = "garbage"
    assert phones.normalize_cells(cells, workers=2) == phones.normalize_cells(cells, workers=1)
