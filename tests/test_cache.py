"""The ledger is real SQLite: durable puts, freshness, prune, clear."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from enrich.cache import Ledger
from enrich.client import Answer, Profile


def test_put_lookup_freshness_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite3"
    with Ledger(path) as ledger:
        ledger.put_answer(("S", "861"), Answer(Profile(address="A", websites=("w",)), "R1", 100.0))
        ledger.put_answer(("S", "862"), Answer(None, "R2", 200.0))
        ledger.put_error(("S", "863"), code="Some.Code", message="m", http_status=400,
                         request_id="R3", fetched_at=300.0)
    # a second connection sees every put without any close/commit dance
    with Ledger(path) as ledger:
        got = ledger.lookup([("S", "861"), ("S", "862"), ("S", "863"), ("S", "864"),
                             ("T", "861")], not_before=150.0)
        assert set(got) == {("S", "862"), ("S", "863")}
        assert got[("S", "862")].status == "no_profile"
        assert got[("S", "863")].error_code == "Some.Code"
        old = ledger.lookup([("S", "861")], not_before=0.0)[("S", "861")]
        assert old.profile == Profile(address="A", websites=("w",))
        assert old.request_id == "R1"
        assert ledger.stats()["entries"] == 3
        assert ledger.prune(older_than=250.0) == 2
        assert ledger.clear() == 1
        assert ledger.stats()["entries"] == 0


def test_put_is_committed_immediately(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite3"
    ledger = Ledger(path)
    ledger.put_answer(("S", "1"), Answer(None, "R", 1.0))
    # read through an independent sqlite3 connection while the ledger is still open
    other = sqlite3.connect(path)
    assert other.execute("SELECT COUNT(*) FROM answers").fetchone() == (1,)
    other.close()
    ledger.close()


def test_lookup_many_keys_in_chunks(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.sqlite3") as ledger:
        for i in range(1200):
            ledger.put_answer(("S", str(i)), Answer(None, None, 10.0))
        got = ledger.lookup([("S", str(i)) for i in range(0, 2400, 2)], not_before=0)
        assert len(got) == 600
