"""The --metrics-file: gauges parsed back with prometheus_client's own parser; atomic writes.

Tests run as root, so a read-only mode does not stop a write. The failures here are real
ones: a missing folder, a parent that is a file, a target that is a folder, an immutable
folder (``chattr +i``, skipped where unavailable) and a full disk (``RLIMIT_FSIZE`` in a
subprocess, as in test_write_failures.py). Only the interrupt is simulated.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from enrich.errors import OutputError, UsageError
from enrich.metrics import check_metrics_path, write_metrics

FULL = {
    "input": "leads.csv",
    "rows": 40,
    "unique_numbers": 29,
    "invalid": 7,
    "cache_hits": 4,
    "api_calls": 31,
    "retries": 6,
    "throttled": 2,
    "ok": 20,
    "no_profile": 5,
    "error_rows": 15,
    "errors_by_code": {"Client.InvalidPhone": 5, "Client.MissingPhone": 2,
                       "Unknown.ResourceOwnerId": 8},
    "started_at": "2024-12-02T02:15:00Z",
    "finished_at": "2024-12-02T02:15:04Z",
    "elapsed_s": 4.25,
    "requests_per_s": 9.75,
    "exit_code": 0,
}
END = 1_733_105_704.5

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(path: Path) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(path.read_text("utf-8")):
        assert family.type == "gauge", family.name
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def one(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return (f"cams_enrich_{name}", frozenset({"job": "nightly", **labels}.items()))


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_a_full_summary_becomes_these_gauges(tmp_path: Path) -> None:
    path = tmp_path / "cams_enrich.prom"
    write_metrics(path, FULL, job="nightly", exit_code=0, duration_s=4.25, finished_at=END)
    assert samples(path) == {
        one("exit_code"): 0,
        one("duration_seconds"): 4.25,
        one("last_run_end_timestamp_seconds"): END,
        one("input_rows"): 40,
        one("unique_numbers"): 29,
        one("cache_hits"): 4,
        one("api_calls"): 31,
        one("retries"): 6,
        one("throttled"): 2,
        one("requests_per_second"): 9.75,
        one("rows", status="ok"): 20,
        one("rows", status="no_profile"): 5,
        one("rows", status="invalid_phone"): 7,
        one("rows", status="error"): 8,
        one("error_rows", code="Client.InvalidPhone"): 5,
        one("error_rows", code="Client.MissingPhone"): 2,
        one("error_rows", code="Unknown.ResourceOwnerId"): 8,
    }
    assert listing(tmp_path) == ["cams_enrich.prom"]
    assert (path.stat().st_mode & 0o777) == 0o666 & ~_umask()


def test_the_statuses_add_up_to_the_rows_and_the_codes_to_the_error_rows(tmp_path: Path) -> None:
    path = tmp_path / "m.prom"
    write_metrics(path, FULL, job="nightly", exit_code=0, duration_s=1, finished_at=END)
    got = samples(path)
    rows = sum(v for (name, _), v in got.items() if name == "cams_enrich_rows")
    by_code = sum(v for (name, _), v in got.items() if name == "cams_enrich_error_rows")
    assert rows == got[one("input_rows")] == FULL["rows"]
    assert by_code == FULL["error_rows"]


def test_a_fatal_run_writes_its_exit_code_and_only_the_figures_it_has(tmp_path: Path) -> None:
    """Exit 3 stops before the rows are counted: no 0 stands in for an unknown figure."""
    partial = {"rows": 40, "unique_numbers": 29, "invalid": 7, "cache_hits": 0,
               "api_calls": 3, "retries": 0, "throttled": 0}
    path = tmp_path / "m.prom"
    write_metrics(path, partial, job="nightly", exit_code=3, duration_s=0.8, finished_at=END)
    assert samples(path) == {
        one("exit_code"): 3,
        one("duration_seconds"): 0.8,
        one("last_run_end_timestamp_seconds"): END,
        one("input_rows"): 40,
        one("unique_numbers"): 29,
        one("cache_hits"): 0,
        one("api_calls"): 3,
        one("retries"): 0,
        one("throttled"): 0,
        one("rows", status="invalid_phone"): 7,
    }


def test_an_empty_summary_still_gives_the_series_the_alerts_need(tmp_path: Path) -> None:
    path = tmp_path / "m.prom"
    write_metrics(path, {"rows": None, "ok": "n/a", "errors_by_code": None}, job="nightly",
                  exit_code=130, duration_s=2, finished_at=END)
    assert samples(path) == {
        one("exit_code"): 130,
        one("duration_seconds"): 2,
        one("last_run_end_timestamp_seconds"): END,
    }


def test_label_values_are_escaped(tmp_path: Path) -> None:
    path = tmp_path / "m.prom"
    odd = 'x"y\\z\nw'
    write_metrics(path, {"errors_by_code": {odd: 1}}, job="a b", exit_code=0, duration_s=1,
                  finished_at=END)
    got = samples(path)
    assert got[("cams_enrich_error_rows", frozenset({"job": "a b", "code": odd}.items()))] == 1


def test_a_new_run_replaces_the_file_whole(tmp_path: Path) -> None:
    """An error code of last night does not linger in tonight's file."""
    path = tmp_path / "m.prom"
    write_metrics(path, FULL, job="nightly", exit_code=0, duration_s=1, finished_at=END)
    tonight = {**FULL, "errors_by_code": {"Client.Timeout": 1}}
    write_metrics(path, tonight, job="nightly", exit_code=0, duration_s=1, finished_at=END + 1)
    got = samples(path)
    codes = {dict(labels)["code"] for (name, labels) in got if name == "cams_enrich_error_rows"}
    assert codes == {"Client.Timeout"}
    assert got[one("last_run_end_timestamp_seconds")] == END + 1
    assert listing(tmp_path) == ["m.prom"]


# --- failures: one line, an older file untouched, no temp file left


def test_a_missing_folder_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "nope" / "m.prom"
    with pytest.raises(OutputError) as err:
        write_metrics(path, FULL, job="nightly", exit_code=0, duration_s=1, finished_at=END)
    assert str(err.value) == (
        f"cannot write metrics file {path}: folder {path.parent} does not exist"
    )
    assert listing(tmp_path) == []


def test_a_parent_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    path = tmp_path / "file" / "m.prom"
    with pytest.raises(OutputError) as err:
        write_metrics(path, FULL, job="nightly", exit_code=0, duration_s=1, finished_at=END)
    assert str(err.value) == (
        f"cannot write metrics file {path}: folder {path.parent} is not a folder"
    )
    assert listing(tmp_path) == ["file"]


def test_a_target_that_is_a_folder_fails_after_writing_and_leaves_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "m.prom"
    path.mkdir()
    (path / "keep").write_text("x")
    with pytest.raises(OutputError) as err:
        write_metrics(path, FULL, job="nightly", exit_code=0, duration_s=1, finished_at=END)
    assert str(err.value) == f"cannot write metrics file {path}: Is a directory"
    assert listing(tmp_path) == ["m.prom"]
    assert listing(path) == ["keep"]


def _chattr(flag: str, path: Path) -> bool:
    if shutil.which("chattr") is None:
        return False
    res = subprocess.run(["chattr", flag, str(path)], capture_output=True, timeout=10, check=False)
    return res.returncode == 0


@pytest.fixture
def good_file_in_immutable_folder(tmp_path: Path) -> Iterator[Path]:
    """An older good metrics file in a folder nobody, root included, can create files in."""
    folder = tmp_path / "textfile"
    folder.mkdir()
    good = folder / "m.prom"
    write_metrics(good, FULL, job="nightly", exit_code=0, duration_s=1, finished_at=END)
    if not _chattr("+i", folder):
        pytest.skip("chattr +i is not available here (not root, or not supported)")
    try:
        yield good
    finally:
        _chattr("-i", folder)


def test_an_unwritable_folder_keeps_the_older_file(good_file_in_immutable_folder: Path) -> None:
    good = good_file_in_immutable_folder
    before = good.read_bytes()
    with pytest.raises(OutputError) as err:
        write_metrics(good, FULL, job="nightly", exit_code=3, duration_s=1, finished_at=END + 9)
    assert str(err.value) == f"cannot write metrics file {good}: Operation not permitted"
    assert good.read_bytes() == before
    assert listing(good.parent) == ["m.prom"]


FULL_DISK = """
import resource, signal, sys
from pathlib import Path
from enrich.errors import OutputError
from enrich.metrics import write_metrics
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
codes = {f"Code.{i:05d}": i for i in range(500)}   # about 40 kB of text
try:
    write_metrics(Path(sys.argv[1]), {"errors_by_code": codes}, job="nightly", exit_code=0,
                  duration_s=1, finished_at=2e9)
except OutputError as exc:
    print(exc)
"""


def test_a_full_disk_keeps_the_older_file_and_leaves_no_temp(tmp_path: Path) -> None:
    good = tmp_path / "m.prom"
    write_metrics(good, FULL, job="nightly", exit_code=0, duration_s=1, finished_at=END)
    before = good.read_bytes()
    assert len(before) < 4096
    res = subprocess.run([sys.executable, "-c", FULL_DISK, str(good)], capture_output=True,
                         text=True, timeout=60, check=False)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == f"cannot write metrics file {good}: File too large"
    assert good.read_bytes() == before
    assert listing(tmp_path) == ["m.prom"]


def test_an_interrupt_while_writing_removes_the_temp(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    good = tmp_path / "m.prom"
    write_metrics(good, FULL, job="nightly", exit_code=0, duration_s=1, finished_at=END)
    before = good.read_bytes()

    def interrupted(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_metrics(good, FULL, job="nightly", exit_code=130, duration_s=1, finished_at=END)
    assert good.read_bytes() == before
    assert listing(tmp_path) == ["m.prom"]


def test_temp_files_of_killed_runs_are_removed(tmp_path: Path) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, timeout=60, check=True)
    dead = int(gone.stdout)
    stale = tmp_path / f".m.prom.{dead}-0123abcd.tmp"
    mine = tmp_path / f".m.prom.{os.getpid()}-0123abcd.tmp"
    other = tmp_path / f".other.prom.{dead}-0123abcd.tmp"
    for p in (stale, mine, other):
        p.write_text("half")
    write_metrics(tmp_path / "m.prom", FULL, job="nightly", exit_code=0, duration_s=1,
                  finished_at=END)
    assert listing(tmp_path) == sorted(["m.prom", mine.name, other.name])


# --- the path, checked before the run


def test_check_metrics_path_wants_a_prom_file_in_a_folder(tmp_path: Path) -> None:
    check_metrics_path(tmp_path / "cams_enrich.prom")
    cases = {
        tmp_path / "m.txt": "the name must end in .prom (the node_exporter textfile "
                            "collector reads only *.prom)",
        tmp_path / "m.prom.tmp": "the name must end in .prom (the node_exporter textfile "
                                 "collector reads only *.prom)",
        tmp_path / "nope" / "m.prom": f"folder {tmp_path / 'nope'} does not exist",
        tmp_path / "dir.prom": "is a folder",
    }
    (tmp_path / "dir.prom").mkdir()
    for path, reason in cases.items():
        with pytest.raises(UsageError) as err:
            check_metrics_path(path)
        assert str(err.value) == f"--metrics-file {path}: {reason}"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
