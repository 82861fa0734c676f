"""Large files read in batches give what the whole-file path gives (issue 13).

The streaming path is taken here for small files (``CAMS_ENRICH_STREAM_MIN_BYTES=0``)
with tiny batches, and its three outputs compared byte for byte with the whole-file
path's on the same file and the same cache.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner, Result

from enrich.cli import cli
from enrich.emulator import EmulatorServer

CREDS = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "testAKID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "testSecret"}
_VOLATILE = ("started_at", "finished_at", "elapsed_s", "requests_per_s")


def _run(server: EmulatorServer, inp: Path, out: str, *extra: str, env: dict[str, str]) -> Result:
    args = ["run", str(inp), "-o", out, "--errors", f"{out}.errors.csv",
            "--summary", f"{out}.summary.json", "--endpoint", server.url,
            "--cache", "ledger.sqlite3", "--quota", "off", "--no-progress", *extra]  # fmt: skip
    if "--cust-space-column" not in extra:
        args += ["--cust-space-id", "S1"]
    return CliRunner(env={**CREDS, **env}).invoke(cli, args, catch_exceptions=False)


def _summary(path: str) -> dict[str, object]:
    got = json.loads(Path(f"{path}.summary.json").read_text())
    for key in (*_VOLATILE, "output", "errors"):
        got.pop(key, None)
    return got


def both_ways(
    server: EmulatorServer, inp: Path, *extra: str, out_ext: str = ".csv", batch: int = 64
) -> tuple[str, str, Result]:
    """Whole (twice: the second from the cache, as the streamed run is) then streamed."""
    first = _run(server, inp, f"warm{out_ext}", *extra, env={})
    assert first.exit_code in (0, 4), first.stderr
    eager = _run(server, inp, f"eager{out_ext}", *extra, env={})
    streamed = _run(server, inp, f"streamed{out_ext}", *extra,
                    env={"CAMS_ENRICH_STREAM_MIN_BYTES": "0",
                         "CAMS_ENRICH_STREAM_BATCH_BYTES": str(batch)})  # fmt: skip
    assert streamed.exit_code == eager.exit_code, streamed.stderr
    assert "normalising: " in streamed.stderr, "not streamed: read whole"
    return f"eager{out_ext}", f"streamed{out_ext}", streamed


def assert_same(eager: str, streamed: str) -> None:
    if eager.endswith(".parquet"):
        a, b = pl.read_parquet(eager), pl.read_parquet(streamed)
        assert a.schema == b.schema
        assert a.equals(b)
    else:
        assert Path(streamed).read_bytes() == Path(eager).read_bytes()
    assert Path(f"{streamed}.errors.csv").read_bytes() == Path(f"{eager}.errors.csv").read_bytes()
    assert _summary(streamed) == _summary(eager)


PHONES = ["+8613800138000", "8613800138001", "not a number", "", "+86 138 0013 8000",
          "+8613800138002", "+44 20 7946 0958", "8613800138001", "+1 415 555 0132",
          "12"]  # fmt: skip


def _csv(
    rows: int, *, sep: str = ",", eol: str = "\n", bom: bool = False, quotes: bool = True
) -> bytes:
    """``quotes=False``: no quoted cell (pass 2 then copies each row's line)."""
    lines = [sep.join(["id", "name", "phone", "note"])]
    for i in range(rows):
        note = f'"line {i}{eol}second, part"' if i % 7 == 3 and quotes else f"n{i}"
        note = " " if i % 11 == 5 else note
        lines.append(sep.join([str(i), f"Name {i}", PHONES[i % len(PHONES)], note]))
    text = eol.join(lines) + eol
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode()


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("plain.csv", _csv(40)),
        ("bom_crlf.csv", _csv(40, eol="\r\n", bom=True)),
        ("semicolon.csv", _csv(40, sep=";")),
        ("tabs.tsv", _csv(30, sep="\t")),
        ("blank_lines.csv", b"id,phone\n1,+8613800138000\n\n2,bad\n,\n3,+8613800138000\n\n\n"),
        ("no_final_newline.csv", b"id,phone\n1,+8613800138000\n2,+8613800138003"),
        ("header_only.csv", b"id,phone\n"),
        # no quote anywhere: the lines are copied, each group's bp_* text written once
        ("plain_unquoted.csv", _csv(40, quotes=False)),
        ("bom_crlf_unquoted.csv", _csv(40, eol="\r\n", bom=True, quotes=False)),
        ("semicolon_unquoted.csv", _csv(40, sep=";", quotes=False)),
        ("tabs_unquoted.tsv", _csv(30, sep="\t", quotes=False)),
        ("crlf_blank_lines.csv", b"id,phone\r\n1,+8613800138000\r\n\r\n,\r\n2,bad\r\n\r\n"),
        # an input column whose name starts with "_" is the user's: written, both ways
        ("underscore_column.csv", b"_id,phone\n1,+8613800138000\n2,bad\n"),
        ("underscore_quoted.csv", b'_id,phone\n"1",+8613800138000\n2,bad\n'),
    ],
)
def test_csv_streamed_is_byte_equal(server: EmulatorServer, name: str, data: bytes) -> None:
    Path(name).write_bytes(data)
    eager, streamed, _ = both_ways(server, Path(name))
    assert_same(eager, streamed)
    header = Path(eager).read_bytes().split(b"\n", 1)[0].lstrip(b"\xef\xbb\xbf")
    assert header.startswith(data.lstrip(b"\xef\xbb\xbf").split(b"\n", 1)[0].rstrip(b"\r"))


@pytest.mark.parametrize("quotes", [True, False])
@pytest.mark.parametrize("batch", [1, 7, 33, 10_000])
def test_batch_sizes_do_not_change_a_byte(
    server: EmulatorServer, batch: int, quotes: bool
) -> None:
    Path("in.csv").write_bytes(_csv(60, eol="\r\n", bom=True, quotes=quotes))
    eager, streamed, _ = both_ways(server, Path("in.csv"), batch=batch)
    assert_same(eager, streamed)


def test_parquet_in_and_out(server: EmulatorServer) -> None:
    pl.DataFrame(
        {"id": list(range(30)), "phone": [PHONES[i % len(PHONES)] or None for i in range(30)],
         "score": [i / 3 for i in range(30)], "tags": [[str(i)] for i in range(30)]}
    ).write_parquet("in.parquet")  # fmt: skip
    eager, streamed, _ = both_ways(server, Path("in.parquet"), out_ext=".parquet")
    assert_same(eager, streamed)
    eager, streamed, _ = both_ways(server, Path("in.parquet"), out_ext=".csv")
    assert_same(eager, streamed)


def test_cust_space_column_and_several_phone_columns(server: EmulatorServer) -> None:
    lines = ["space,phone,mobile"] + [
        f"{' S1 ' if i % 3 else 'S2'},{PHONES[i % 10]},{PHONES[(i * 3) % 10]}" for i in range(40)
    ]
    lines[5] = ",+8613800138000,"
    Path("in.csv").write_text("\n".join(lines) + "\n")
    eager, streamed, _ = both_ways(
        server, Path("in.csv"), "--cust-space-column", "space",
        "--phone-column", "phone", "--phone-column", "mobile",
    )  # fmt: skip
    assert_same(eager, streamed)


def test_a_file_the_batches_cannot_read_is_read_whole(server: EmulatorServer) -> None:
    Path("ragged.csv").write_text("id,phone\n1,+8613800138000\n2,+8613800138001,extra\n")
    res = _run(server, Path("ragged.csv"), "o.csv", env={"CAMS_ENRICH_STREAM_MIN_BYTES": "0"})
    assert res.exit_code == 1
    assert "line 3 has 3 fields, header has 2" in res.stderr


def test_the_phases_are_logged(server: EmulatorServer) -> None:
    Path("in.csv").write_bytes(_csv(40))
    _, _, res = both_ways(server, Path("in.csv"))
    said = res.stderr
    assert "reading: 0 of 0 MB (100 %)" in said
    assert "normalising: 9 of 9 distinct phone cells" in said
    assert "writing: 0 of 0 MB (100 %)" in said


@pytest.mark.parametrize("examples", [0, 2, 5, 50])
def test_count_keys_streamed_says_what_prepare_says(
    monkeypatch: pytest.MonkeyPatch, examples: int
) -> None:
    from enrich.job import RunConfig
    from enrich.prepare import count_keys

    Path("in.csv").write_bytes(_csv(60))
    cfg = RunConfig(input=Path("in.csv"), cust_space_id="S1", no_cache=True)
    whole = count_keys(cfg, examples=examples)
    monkeypatch.setenv("CAMS_ENRICH_STREAM_MIN_BYTES", "0")
    monkeypatch.setenv("CAMS_ENRICH_STREAM_BATCH_BYTES", "50")
    phases: list[str] = []
    streamed = count_keys(cfg, examples=examples, on_phase=lambda p, d, t: phases.append(p))
    assert "reading" in phases
    assert streamed == whole
    assert (whole.rows, whole.valid, len(whole.keys)) == (60, 42, 5)


def test_a_website_list_of_one_empty_text_is_an_empty_cell_both_ways(
    server: EmulatorServer,
) -> None:
    """Websites [""] (a service may send it) joined as a spreadsheet cell: no cell, not
    an empty quoted text, in the whole-file and the streamed path alike."""
    import time

    from enrich.cache import Ledger
    from enrich.client import Answer, Profile

    with Ledger(Path("ledger.sqlite3")) as ledger:
        ledger.put_answer(("S1", "8613800138000"),
                          Answer(Profile(about="a", websites=("",)), "R1", time.time()))
    Path("in.csv").write_text("id,phone\n1,+8613800138000\n")
    eager = _run(server, Path("in.csv"), "eager.csv", env={})
    streamed = _run(server, Path("in.csv"), "streamed.csv",
                    env={"CAMS_ENRICH_STREAM_MIN_BYTES": "0"})  # fmt: skip
    assert eager.exit_code == streamed.exit_code == 0, eager.stderr + streamed.stderr
    assert Path("eager.csv").read_bytes() == Path("streamed.csv").read_bytes()
    row = pl.read_csv("eager.csv", infer_schema=False).row(0, named=True)
    assert row["bp_websites"] is None and row["bp_about"] == "a"  # polars reads "" as ""
