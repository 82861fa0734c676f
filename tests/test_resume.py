"""Killed and interrupted runs: nothing lost, nothing paid twice, nothing half-written."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

N = 60
CONCURRENCY = 4


def numbers_csv(path: Path, n: int = N) -> Path:
    path.write_text("phone\n" + "".join(f"+86139{i:08d}\n" for i in range(n)) +
                    "+8613900000000\n")  # one duplicate
    return path


def start(args: list[str], tmp_path: Path, **extra_env: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALIBABA_CLOUD_", "CAMS_"))}
    env.update(ALIBABA_CLOUD_ACCESS_KEY_ID="testAKID", ALIBABA_CLOUD_ACCESS_KEY_SECRET="testSecret",
               XDG_CACHE_HOME=str(tmp_path / ".cache"), **extra_env)
    return subprocess.Popen([sys.executable, "-m", "enrich", *args], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run_args(server_url: str, src: Path, tmp_path: Path) -> list[str]:
    return ["run", str(src), "--endpoint", server_url, "--cust-space-id", "S1",
            "--cache", str(tmp_path / "ledger.sqlite3"), "--rate", "50",
            "--concurrency", str(CONCURRENCY), "--no-progress"]


def wait_for_calls(server, n: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while server.stats.requests_total < n and time.monotonic() < deadline:
        time.sleep(0.01)


@pytest.mark.parametrize("after_calls", [1, 15, 40])
def test_sigkill_then_rerun_finishes_without_paying_twice(emulator, tmp_path: Path,
                                                          after_calls: int) -> None:
    server = emulator(latency_s=0.05)
    src = numbers_csv(tmp_path / "n.csv")
    args = run_args(server.url, src, tmp_path)
    proc = start(args, tmp_path)
    wait_for_calls(server, after_calls)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)
    out = tmp_path / "n.enriched.csv"
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    first = server.stats.requests_total
    assert first < N  # it really was killed mid-run

    rerun = start(args, tmp_path)
    _, err = rerun.communicate(timeout=60)
    assert rerun.returncode == 0, err
    successes = server.stats.successes
    assert set(p for _, p in successes) == {f"86139{i:08d}" for i in range(N)}
    assert sum(successes.values()) <= N + CONCURRENCY
    with out.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == N + 1
    assert all(r["bp_status"] in ("ok", "no_profile") for r in rows)
    summary = json.loads((tmp_path / "n.summary.json").read_text())
    assert summary["cache_hits"] + summary["api_calls"] >= N
    assert summary["cache_hits"] >= first - CONCURRENCY


def test_sigint_exits_130_quickly_and_rerun_completes(emulator, tmp_path: Path) -> None:
    server = emulator(latency_s=0.2)
    src = numbers_csv(tmp_path / "n.csv")
    args = run_args(server.url, src, tmp_path)
    args[args.index("--rate") + 1] = "10"
    proc = start(args, tmp_path)
    wait_for_calls(server, 8)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=10)
    took = time.monotonic() - sent
    assert proc.returncode == 130, err
    assert took < 3.0
    assert "run the same command again to resume" in err
    assert "Traceback" not in err
    assert not (tmp_path / "n.enriched.csv").exists()
    assert not (tmp_path / "n.summary.json").exists()
    done_before = len(server.stats.successes)

    args[args.index("--rate") + 1] = "1000"
    rerun = start(args, tmp_path)
    _, err = rerun.communicate(timeout=60)
    assert rerun.returncode == 0, err
    summary = json.loads((tmp_path / "n.summary.json").read_text())
    assert summary["cache_hits"] == done_before
    assert summary["api_calls"] == N - done_before
    assert sum(server.stats.successes.values()) == N


def test_second_run_on_the_same_output_is_refused(emulator, tmp_path: Path) -> None:
    server = emulator(latency_s=0.2)
    src = numbers_csv(tmp_path / "n.csv", 30)
    args = run_args(server.url, src, tmp_path)
    args[args.index("--rate") + 1] = "10"
    first = start(args, tmp_path)
    wait_for_calls(server, 2)
    second = start(args, tmp_path)
    _, err = second.communicate(timeout=30)
    first.send_signal(signal.SIGTERM)
    first.communicate(timeout=10)
    assert second.returncode == 1
    assert err.strip() == (f"enrich: error: another enrich run (PID {first.pid}) is writing "
                           f"{tmp_path / 'n.enriched.csv'}; wait for it to finish or stop it")
    assert first.returncode == 130


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_while_writing_stops_the_run_and_keeps_the_older_outputs(
    emulator, tmp_path: Path, signum: int
) -> None:
    """Outside the calls too: exit 130 at once, nothing replaced, no temp file left."""
    server = emulator()
    src = tmp_path / "n.csv"
    src.write_text("phone,note\n" + "".join(f"+86139{i % 1000:08d},row {i}\n"
                                            for i in range(20_000)))
    args = [*run_args(server.url, src, tmp_path), "-o", "n.out.xlsx"]
    args[args.index("--rate") + 1] = "100000"
    args[args.index("--concurrency") + 1] = "64"
    filled = start(args, tmp_path)  # every number in the cache
    _, err = filled.communicate(timeout=120)
    assert filled.returncode == 0, err
    # the side files are named after the output (SPEC.md "Names of the side files")
    outputs = ("n.out.xlsx", "n.out.errors.csv", "n.out.summary.json")
    for name in outputs:
        (tmp_path / name).write_bytes(b"an older good output")
    before = sorted(p.name for p in tmp_path.iterdir())

    proc = start(args, tmp_path)  # nothing to call: it reads, looks up, writes
    assert proc.stderr is not None
    line = proc.stderr.readline()
    assert "distinct numbers" in line, line  # read and prepared; now writing
    proc.send_signal(signum)
    t = time.monotonic()
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert time.monotonic() - t < 2
    assert err.strip().splitlines()[-1].startswith("enrich: interrupted: nothing written")
    for name in outputs:
        assert (tmp_path / name).read_bytes() == b"an older good output"
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no temp file left
    assert server.stats.requests_total == 1000  # the first run's calls only


def test_temp_files_of_killed_runs_are_removed(emulator, tmp_path: Path) -> None:
    server = emulator()
    src = numbers_csv(tmp_path / "n.csv", 5)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a process that no longer runs
    stale = [f".n.enriched.csv.{gone.pid}-deadbeef.tmp",
             f"..n.errors.csv.{gone.pid}.tmp.{gone.pid}-0badf00d.tmp",
             f".n.summary.json.{gone.pid}.tmp"]  # a staged file, whole or not
    live = f".n.enriched.csv.{os.getppid()}-cafe0000.tmp"  # this test's parent runs
    for name in [*stale, live]:
        (tmp_path / name).write_bytes(b"partial")
    proc = start(run_args(server.url, src, tmp_path), tmp_path)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert not any((tmp_path / name).exists() for name in stale)
    assert (tmp_path / live).exists()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGKILL])
def test_a_large_file_stopped_in_its_second_pass_leaves_nothing_half_written(
    emulator, tmp_path: Path, signum: int
) -> None:
    """A streamed run (batches of 4 KB) stopped while it writes: no output, the older
    ones kept; Ctrl-C exits 130 with no temp file left, ``kill -9`` leaves only a temp
    that the next run removes; that run writes what an uninterrupted run writes."""
    server = emulator()
    src = tmp_path / "n.csv"
    src.write_text("phone,note\n" + "".join(f"+86139{i % 500:08d},row {i}\n"
                                            for i in range(30_000)))
    args = [*run_args(server.url, src, tmp_path), "--log-format", "json"]
    args[args.index("--rate") + 1] = "100000"
    args[args.index("--concurrency") + 1] = "64"
    streamed = {"CAMS_ENRICH_STREAM_MIN_BYTES": "0", "CAMS_ENRICH_STREAM_BATCH_BYTES": "4096"}

    def launch() -> subprocess.Popen[str]:
        return start(args, tmp_path, **streamed)

    filled = launch()  # every number in the cache; its outputs are the reference
    _, err = filled.communicate(timeout=120)
    assert filled.returncode == 0, err
    outputs = ("n.enriched.csv", "n.errors.csv", "n.summary.json")
    reference = (tmp_path / outputs[0]).read_bytes()
    for name in outputs:
        (tmp_path / name).write_bytes(b"an older good output")
    before = sorted(p.name for p in tmp_path.iterdir())

    proc = launch()
    assert proc.stderr is not None
    for line in proc.stderr:
        if '"phase": "writing"' in line:
            break  # the second pass has written its first batch
    else:
        raise AssertionError("no writing phase")
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=30)
    for name in outputs:
        assert (tmp_path / name).read_bytes() == b"an older good output"
    left = sorted(p.name for p in tmp_path.iterdir())
    if signum == signal.SIGINT:
        assert proc.returncode == 130, err
        assert left == before  # no temp file left
    else:
        assert proc.returncode == -signal.SIGKILL
        # its staged files, and the lock file it held (a lock that died with it)
        assert [n for n in left if n not in before and not n.endswith((".tmp", ".lock"))] == []

    rerun = launch()
    _, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    assert (tmp_path / outputs[0]).read_bytes() == reference
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # the killed run's files gone
    assert server.stats.requests_total == 500  # the first run's calls only
