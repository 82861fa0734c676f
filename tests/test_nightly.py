"""Unattended runs: the example job file end to end, and JSON logs on stderr."""

from __future__ import annotations

import io
import json
import re
import shutil
import time
from pathlib import Path

from click.testing import CliRunner

from enrich.cli import cli
from enrich.job import RunConfig
from enrich.logs import Log
from enrich.runner import Seams, run

ROOT = Path(__file__).resolve().parent.parent


def test_example_job_file_end_to_end(emulator, creds, tmp_path: Path, monkeypatch) -> None:
    server = emulator()
    shutil.copytree(ROOT / "jobs", tmp_path / "jobs")
    shutil.copytree(ROOT / "sample_data", tmp_path / "sample_data")
    assert (ROOT / "out" / ".gitignore").is_file()  # the example's output folder ships
    (tmp_path / "out").mkdir()
    monkeypatch.setenv("CAMS_CUST_SPACE_ID", "2934839388494")
    res = CliRunner().invoke(cli, ["run", "--job", str(tmp_path / "jobs/nightly.example.toml"),
                                   "--endpoint", server.url,
                                   "--cache", str(tmp_path / "ledger.sqlite3")],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.stderr
    assert res.stdout == ""
    day = time.strftime("%Y-%m-%d", time.gmtime())
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == sorted([
        f"contacts-{day}.enriched.csv", f"contacts-{day}.errors.csv",
        f"contacts-{day}.summary.json"])
    summary = json.loads((out / f"contacts-{day}.summary.json").read_text())
    assert summary["rows"] == 40 and summary["exit_code"] == 0
    assert summary["api_calls"] == summary["unique_numbers"] == server.stats.requests_total
    # the job file asks for JSON logs: every stderr line is one JSON object
    events = [json.loads(line) for line in res.stderr.splitlines()]
    assert events[0]["event"] == "start"
    assert events[-1]["event"] == "end" and events[-1]["api_calls"] == summary["api_calls"]
    # every number in the summary is the one the log ends with
    assert {k: events[-1][k] for k in summary} == summary


def test_json_logs_mask_numbers_and_report_progress_and_retries(emulator, creds,
                                                                tmp_path: Path) -> None:
    server = emulator(latency_s=0.02)
    src = tmp_path / "n.csv"
    numbers = [f"86139{i:08d}" for i in range(30)]
    src.write_text("phone\n" + "".join(f"+{n}\n" for n in numbers))
    buf = io.StringIO()
    cfg = RunConfig(input=src, endpoint=server.url, cust_space_id="fault-http503_json-1",
                    no_cache=True, rate=40.0, log_format="json")
    result = run(cfg, seams=Seams(log=Log(fmt="json", stream=buf), progress_every_s=0.2,
                                  environ=creds, install_signal_handlers=False))
    assert result.exit_code == 0
    text = buf.getvalue()
    events = [json.loads(line) for line in text.splitlines()]
    names = [e["event"] for e in events]
    assert names[0] == "start" and names[-1] == "end"
    assert names.count("retry") == 30
    progress = [e for e in events if e["event"] == "progress"]
    assert progress, names
    assert {"done", "total", "rate", "eta_s"} <= set(progress[0])
    assert progress[0]["total"] == 30
    retry = next(e for e in events if e["event"] == "retry")
    assert re.fullmatch(r"\*+\d{4}", retry["phone"])
    for n in numbers:
        assert n not in text  # numbers appear masked only
    assert "testSecret" not in text


def test_slow_answers_do_not_hold_back_the_first_requests(emulator, creds, tmp_path: Path) -> None:
    """At 2 s latency the pace needs ~100 requests in flight before the first answer."""
    server = emulator(latency_s=2.0)
    src = tmp_path / "n.csv"
    src.write_text("phone\n" + "".join(f"+86139{i:08d}\n" for i in range(110)))
    cfg = RunConfig(input=src, endpoint=server.url, cust_space_id="S1", no_cache=True,
                    rate=50.0, timeout=5.0)
    result = run(cfg, seams=Seams(environ=creds, install_signal_handlers=False))
    assert result.exit_code == 0
    times = sorted(t for t, _ in server.stats.arrivals)
    assert len(times) == 110
    # all sent at the pace (48.75/s), none waiting for a place in flight
    assert (len(times) - 1) / (times[-1] - times[0]) >= 0.92 * 48.75  # held back: 40.4


def test_the_summary_rate_never_reads_over_the_pace(emulator, creds, tmp_path: Path) -> None:
    """30 quick calls paced at 19.5/s: 30 / (29 / 19.5) would read 20.2/s, over --rate 20."""
    server = emulator()
    src = tmp_path / "n.csv"
    src.write_text("phone\n" + "".join(f"+86139{i:08d}\n" for i in range(30)))
    cfg = RunConfig(input=src, endpoint=server.url, cust_space_id="S1", no_cache=True, rate=20.0)
    result = run(cfg, seams=Seams(environ=creds, install_signal_handlers=False))
    assert result.exit_code == 0
    summary = json.loads((tmp_path / "n.summary.json").read_text())
    assert summary["api_calls"] == 30
    assert 0.95 * 19.5 <= summary["requests_per_s"] <= 19.5 * 1.01
