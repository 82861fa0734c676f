"""An output that cannot be written: exit 1, one clear line, nothing half-written, ledger intact.

Tests run as root here, so file permissions do not stop a write. Two ways that do:

- **read-only folder**: ``chattr +i`` (immutable) on the folder; even root cannot
  create a file in it. Skipped where the filesystem or the user cannot set it.
- **full disk**: a subprocess with ``RLIMIT_FSIZE`` (SIGXFSZ ignored) gets ``EFBIG``
  ("File too large") as soon as it writes past the limit, exactly where a full disk
  gives ``ENOSPC``. The input carries a wide text column so the enriched output is
  much larger than the ledger, which stays under the limit.

In every case the answers are in the ledger, so a rerun after the fix makes no new call.
"""

from __future__ import annotations

import base64
import json
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from enrich.cli import cli

N = 12
FSIZE = 200_000  # bytes: the ledger stays below it, the enriched output does not


def _chattr(flag: str, path: Path) -> bool:
    if shutil.which("chattr") is None:
        return False
    res = subprocess.run(["chattr", flag, str(path)], capture_output=True, timeout=10, check=False)
    return res.returncode == 0


@pytest.fixture
def immutable(tmp_path: Path) -> Iterator[Path]:
    """A folder nobody, root included, can create files in (until the fixture ends)."""
    folder = tmp_path / "readonly"
    folder.mkdir()
    if not _chattr("+i", folder):
        pytest.skip("chattr +i is not available here (not root, or not supported)")
    try:
        probe = folder / "probe"
        with pytest.raises(PermissionError):
            probe.write_text("x")
        yield folder
    finally:
        _chattr("-i", folder)


def numbers_csv(path: Path, note_bytes: int = 10) -> Path:
    """N numbers, each with a note of ``note_bytes`` that no Parquet codec can shrink."""
    rnd = random.Random(5)
    notes = [base64.b64encode(rnd.randbytes(note_bytes * 3 // 4)).decode() for _ in range(N)]
    path.write_text("phone,note\n" + "".join(f"+86136{i:08d},{notes[i]}\n" for i in range(N)))
    return path


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def invoke(*args: str) -> object:
    return CliRunner().invoke(cli, ["run", *args])


def test_read_only_output_folder_fails_before_any_call(emulator, creds, tmp_path: Path,
                                                       immutable: Path) -> None:
    server = emulator()
    src = numbers_csv(tmp_path / "n.csv")
    before = listing(tmp_path)
    res = invoke(str(src), "-o", str(immutable / "n.enriched.csv"), "--endpoint", server.url,
                 "--cust-space-id", "S1", "--cache", str(tmp_path / "ledger.sqlite3"))
    assert res.exit_code == 1
    assert res.stderr.splitlines() == [
        f"enrich: error: cannot write beside {immutable / 'n.enriched.csv'}: "
        "Operation not permitted"]
    assert server.stats.requests_total == 0
    assert listing(tmp_path) == before


def test_read_only_report_folder_keeps_answers_for_the_rerun(emulator, creds, tmp_path: Path,
                                                             immutable: Path) -> None:
    """The lock and the output's folder are fine; the error report's is not: found at the end."""
    server = emulator()
    src = numbers_csv(tmp_path / "n.csv")
    out = tmp_path / "out"
    out.mkdir()
    ledger = tmp_path / "ledger.sqlite3"
    args = [str(src), "-o", str(out / "n.csv"), "--errors", str(immutable / "errors.csv"),
            "--endpoint", server.url, "--cust-space-id", "S1", "--cache", str(ledger)]
    res = invoke(*args)
    assert res.exit_code == 1, res.stderr
    errors = [line for line in res.stderr.splitlines() if "error" in line]
    assert errors == [f"enrich: error: cannot write {immutable / 'errors.csv'}: "
                      "Operation not permitted"]
    assert "Traceback" not in res.stderr
    assert listing(out) == [] and listing(immutable) == []  # nothing half-written
    calls = server.stats.requests_total
    assert calls == N

    _chattr("-i", immutable)  # the operator fixes the folder
    res = invoke(*args)
    assert res.exit_code == 0, res.stderr
    assert server.stats.requests_total == calls  # no new call: the ledger had every answer
    summary = json.loads((out / "n.summary.json").read_text())
    assert (summary["cache_hits"], summary["api_calls"]) == (N, 0)


# ------------------------------------------------------------------------------ full disk

_LIMITED = """
import resource, runpy, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # write() fails with EFBIG instead
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
sys.argv = ["enrich", *sys.argv[2:]]
runpy.run_module("enrich", run_name="__main__")
"""


def _run(args: list[str], folder: Path, fsize: int | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALIBABA_CLOUD_", "CAMS_"))}
    env.update(ALIBABA_CLOUD_ACCESS_KEY_ID="testAKID", ALIBABA_CLOUD_ACCESS_KEY_SECRET="testSecret",
               XDG_CACHE_HOME=str(folder / ".cache"))
    cmd = [sys.executable, "-m", "enrich", *args] if fsize is None else [
        sys.executable, "-c", _LIMITED, str(fsize), *args]
    return subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True, timeout=60,
                          check=False)


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "parquet"])
def test_full_disk_keeps_answers_and_older_outputs(emulator, tmp_path: Path, fmt: str) -> None:
    server = emulator()
    numbers_csv(tmp_path / "n.csv", note_bytes=40_000)  # ~480 KB of notes
    out = tmp_path / f"n.enriched.{fmt}"
    out.write_bytes(b"an older good output")
    args = ["run", "n.csv", "-o", out.name, "--endpoint", server.url, "--cust-space-id", "S1",
            "--cache", "ledger.sqlite3", "--no-progress",
            "--quota", "off"]  # the disk limit is for the outputs, not the quota store
    before = listing(tmp_path)

    res = _run(args, tmp_path, fsize=FSIZE)
    assert res.returncode == 1, res.stderr
    assert "Traceback" not in res.stderr
    errors = [line for line in res.stderr.splitlines() if line.startswith("enrich: error:")]
    assert len(errors) == 1 and errors == res.stderr.splitlines()[-1:]
    assert errors[0].endswith(f"cannot write {out.name}: File too large"), errors
    assert out.read_bytes() == b"an older good output"  # never replaced by a partial file
    new = set(listing(tmp_path)) - set(before)  # no temp, lock, report or summary file
    assert "ledger.sqlite3" in new
    assert new <= {"ledger.sqlite3", "ledger.sqlite3-wal", "ledger.sqlite3-shm"}
    calls = server.stats.requests_total
    assert calls == N

    res = _run(args, tmp_path, fsize=None)  # space freed
    assert res.returncode == 0, res.stderr
    assert server.stats.requests_total == calls
    summary = json.loads((tmp_path / "n.summary.json").read_text())
    assert (summary["rows"], summary["cache_hits"], summary["api_calls"]) == (N, N, 0)
    assert out.stat().st_size > FSIZE  # the whole output could never fit under the limit
