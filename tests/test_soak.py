"""Fault soak: 1,000 numbers against an emulator failing 30% of requests, every fault kind.

Every number must end with the emulator's true answer, or with a reported error
after exactly ``--max-attempts`` attempts: none lost, none paid twice, and the
summary must agree with the output and the error report.

The emulator's ``hang`` fault holds its answer for ``hang_s``; one that runs its
course answers OK and counts as a success the client (long timed out) never saw.
``hang_s`` is therefore longer than the run: hung requests are released when the
server stops, and ``stats.successes`` counts only answers a client could see.
The run's ``--timeout 0.3`` keeps hangs cheap.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import polars as pl
from click.testing import CliRunner

from enrich.cli import cli
from enrich.emulator import ALL_FAULTS, data_on_wire
from enrich.errors import CallError
from enrich.retry import classify

N = 1000
MAX_ATTEMPTS = 4
SPACE = "S1"
# Deterministic companions of the random faults (magic CustSpaceIds get no random fault):
# these fail every try, so they must be reported after exactly MAX_ATTEMPTS attempts ...
ALWAYS_FAILING = ["fault-http503_json-9", "fault-drop-9", "fault-garbage-9", "fault-hang-9"]
# ... and these fail all tries but the last, so they must succeed on the last one.
LAST_CHANCE = ["fault-throttle-3", "fault-truncated_json-3", "fault-xml_error-3"]


def truth(number: str) -> tuple[str, dict[str, object] | None]:
    """(status, fields) the emulator's answer must become, after the stripping rules."""
    data = data_on_wire(SPACE, number)
    if not isinstance(data, dict):
        return "no_profile", None

    def clean(v: object) -> str | None:
        return (v.strip() or None) if isinstance(v, str) else None

    fields: dict[str, object] = {
        col: clean(data.get(key))
        for col, key in (("bp_about", "About"), ("bp_address", "Address"),
                         ("bp_description", "Description"), ("bp_vertical", "Vertical"),
                         ("bp_email", "Email"), ("bp_profile_picture_url", "ProfilePictureUrl"))
    }
    sites = data.get("Websites")
    site_list = [sites] if isinstance(sites, str) else list(sites or [])
    fields["bp_websites"] = [s.strip() for s in site_list if isinstance(s, str) and s.strip()]
    return "ok", fields  # even when every field is empty: an empty profile (SPEC "Output file")


def test_fault_soak(emulator, creds, tmp_path: Path) -> None:
    server = emulator(fault_rate=0.3, faults=ALL_FAULTS, hang_s=60.0, seed=11)
    numbers = [f"86139{i:08d}" for i in range(N)]
    magic = [(space, f"86137{i:08d}") for i, space in enumerate(ALWAYS_FAILING + LAST_CHANCE)]
    rows = [(SPACE, "+" + n) for n in numbers] + [(s, "+" + n) for s, n in magic]
    src = tmp_path / "soak.csv"
    src.write_text("space,phone\n" + "".join(f"{s},{p}\n" for s, p in rows))

    res = CliRunner().invoke(cli, [
        "run", str(src), "-o", "soak.parquet", "--endpoint", server.url,
        "--cust-space-column", "space", "--cache", str(tmp_path / "ledger.sqlite3"),
        "--rate", "2000", "--max-attempts", str(MAX_ATTEMPTS), "--timeout", "0.3",
        "--log-format", "json"])
    assert res.exit_code == 0, res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    for line in res.stderr.splitlines():
        json.loads(line)  # every log line is one JSON object

    out = pl.read_parquet(tmp_path / "soak.parquet")
    with (tmp_path / "soak.errors.csv").open(newline="", encoding="utf-8") as f:
        report = list(csv.DictReader(f))
    summary = json.loads((tmp_path / "soak.summary.json").read_text())
    stats = server.stats
    successes, attempts = stats.successes, stats.attempts

    # none lost: every input row, in order, with its own number
    assert out.height == len(rows)
    assert out["space"].to_list() == [s for s, _ in rows]
    assert out["bp_phone"].to_list() == [p[1:] for _, p in rows]
    # none paid twice
    assert max(successes.values()) == 1

    errors_by_row = {int(r["row"]): r for r in report}
    for i, row in enumerate(out.iter_rows(named=True), start=1):
        key = (row["space"], row["bp_phone"])
        if row["bp_status"] == "error":
            err = errors_by_row[i]
            assert err["attempts"] == str(MAX_ATTEMPTS), err
            assert attempts[key] == MAX_ATTEMPTS, (key, err)
            assert successes.get(key, 0) == 0
            assert err["error_code"] == row["bp_error_code"]
            http = int(err["http_status"]) if err["http_status"] else None
            rule = classify(CallError(err["error_code"], "", http_status=http))
            assert rule is not None and rule.decision == "retry", err  # only retries ran out
            continue
        assert i not in errors_by_row
        assert successes[key] == 1, key
        assert 1 <= attempts[key] <= MAX_ATTEMPTS
        if row["space"] != SPACE:
            continue
        status, fields = truth(row["bp_phone"])
        assert row["bp_status"] == status, key
        assert row["bp_error_code"] is None and row["bp_request_id"]
        if fields is not None:
            assert {k: row[k] for k in fields} == fields, key

    by_key = dict(zip(out["space"], out["bp_status"], strict=True))
    assert all(by_key[s] == "error" for s in ALWAYS_FAILING)
    assert all(by_key[s] in ("ok", "no_profile") for s in LAST_CHANCE)
    for space, number in magic:
        assert attempts[(space, number)] == MAX_ATTEMPTS

    # the summary agrees with the output, the error report and the emulator
    status = Counter(out["bp_status"].to_list())
    assert summary["rows"] == len(rows) == summary["unique_numbers"]
    assert summary["ok"] == status["ok"]
    assert summary["no_profile"] == status["no_profile"]
    assert summary["error_rows"] == status["error"] == len(report)
    assert summary["invalid"] == 0
    assert summary["errors_by_code"] == dict(Counter(r["error_code"] for r in report))
    assert summary["api_calls"] == stats.requests_total == sum(attempts.values())
    assert summary["retries"] == summary["api_calls"] - len(rows)
    assert summary["throttled"] >= 1
    assert sum(stats.faults.values()) >= 0.2 * N  # the faults really happened
    assert set(stats.faults) == set(ALL_FAULTS)
