"""A large file on a terminal: the reading, normalising and writing phases drawn as bars
(issue 13 point 4), on a rich Console writing to a buffer as ``test_tty.py`` does."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from rich.console import Console

from enrich.calls import Seams
from enrich.job import RunConfig
from enrich.logs import Log
from enrich.presentation import Presentation
from enrich.runner import run

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
CREDS = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "testAKID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "testSecret"}


def _console(width: int = 120) -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, force_terminal=True, width=width, color_system=None), buf


def _lines(buf: io.StringIO) -> list[str]:
    return [f.strip() for f in re.split(r"[\r\n]", ANSI.sub("", buf.getvalue())) if f.strip()]


def test_each_phase_is_a_line_with_its_bar_and_count() -> None:
    console, buf = _console()
    pres = Presentation(log=Log(quiet_info=True), progress=True, console=console)
    with pres:
        for done in (0, 300_000_000, 638_000_000):
            pres.on_phase("reading", done, 638_000_000)
        pres.on_phase("normalising", 0, 1_000_000)
        pres.on_phase("normalising", 1_000_000, 1_000_000)
        pres.on_phase("writing", 319_000_000, 638_000_000)
    last = {line.split()[0]: line for line in _lines(buf) if line.split()[0] in
            ("reading", "normalising", "writing")}  # fmt: skip
    assert "638/638 MB" in last["reading"] and "100 %" in last["reading"]
    assert "1000000/1000000" in last["normalising"]
    assert "319/638 MB" in last["writing"] and "50 %" in last["writing"]
    assert all("━" in line for line in last.values())


def test_a_narrow_terminal_keeps_the_count() -> None:
    console, buf = _console(width=30)
    pres = Presentation(log=Log(quiet_info=True), progress=True, console=console)
    with pres:
        pres.on_phase("writing", 5_000_000, 10_000_000)
    assert any("5/10 MB" in line for line in _lines(buf))


def test_without_the_bar_the_phases_draw_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    with Presentation(log=Log(), progress=False) as pres:
        pres.on_phase("reading", 1, 2)
    assert capsys.readouterr() == ("", "")


def test_a_streamed_run_draws_its_phases(
    emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = emulator()
    monkeypatch.setenv("CAMS_ENRICH_STREAM_MIN_BYTES", "0")
    monkeypatch.setenv("CAMS_ENRICH_STREAM_BATCH_BYTES", "100")
    src = tmp_path / "big.csv"
    src.write_text("id,phone\n" + "".join(f"{i},+86139{i % 7:08d}\n" for i in range(50)))
    cfg = RunConfig(input=src, endpoint=server.url, cust_space_id="S1", no_cache=True,
                    quota="off", rate=1000.0)  # fmt: skip
    console, buf = _console()
    pres = Presentation(log=Log(quiet_info=True), progress=True, console=console)
    seen: list[str] = []

    def on_phase(phase: str, done: int, total: int) -> None:
        seen.append(phase)
        pres.on_phase(phase, done, total)

    with pres:
        seams = Seams(environ=CREDS, log=pres.log, on_progress=pres.on_progress,
                      on_phase=on_phase, install_signal_handlers=False)  # fmt: skip
        result = run(cfg, seams=seams)
    assert result.exit_code == 0
    assert seen.count("reading") > 1 and seen.count("writing") > 1, "every batch is shown"
    size = src.stat().st_size
    lines = _lines(buf)
    for phase in ("reading", "normalising", "writing"):
        assert any(line.startswith(phase) and "100 %" in line for line in lines), (phase, lines)
    assert any(line.startswith("normalising") and "7/7" in line for line in lines)
    assert size < 1e6  # a tiny file: 0/0 MB, its share still 100 %
