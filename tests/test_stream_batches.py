"""CSV batches read what the whole-file reader reads, wherever the batch edges fall."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enrich import frames
from enrich.errors import InputError
from enrich.frames.stream import NotStreamable, csv_batches, csv_layout

_FIELDS = st.sampled_from(
    ["", "a", "+86 138", "x y", '"q, with sep"', '"two\nlines"', '"crlf\r\nin"',
     '"say ""hi"""', "ü", "007", " "]
)  # fmt: skip


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    width = draw(st.integers(2, 4))
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    header = [f"c{i}" for i in range(width)]
    rows = draw(st.lists(st.lists(_FIELDS, min_size=width, max_size=width), max_size=25))
    lines = [",".join(header)] + [",".join(r) for r in rows]
    blanks = draw(st.integers(0, 3))  # empty lines at the end (and one in the middle)
    if rows and draw(st.booleans()):
        lines.insert(1 + len(rows) // 2, "")
    text = eol.join(lines) + eol * draw(st.integers(0, 1)) + eol * blanks
    bom = b"\xef\xbb\xbf" if draw(st.booleans()) else b""
    return bom + text.encode()


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=csv_files(), batch=st.integers(1, 80))
def test_batches_read_what_the_whole_file_reader_reads(
    tmp_path: Path, data: bytes, batch: int
) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(data)
    try:
        whole = frames.read_table(path)
    except InputError:
        whole = None
    try:
        layout = csv_layout(path, None, size=len(data))
        parts = list(csv_batches(path, layout, batch_bytes=batch))
    except NotStreamable:
        return  # read whole: nothing to compare
    assert whole is not None, "the batches read a file the whole-file reader refuses"
    df = pl.concat([p.df for p in parts]) if parts else whole.df.clear()
    lines = pl.concat([p.source_rows for p in parts]) if parts else pl.Series([], dtype=pl.Int64)
    assert df.columns == whole.df.columns
    assert df.equals(whole.df)
    assert whole.source_rows is not None
    assert lines.to_list() == whole.source_rows.to_list()
    assert (layout.bom, layout.line_terminator, layout.separator) == (
        whole.bom, whole.line_terminator, whole.separator,
    )  # fmt: skip
    # pass 2's copy: a quote-free block's lines are what write_csv writes of its rows
    again = list(csv_batches(path, layout, batch_bytes=batch, checked=True, lines=True))
    assert [p.plain for p in again] == [p.plain for p in parts]
    for part in again:
        assert (part.lines is not None) == part.plain
        if part.lines is not None and part.df.height:
            written = part.df.write_csv(include_header=False, null_value="")
            assert part.lines.to_list() == written.removesuffix("\n").split("\n")


def test_plain_files_stream(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(b'\xef\xbb\xbfa,b\r\n1,"x\r\ny"\r\n\r\n2,z\r\n')
    layout = csv_layout(path, None, size=path.stat().st_size)
    parts = list(csv_batches(path, layout, batch_bytes=3))
    assert pl.concat([p.df for p in parts]).rows() == [("1", "x\r\ny"), ("2", "z")]
    assert pl.concat([p.source_rows for p in parts]).to_list() == [2, 5]
