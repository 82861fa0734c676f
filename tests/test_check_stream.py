"""`enrich check` on a file large enough to stream says what the whole-file read says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from enrich.cli import cli


def check(path: Path, monkeypatch: pytest.MonkeyPatch, threshold: int) -> dict:
    monkeypatch.setenv("CAMS_ENRICH_STREAM_MIN_BYTES", str(threshold))
    res = CliRunner().invoke(cli, ["check", str(path), "--cust-space-id", "S1", "--json",
                                   "--default-region", "GB"])  # fmt: skip
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_a_streamed_check_counts_as_a_whole_read(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "big.csv"
    lines = ["name,phone"]
    for i in range(3000):
        phone = ["", "abc", f"07700 9{i % 700:05d}", f"+44 7700 9{i % 500:05d} ::: +44 1"][i % 4]
        lines.append(f'"n{i}, x",{phone}')
    src.write_text("\r\n".join(lines) + "\r\n", "utf-8")
    streamed = check(src, monkeypatch, 0)
    whole = check(src, monkeypatch, 10**12)
    assert streamed == whole
    assert streamed["rows"] == 3000 and streamed["multi_number_cells"] == 750
    assert [e["row"] for e in streamed["invalid_examples"]] == [1, 2, 5, 6, 9]
