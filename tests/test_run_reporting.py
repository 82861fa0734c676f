"""What a run reports to cron and monitoring: the metrics file and the JSON log's events.

Real runs (the CLI in-process) against the emulator as a real server.
"""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from enrich.cli import cli


def gauges(path: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(path.read_text()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def numbers_csv(path: Path, n: int) -> Path:
    path.write_text("phone\n" + "".join(f"+86139{i:08d}\n" for i in range(n)) + "abc\n", "utf-8")
    return path


def run(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(cli, ["run", *args, "--no-progress"])
    return res.exit_code, res.output


def test_a_run_writes_its_metrics(emulator, creds, tmp_path: Path) -> None:
    server = emulator()
    src = numbers_csv(tmp_path / "leads.csv", 5)
    prom = tmp_path / "enrich.prom"
    code, out = run(str(src), "--endpoint", server.url, "--cust-space-id", "c1",
                    "--metrics-file", str(prom))  # fmt: skip
    assert code == 0, out
    g = gauges(prom)
    job = (("job", "leads"),)
    assert g[("cams_enrich_exit_code", job)] == 0
    assert g[("cams_enrich_input_rows", job)] == 6
    assert g[("cams_enrich_api_calls", job)] == 5
    assert g[("cams_enrich_rows", (("job", "leads"), ("status", "invalid_phone")))] == 1
    summary = json.loads((tmp_path / "leads.summary.json").read_text())
    assert summary["credentials"] == "environment"
    assert summary["quota"].endswith("quota.sqlite3")


def test_a_fatal_run_still_writes_its_metrics_and_json_logs_end_with_end(
    emulator, creds, tmp_path: Path
) -> None:
    server = emulator()
    src = numbers_csv(tmp_path / "leads.csv", 30)
    prom = tmp_path / "enrich.prom"
    code, out = run(str(src), "--endpoint", server.url, "--cust-space-id",
                    "err-Product.Unsubscript", "--metrics-file", str(prom),
                    "--log-format", "json")  # fmt: skip
    assert code == 3, out
    events = [json.loads(line) for line in out.splitlines()]  # every line is JSON
    names = [e["event"] for e in events]
    assert names[0] == "start" and names[-1] == "end"
    assert names.count("end") == 1 and names.count("error") == 1
    assert names.index("error") < names.index("end")
    assert events[-1]["exit_code"] == 3 and events[-1]["rows"] == 31
    g = gauges(prom)
    assert g[("cams_enrich_exit_code", (("job", "leads"),))] == 3
    assert g[("cams_enrich_input_rows", (("job", "leads"),))] == 31
    assert not (tmp_path / "leads.enriched.csv").exists()


def test_bad_input_in_json_logs_is_one_json_error(tmp_path: Path) -> None:
    code, out = run(str(tmp_path / "missing.csv"), "--cust-space-id", "c1",
                    "--log-format", "json")  # fmt: skip
    assert code == 1
    lines = out.splitlines()
    assert len(lines) == 1
    event = json.loads(lines[0])
    assert event["event"] == "error" and event["exit_code"] == 1


def test_the_error_rate_warning_comes_before_the_end(emulator, creds, tmp_path: Path) -> None:
    server = emulator()
    src = numbers_csv(tmp_path / "leads.csv", 2)
    code, out = run(str(src), "--endpoint", server.url, "--cust-space-id", "c1",
                    "--max-error-rate", "0.1", "--log-format", "json")  # fmt: skip
    assert code == 4, out
    names = [json.loads(line)["event"] for line in out.splitlines()]
    assert names[-2:] == ["error_rate", "end"]
