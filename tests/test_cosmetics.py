"""What people read (issue 16 point 8): a bar that keeps done / to call on a narrow
terminal, an interrupt that is not an error and counts what the bar counted, an
estimate that is never ``0s`` for a run with calls, and absolute paths in log lines."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from rich.console import Console
from rich.text import Text

from enrich import errors as E
from enrich.checking import _duration
from enrich.cli import cli, translate_errors
from enrich.logs import Log
from enrich.presentation import BAR_PARTS, Presentation, errors_text, fit_bar
from enrich.types import Progress

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
COUNT = re.compile(r"(?<![\d/])(\d+)/(\d+)(?![\d/])")


def plain(text: str) -> str:
    return ANSI.sub("", text)


def frames(text: str) -> list[str]:
    """Every state the bar was drawn in (not the log lines, which start with ``enrich:``)."""
    lines = (f.rstrip() for f in re.split(r"[\r\n]", plain(text)))
    return [f for f in lines if COUNT.search(f) and not f.startswith("enrich:")]


# ------------------------------------------------------------ the bar at 70 columns


WIDTHS = {"name": 6, "count": 5, "rate": 11, "eta": 8, "errors": 8, "throttled": 11,
          "elapsed": 7}


def test_fit_bar_shows_everything_when_there_is_room() -> None:
    assert fit_bar(WIDTHS, 160) == (BAR_PARTS, 30)


def test_fit_bar_gives_way_in_order_and_never_drops_the_count() -> None:
    shown, bar = fit_bar(WIDTHS, 70)
    assert shown == ("name", "bar", "count", "rate", "eta", "errors", "throttled")
    assert bar == 70 - sum(WIDTHS[p] for p in shown if p != "bar") - (len(shown) - 1)
    seen = set()
    for width in range(1, 200):
        shown, bar = fit_bar(WIDTHS, width)
        assert "count" in shown
        assert ("bar" in shown) == (bar > 0)
        assert bar == 0 or 10 <= bar <= 30
        used = sum(WIDTHS[p] for p in shown if p != "bar") + bar + len(shown) - 1
        assert used <= width or shown == ("count",)
        seen.add(shown)
    assert ("count",) in seen and ("count", "errors") in seen and ("bar", "count", "errors") in seen


def draw(width: int, *, total: int, done: int, errors: int, throttled: int,
         failed: int = 0) -> str:
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=width, color_system=None)
    pres = Presentation(log=Log(quiet_info=True), progress=True, console=console)
    with pres:
        p = Progress(total=total)
        for i in sorted({*range(1, done + 1, max(1, done // 300)), done}):
            p.done, p.api_calls = i, i
            p.errors, p.throttled = min(i, errors), min(i, throttled)
            p.failed_attempts = min(i, errors) + (failed - errors) * i // done if failed else 0
            pres.on_progress(p)
    return buf.getvalue()


@pytest.mark.parametrize(("total", "errors", "throttled", "failed"), [
    (11, 2, 3, 0), (123_456, 12_345, 999, 0), (11, 2, 3, 5), (123_456, 12_345, 999, 98_765),
])
def test_the_bar_keeps_done_and_total_at_70_columns(total: int, errors: int,
                                                    throttled: int, failed: int) -> None:
    done = total * 2 // 3
    shots = frames(draw(70, total=total, done=done, errors=errors, throttled=throttled,
                        failed=failed))
    assert shots
    for shot in shots:
        assert Text(shot).cell_len <= 70, shot
        assert "…" not in shot, shot  # nothing cut: parts are left out whole
    counts = [tuple(map(int, m.groups())) for m in map(COUNT.search, shots) if m]
    assert len(counts) == len(shots)
    assert counts[-1] == (done, total)
    assert all(t == total for _, t in counts)
    last = shots[-1]
    assert f"errors {min(done, errors)}" in last and "ETA " in last
    assert "━" in last  # still a bar
    if failed:
        assert f"errors {errors} ({failed} failed tries)" in last, last


def test_the_bar_at_160_columns_is_unchanged() -> None:
    last = frames(draw(160, total=11, done=11, errors=2, throttled=3))[-1]
    assert re.search(r"^enrich ━{30} 11/11 +\d+\.\d req/s ETA \d+:\d\d errors 2 throttled 3 "
                     r"\d+:\d\d:\d\d$", last), last


def test_errors_show_the_failed_tries_that_are_not_error_rows() -> None:
    assert errors_text(Progress(total=9)) == "errors 0"
    assert errors_text(Progress(total=9, errors=2, failed_attempts=2)) == "errors 2"
    assert errors_text(Progress(total=9, failed_attempts=1)) == "errors 0 (1 failed try)"
    assert errors_text(Progress(total=9, errors=3, failed_attempts=41)) == (
        "errors 3 (41 failed tries)")


def test_failed_tries_show_between_finished_numbers() -> None:
    # an endpoint that refuses every connection: attempts fail and are retried, no number
    # finishes, so on_progress is not called again; the bar reads the live counters
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=70, color_system=None)
    with Presentation(log=Log(quiet_info=True), progress=True, console=console) as pres:
        p = Progress(total=150)
        pres.on_progress(p)  # the total, before the first answer (calls.py)
        p.api_calls = p.failed_attempts = 41
    last = frames(buf.getvalue())[-1]
    assert "0/150" in last and "errors 0 (41 failed tries)" in last, last
    assert Text(last).cell_len <= 70, last


# ------------------------------------------------------------ interrupted, not an error


@click.command()
@click.argument("what")
@translate_errors
def _fails(what: str) -> None:
    if what == "interrupted":
        raise E.Interrupted("interrupted: 3 of 5 numbers done; run the same command again")
    if what == "ctrl-c":
        raise KeyboardInterrupt
    raise E.UsageError("no such thing")


@pytest.mark.parametrize(("what", "line", "code"), [
    ("interrupted", "enrich: interrupted: 3 of 5 numbers done; run the same command again", 130),
    ("ctrl-c", "enrich: interrupted", 130),
    ("other", "enrich: error: no such thing", E.UsageError.exit_code),
])
def test_an_interrupt_is_shown_as_interrupted_not_as_an_error(what: str, line: str,
                                                              code: int) -> None:
    res = CliRunner().invoke(_fails, [what])
    assert (res.exit_code, res.stderr) == (code, line + "\n")


def _child(tmp_path: Path, args: list[str], *, columns: int = 70) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ALIBABA_CLOUD_", "CAMS_", "COLUMNS", "LINES"))}
    env.update(ALIBABA_CLOUD_ACCESS_KEY_ID="testAKID", ALIBABA_CLOUD_ACCESS_KEY_SECRET="testSecret",
               XDG_CACHE_HOME=str(tmp_path / ".cache"), HOME=str(tmp_path / "home"),
               ALIBABA_CLOUD_ECS_METADATA_DISABLED="true", COLUMNS=str(columns),
               TERM="xterm-256color")
    return subprocess.Popen([sys.executable, "-m", "enrich", *args], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _interrupted_run(server, tmp_path: Path, *, cache: bool = True) -> tuple[int, str]:
    """A run of 60 numbers stopped by SIGINT mid-calls; 10 of them already in the cache,
    or ``--no-cache``."""
    src = tmp_path / "n.csv"
    src.write_text("phone\n" + "".join(f"+86139{i:08d}\n" for i in range(60)))
    base = ["run", str(src), "--endpoint", server.url, "--cust-space-id", "S1",
            "--rate", "50", "--concurrency", "4"]
    if cache:
        base += ["--cache", str(tmp_path / "ledger.sqlite3")]
        warm = _child(tmp_path, [*base, "--limit", "10", "--no-progress"])
        _, err = warm.communicate(timeout=60)
        assert warm.returncode == 0, err
    else:
        base.append("--no-cache")
    start = server.stats.requests_total
    proc = _child(tmp_path, [*base, "--progress"])
    deadline = time.monotonic() + 20
    while server.stats.requests_total < start + 12 and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    return proc.returncode, err


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str]:
    from enrich.emulator import EmulatorConfig, EmulatorServer

    tmp_path = tmp_path_factory.mktemp("interrupted")
    server = EmulatorServer(EmulatorConfig(rate_limit=0, latency_s=0.05)).start()
    try:
        return _interrupted_run(server, tmp_path)
    finally:
        server.stop()


def test_an_interrupted_run_says_interrupted_under_a_bar_that_fits(
    interrupted: tuple[int, str]
) -> None:
    code, err = interrupted
    assert code == 130, err
    last = plain(err).strip().splitlines()[-1]
    assert last.startswith("enrich: interrupted: "), last
    shots = frames(err)
    assert shots, err
    assert all(Text(s).cell_len <= 70 and COUNT.search(s) for s in shots), shots


def test_an_interrupted_run_counts_what_the_bar_counted(interrupted: tuple[int, str]) -> None:
    _, err = interrupted
    last = plain(err).strip().splitlines()[-1]
    said = re.search(r"(\d+) of (\d+) numbers", last)
    assert said, last
    drawn = COUNT.search(frames(err)[-1])
    assert drawn is not None
    assert said.groups() == drawn.groups(), (last, frames(err)[-1])
    assert drawn.group(2) == "50"  # 60 numbers, 10 of them fresh in the cache


def test_no_cache_wording_without_a_cache(emulator, tmp_path: Path) -> None:
    server = emulator(latency_s=0.05)
    code, err = _interrupted_run(server, tmp_path, cache=False)
    assert code == 130, err
    last = plain(err).strip().splitlines()[-1]
    assert last.startswith("enrich: interrupted: "), last
    assert "kept in the cache" not in last and "--no-cache" in last, last


# ------------------------------------------------------------ enrich check's estimate


@pytest.mark.parametrize(("seconds", "calls", "shown"), [
    (0.0, 0, "0s"), (0.0, 1, "<1s"), (0.1, 1, "<1s"), (0.9, 3, "<1s"), (1.0, 9, "1s"),
    (2.1, 20, "3s"), (3.0, 29, "3s"), (59.5, 580, "1m00s"), (61.2, 600, "1m02s"),
    (3600.0, 35_000, "1h00m"), (3601.0, 35_000, "1h01m"),
])
def test_the_estimate_is_rounded_up(seconds: float, calls: int, shown: str) -> None:
    assert _duration(seconds, calls=calls) == shown


def test_check_never_estimates_0s_for_a_run_with_calls(tmp_path: Path) -> None:
    src = tmp_path / "one.csv"
    src.write_text("phone\n+8613800138000\n")
    res = CliRunner().invoke(cli, ["check", str(src), "--cust-space-id", "S1",
                                   "--rate", "1000", "--no-cache"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "estimated time   <1s at 1000 requests/s (plus retries)" in res.stdout.splitlines()


# ------------------------------------------------------------ paths in log lines


def test_log_lines_name_absolute_paths(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "in.csv").write_text("phone\n+8613800138000\n")
    res = CliRunner().invoke(cli, ["run", "in.csv", "--mock", "--no-progress", "--no-cache",
                                   "-o", "sub/out.csv"], catch_exceptions=False)
    assert res.exit_code == 0, res.stderr
    start, *_, end = res.stderr.splitlines()
    assert str((tmp_path / "in.csv").resolve()) in start, start
    assert str((tmp_path / "sub" / "out.csv").resolve()) in end, end
