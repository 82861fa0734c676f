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


def test_frame_lookups_agree_with_the_one_by_one_lookup_whatever_the_text(
    tmp_path: Path,
) -> None:
    """The NDJSON texts SQLite builds escape every value: quotes, backslashes, control
    characters, non-ASCII, in keys, messages and profiles; several CustSpaceIds."""
    import polars as pl

    odd = ['S"1', "S\\2", "S\t3 ü", "S4"]
    profile = Profile(about='say "hi"\n\\ ok\x01', email="é@x", websites=("https://a", 'b"'))
    with Ledger(tmp_path / "l.sqlite3") as ledger:
        keys = []
        for i, space in enumerate(odd):
            for j in range(3):
                key = (space, f"86138{i}{j}")
                keys.append(key)
                if j == 0:
                    ledger.put_answer(key, Answer(profile, f'R"{i}', 1_700_000_000.0))
                elif j == 1:
                    ledger.put_error(key, code="Throttling.User", message='quota "exceeded"\r\n',
                                     http_status=429, request_id="R", fetched_at=1_700_000_000.0)
        frame = ledger.lookup_frame([*reversed(keys), ("nobody", "1")], not_before=0)
        one_by_one = ledger.lookup(keys, not_before=0)
        readings = pl.DataFrame(
            {"raw": ['"+86 138"', "a\\b", "ü\n"], "number": ["86138", None, None],
             "err": [None, "Client.InvalidPhone", "Client.InvalidPhone"],
             "multi": [False, False, True]},
        )  # fmt: skip
        ledger.remember_readings(readings, region=None, rules="r1")
        back = ledger.lookup_readings(["ü\n", '"+86 138"', "a\\b", "unknown"], region=None,
                                      rules="r1")  # fmt: skip
    got = {(r["cust"], r["number"]): r for r in frame.iter_rows(named=True)}
    assert set(got) == set(one_by_one)
    for key, outcome in one_by_one.items():
        row = got[key]
        assert (row["r_status"], row["bp_request_id"], row["r_code"], row["r_message"],
                row["r_http"]) == (outcome.status, outcome.request_id, outcome.error_code,
                                   outcome.error_message, outcome.http_status)  # fmt: skip
        if outcome.profile is not None:
            assert row["profile"]["about"] == profile.about
            assert row["profile"]["websites"] == list(profile.websites)
    assert back.sort("raw").equals(readings.sort("raw"))
