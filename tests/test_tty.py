"""What `enrich run` shows on a terminal: a progress bar and a final table, on stderr only.

The terminal is a real pseudo-terminal (``os.openpty``) given to a real
subprocess as its stderr, so rich sees exactly what it sees under a person's
shell; stdout is a terminal of its own, or a pipe, and must stay empty.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import re
import select
import socket
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from rich.console import Console

from enrich.logs import Log
from enrich.presentation import Presentation, format_duration, summary_table
from enrich.runner import Progress

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
BAR_CHARS = "━"  # rich's bar glyph

# 12 rows: 6 ordinary numbers, 3 throttled once then answered, 2 refused by the
# API (a final error), 1 invalid; 11 distinct keys → 11 + 3 retries = 14 calls.
CSV = "".join(
    [
        "phone,space\n",
        *(f"+8613800{i:06d},S1\n" for i in range(6)),
        *(f"+8613900{i:06d},fault-throttle-1\n" for i in range(3)),
        *(f"+8613700{i:06d},err-InvalidParameter\n" for i in range(2)),
        "abc,S1\n",
    ]
)


@pytest.fixture
def job(emulator, tmp_path: Path) -> list[str]:
    server = emulator()
    src = tmp_path / "leads.csv"
    src.write_text(CSV, encoding="utf-8")
    return ["run", str(src), "--endpoint", server.url, "--cust-space-column", "space",
            "--cache", str(tmp_path / "ledger.sqlite3"), "--rate", "1000"]


def child_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ALIBABA_CLOUD_", "CAMS_", "COLUMNS", "LINES", "NO_COLOR",
                                "FORCE_COLOR", "TERM", "CI", "GITHUB_ACTIONS"))}
    env.update(ALIBABA_CLOUD_ACCESS_KEY_ID="testAKID", ALIBABA_CLOUD_ACCESS_KEY_SECRET="testSecret",
               XDG_CACHE_HOME=str(tmp_path / ".cache"), TERM="xterm-256color")
    return env


def open_tty(columns: int = 160) -> tuple[int, int]:
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    return master, slave


def run_enrich(args: list[str], tmp_path: Path, *, stderr_tty: bool, stdout_tty: bool = False,
               timeout: float = 60.0) -> tuple[int, str, str]:
    """Run ``enrich ARGS``; returns (exit code, stdout, stderr) as text, ANSI codes kept."""
    fds: dict[str, int] = {}
    slaves: list[int] = []
    kwargs: dict[str, object] = {}
    for name, is_tty in (("stdout", stdout_tty), ("stderr", stderr_tty)):
        if is_tty:
            master, slave = open_tty()
            fds[name] = master
            slaves.append(slave)
            kwargs[name] = slave
        else:
            kwargs[name] = subprocess.PIPE
    proc = subprocess.Popen([sys.executable, "-m", "enrich", *args], cwd=tmp_path,
                            env=child_env(tmp_path), stdin=subprocess.DEVNULL, **kwargs)
    for slave in slaves:
        os.close(slave)
    pipes = {name: getattr(proc, name).fileno() for name in ("stdout", "stderr")
             if name not in fds}
    readers = {**fds, **pipes}
    out = {name: b"" for name in readers}
    open_fds = dict(readers)
    deadline = time.monotonic() + timeout
    try:
        while open_fds and time.monotonic() < deadline:
            ready, _, _ = select.select(list(open_fds.values()), [], [], 0.2)
            for name, fd in list(open_fds.items()):
                if fd not in ready:
                    continue
                try:
                    data = os.read(fd, 65536)
                except OSError:  # EIO: the pty's other side is closed
                    data = b""
                if data:
                    out[name] += data
                else:
                    del open_fds[name]
        code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for fd in fds.values():
            os.close(fd)
        for name in pipes:
            getattr(proc, name).close()
    return code, out["stdout"].decode(), out["stderr"].decode()


def plain(text: str) -> str:
    return ANSI.sub("", text).replace("\r\n", "\n")


def bar_frames(text: str) -> list[str]:
    """Every state the bar was drawn in (rich redraws the line after a carriage return)."""
    return [f.strip() for f in re.split(r"[\r\n]", plain(text)) if BAR_CHARS in f]


def table_rows(text: str) -> dict[str, str]:
    """The final table's rows: label → value."""
    rows = {}
    for line in plain(text).splitlines():
        cells = [c.strip() for c in line.split("│")]
        if len(cells) == 4 and cells[1]:
            rows[cells[1]] = cells[2]
    return rows


def test_terminal_shows_the_bar_and_the_final_table(job: list[str], tmp_path: Path) -> None:
    code, out, err = run_enrich(job, tmp_path, stderr_tty=True, stdout_tty=True)
    assert code == 0, plain(err)
    assert out == ""  # stdout is a terminal too, and nothing reaches it
    summary = json.loads((tmp_path / "leads.summary.json").read_text())
    assert summary["api_calls"] == 14 and summary["throttled"] == 3

    frames = bar_frames(err)
    assert frames, plain(err)
    last = frames[-1]
    # done/total, requests/s, ETA, errors and throttles so far
    assert re.search(r"\b11/11\b", last), last
    assert re.search(r"\d+\.\d req/s", last), last
    assert re.search(r"ETA \d+:\d\d", last), last
    assert "errors 2" in last and "throttled 3" in last, last
    # 3 throttle answers retried, 2 final refusals: 5 attempts failed, 2 numbers in error
    assert "errors 2 (5 failed tries)" in last, last
    assert all(re.search(r"\b\d+/11\b", f) for f in frames), frames

    rows = table_rows(err)
    assert rows["rows"] == "12"
    assert rows["ok"] == str(summary["ok"])
    assert rows["no_profile"] == str(summary["no_profile"])
    assert int(rows["ok"]) + int(rows["no_profile"]) == 9
    assert rows["invalid"] == "1"
    assert rows["Client.InvalidPhone"] == "1"
    assert rows["errors"] == "2"
    assert rows["InvalidParameter"] == "2"
    assert rows["calls"] == "14"
    assert rows["retries"] == "3"
    assert rows["throttled"] == "3"
    assert rows["cache hits"] == "0"
    assert re.fullmatch(r"\d+\.\d s", rows["elapsed"])
    assert re.fullmatch(r"\d+\.\d req/s", rows["rate"])
    # the table comes after the last bar frame, and info log lines give way to both
    assert plain(err).rindex(BAR_CHARS) < plain(err).index("run summary")
    assert "enrich: done:" not in err


def test_a_warm_rerun_on_a_terminal_shows_the_cache_hits(job: list[str], tmp_path: Path) -> None:
    assert run_enrich([*job, "--no-progress"], tmp_path, stderr_tty=False)[0] == 0
    code, out, err = run_enrich(job, tmp_path, stderr_tty=True)
    assert code == 0, plain(err)
    assert out == ""
    rows = table_rows(err)
    assert rows["calls"] == "0"
    assert rows["cache hits"] == "11"  # the API's final errors are remembered too
    assert rows["errors"] == "2"


def test_the_bar_shows_failed_tries_as_they_happen(tmp_path: Path) -> None:
    # nothing listens on the port: every attempt fails and is retried, no number ends,
    # and the bar says so (it said "errors 0" for 19 s, issue 16 point 3)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    src = tmp_path / "leads.csv"
    src.write_text("phone\n" + "".join(f"+86139{i:08d}\n" for i in range(150)))
    code, out, err = run_enrich(["run", str(src), "--endpoint", f"http://127.0.0.1:{port}",
                                 "--cust-space-id", "S1", "--quota", "off", "--rate", "50",
                                 "--cache", str(tmp_path / "ledger.sqlite3")],
                                tmp_path, stderr_tty=True)
    assert code == 3, plain(err)  # SPEC.md "When nothing gets through"
    assert out == ""
    frames = bar_frames(err)
    assert frames, plain(err)
    assert all(re.search(r"\b0/150\b", f) for f in frames), frames
    tries = [int(m.group(1)) for f in frames
             if (m := re.search(r"errors 0 \((\d+) failed tries\)", f))]
    assert tries and tries[-1] >= 50, frames  # the 50 attempts that stop the run
    assert tries == sorted(tries)


def test_not_a_terminal_shows_neither(job: list[str], tmp_path: Path) -> None:
    code, out, err = run_enrich(job, tmp_path, stderr_tty=False)
    assert code == 0, err
    assert out == ""
    assert BAR_CHARS not in err and "│" not in err and "\x1b[" not in err
    assert "req/s" not in err
    # plain log lines instead, the last of which sums the run up
    assert "enrich: done: " in err


def test_no_progress_on_a_terminal_shows_no_bar(job: list[str], tmp_path: Path) -> None:
    code, out, err = run_enrich([*job, "--no-progress"], tmp_path, stderr_tty=True)
    assert code == 0, plain(err)
    assert out == ""
    assert BAR_CHARS not in err and "│" not in err
    assert "enrich: done: " in plain(err)


def test_progress_forces_the_bar_on_a_pipe(job: list[str], tmp_path: Path) -> None:
    code, out, err = run_enrich([*job, "--progress"], tmp_path, stderr_tty=False)
    assert code == 0, err
    assert out == ""
    assert bar_frames(err) and re.search(r"\b11/11\b", bar_frames(err)[-1])
    assert table_rows(err)["calls"] == "14"


def test_json_logs_turn_the_bar_off_unless_forced(job: list[str], tmp_path: Path) -> None:
    code, out, err = run_enrich([*job, "--log-format", "json"], tmp_path, stderr_tty=True)
    assert code == 0, plain(err)
    assert out == ""
    assert BAR_CHARS not in err
    events = [json.loads(line) for line in plain(err).splitlines() if line.strip()]
    assert events[-1]["event"] == "end"


# ------------------------------------------------------------ the pieces, in-process


def test_format_duration() -> None:
    assert format_duration(None) == "-:--"
    assert format_duration(0) == "0:00"
    assert format_duration(75.2) == "1:15"
    assert format_duration(3725) == "1:02:05"


def test_presentation_draws_on_its_console_only(capsys: pytest.CaptureFixture[str]) -> None:
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=140, color_system=None)
    pres = Presentation(log=Log(quiet_info=True), progress=True, console=console)
    with pres:
        progress = Progress(total=4)
        for _ in range(4):
            progress.done += 1
            progress.api_calls += 1
            pres.on_progress(progress)
        pres.final_table({"rows": 5, "ok": 3, "no_profile": 1, "invalid": 1, "error_rows": 1,
                          "errors_by_code": {"Client.MissingPhone": 1}, "api_calls": 4,
                          "cache_hits": 0, "elapsed_s": 1.25, "requests_per_s": 3.2})
    text = buf.getvalue()
    assert "4/4" in plain(text)
    rows = table_rows(text)
    assert rows["ok"] == "3" and rows["Client.MissingPhone"] == "1" and rows["errors"] == "0"
    assert rows["elapsed"] == "1.2 s" and rows["rate"] == "3.2 req/s"
    assert capsys.readouterr() == ("", "")


def test_without_the_bar_nothing_is_drawn(capsys: pytest.CaptureFixture[str]) -> None:
    pres = Presentation(log=Log(), progress=False)
    with pres:
        pres.on_progress(Progress(total=1, done=1))
        pres.final_table({"rows": 1})
    assert capsys.readouterr() == ("", "")


def test_the_table_lists_every_error_code() -> None:
    buf = io.StringIO()
    Console(file=buf, width=100, color_system=None).print(summary_table({
        "rows": 9, "ok": 1, "no_profile": 1, "invalid": 3, "error_rows": 7,
        "errors_by_code": {"Client.InvalidPhone": 2, "Client.MissingPhone": 1,
                           "Client.Timeout": 1, "System.LimitControl": 3},
    }))
    rows = table_rows(buf.getvalue())
    assert rows["invalid"] == "3" and rows["errors"] == "4"
    assert rows["Client.Timeout"] == "1" and rows["System.LimitControl"] == "3"
