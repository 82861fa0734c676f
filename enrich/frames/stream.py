"""Large CSV and Parquet files in bounded batches: read in order, written by appending.

A CSV file is cut into blocks of about ``batch_bytes`` at line ends outside quoted
fields; each block is checked the way ``csv_read`` checks a whole file (valid
UTF-8, every record as wide as the header) and read by polars with the header
line put in front, so its cells are what the whole-file reader gives. Anything
the whole-file reader would say something about, or read differently (a title
line, a header without names, a ragged or unclosed record, another encoding,
compression, a one-column file), raises ``NotStreamable``: the caller then reads
the file whole, and its one line says what is wrong.

The writers that append batch after batch are in ``frames.appending``.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import polars as pl
from polars.exceptions import PolarsError

from enrich.frames._common import Table
from enrich.frames.csv_read import _sniff  # one place: the separator as read_csv sniffs it

__all__ = [
    "Batch",
    "CsvLayout",
    "NotStreamable",
    "StreamedTable",
    "csv_batches",
    "csv_layout",
    "parquet_batches",
    "parquet_columns",
]

#: Bytes of CSV per batch (about 300,000 rows of a typical CRM export).
BATCH_BYTES: Final = 16 * 1024 * 1024
#: Rows of Parquet per batch.
BATCH_ROWS: Final = 250_000

_UTF8_BOM: Final = b"\xef\xbb\xbf"
_BREAK: Final = re.compile(r"\r\n|\r|\n")
_HEAD: Final = 256 * 1024
_SNIFF_CHARS: Final = 64 * 1024
_NOT_CSV: Final = (
    b"\x1f\x8b",
    b"\x28\xb5\x2f\xfd",
    b"\xff\xfe",
    b"\xfe\xff",
    b"PAR1",
    b"PK\x03\x04",
)


class NotStreamable(Exception):
    """The file must be read whole (``frames.read_table``), which says what is wrong."""


@dataclass
class Batch:
    """Consecutive data rows of the input, every column as read (CSV: text)."""

    df: pl.DataFrame
    source_rows: pl.Series
    """Each row's line in the file (CSV) or its position (Parquet), as ``Table.source_rows``."""
    bytes_read: int = 0
    """Bytes of the file read so far (progress)."""
    plain: bool = False
    """A CSV block without a quote (its lines are its rows)."""
    lines: pl.Series | None = None
    """A CSV block without a quote, when asked for: each row's line as it is in the
    file, without its line end (what ``write_csv`` writes of its cells)."""


@dataclass
class StreamedTable(Table):
    """A table not read yet: its columns (``df`` has no rows) and where to read it."""

    path: Path = field(default_factory=Path)
    layout: CsvLayout | None = None
    """CSV: separator, header and line ends; ``None`` for Parquet."""
    batch_bytes: int = BATCH_BYTES
    batch_rows: int = BATCH_ROWS
    size: int = 0
    on_phase: Any = None
    """``Callable[[str, int, int], None]``: phase, done, total (bytes or rows)."""
    key_columns: tuple[str, ...] = ()
    """Set by the first pass: the columns the rows' keys are read from."""
    plain: bool = False
    """Set by the first pass: every CSV block was free of quotes (the second pass,
    cut at the same places, may then copy each row's line as it is)."""

    def batches(
        self,
        *,
        checked: bool = False,
        columns: Sequence[str] | None = None,
        lines: bool = False,
    ) -> Iterator[Batch]:
        """The data rows in order, batch by batch (``checked``: read before, do not check;
        ``columns``: only these are needed, a batch may hold only them; ``lines``: a
        block without quotes comes with its rows' lines, ``Batch.lines``)."""
        if self.layout is not None:
            return csv_batches(
                self.path,
                self.layout,
                batch_bytes=self.batch_bytes,
                checked=checked,
                columns=columns,
                lines=lines,
            )
        return parquet_batches(self.path, batch_rows=self.batch_rows)


@dataclass(frozen=True)
class CsvLayout:
    """What the head of a CSV file says: how to read every block of it."""

    separator: str
    bom: bool
    line_terminator: str
    header: list[str]
    header_bytes: bytes
    """The header line as written, with its line end (no BOM)."""


def csv_layout(path: Path, separator: str | None, *, size: int) -> CsvLayout:
    """The layout of the CSV file ``path`` (``size`` bytes); ``separator`` ``None`` sniffs it.

    Raises:
        NotStreamable: the file is not plain UTF-8 CSV with a simple header line.
    """
    with path.open("rb") as handle:
        head = handle.read(_HEAD)
    if head.startswith(_NOT_CSV) or b"\x00" in head[:8192]:
        raise NotStreamable("not plain text")
    bom = head.startswith(_UTF8_BOM)
    body = head[len(_UTF8_BOM) :] if bom else head
    whole = len(head) >= size
    if not whole:
        body = body[: body.rfind(b"\n") + 1]
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise NotStreamable("not UTF-8") from None
    if not whole and len(text) <= _SNIFF_CHARS:
        raise NotStreamable("too little text to sniff as the whole file would be")
    end = text.find("\n")
    if end <= 0 or '"' in text[:end] or "\r" in text[: end - 1]:
        raise NotStreamable("no simple header line")
    first = text[: end + 1]
    line_terminator = "\r\n" if first.endswith("\r\n") else "\n"
    sep = separator if separator is not None else _sniff(text)
    header = first.removesuffix("\n").removesuffix("\r").split(sep)
    if len(header) < 2 or "" in header or len(set(header)) != len(header):
        raise NotStreamable("one column, a nameless or a repeated column")
    return CsvLayout(sep, bom, line_terminator, header, first.encode("utf-8"))


def csv_batches(
    path: Path,
    layout: CsvLayout,
    *,
    batch_bytes: int = BATCH_BYTES,
    checked: bool = False,
    columns: Sequence[str] | None = None,
    lines: bool = False,
) -> Iterator[Batch]:
    """The data rows of ``path`` in blocks of about ``batch_bytes``, blank records dropped.

    ``columns``: only these are needed; a batch may then hold only them. ``lines``:
    a block without quotes comes with its rows' lines (``Batch.lines``).

    Raises:
        NotStreamable: a block the whole-file reader would refuse or read otherwise.
    """
    start = (len(_UTF8_BOM) if layout.bom else 0) + len(layout.header_bytes)
    line = 2  # the header is line 1
    done = start
    with path.open("rb") as handle:
        handle.seek(start)
        pending = b""
        while True:
            block = handle.read(batch_bytes)
            eof = not block
            data = pending + block
            if not data:
                return
            cut = len(data) if eof else data.rfind(b"\n") + 1
            while cut > 0 and data.count(b'"', 0, cut) % 2:
                cut = data.rfind(b"\n", 0, cut - 1) + 1  # inside a quoted field: cut earlier
            if cut == 0:
                if eof:
                    raise NotStreamable("an unclosed quote")
                pending = data
                continue
            chunk, pending = data[:cut], data[cut:]
            done += len(chunk)
            batch, spanned = _read_block(
                chunk, layout, first_line=line, checked=checked, columns=columns, lines=lines
            )
            line += spanned
            batch.bytes_read = done
            yield batch
            if eof and not pending:
                return


def _read_block(
    chunk: bytes,
    layout: CsvLayout,
    *,
    first_line: int,
    checked: bool = False,
    columns: Sequence[str] | None = None,
    lines: bool = False,
) -> tuple[Batch, int]:
    """One block of whole records: the batch, and the lines it spans.

    ``checked``: the block was read before (pass 1), so it is not checked again.
    ``lines``: a block without quotes comes with its rows' lines.
    """
    sep, width = layout.separator, len(layout.header)
    blank: pl.Series | None = None
    rows: pl.Series | None = None
    plain = b'"' not in chunk and (b"\r" not in chunk or chunk.count(b"\r") == chunk.count(b"\r\n"))
    if plain:
        n = chunk.count(b"\n")
        spanned = n + (0 if chunk.endswith(b"\n") else 1)
        if not checked or lines or columns is not None:
            rows = _split_lines(chunk)
            if not checked:
                _check_lines(rows, sep, width)
            blank = rows.str.strip_chars(sep + "\r") == ""
        starts = pl.int_range(first_line, first_line + spanned, dtype=pl.Int64, eager=True)
    else:
        columns = None
        try:
            text = chunk.decode("utf-8")
        except UnicodeDecodeError:
            raise NotStreamable("not UTF-8") from None
        breaks = len(_BREAK.findall(text))
        spanned = breaks + (0 if text.endswith(("\n", "\r")) else 1)
        starts = _record_starts(text, sep, width, first_line)
    try:
        df = pl.read_csv(
            layout.header_bytes + chunk,
            separator=sep,
            infer_schema=False,
            has_header=True,
            quote_char='"',
            raise_if_empty=False,
            truncate_ragged_lines=False,
            columns=None if columns is None or blank is None else list(columns),
        )
    except (PolarsError, pl.exceptions.PanicException, ValueError):
        raise NotStreamable("polars cannot read a block") from None
    wanted = layout.header
    if columns is not None and blank is not None:
        wanted = list(columns)  # polars gives them in the order asked
    if df.columns != wanted or df.height != starts.len():
        raise NotStreamable("polars reads a block otherwise")
    source_rows = starts.alias("source_row")
    if blank is not None and columns is not None:
        if blank.any():  # the lines tell which records are blank: not every column is read
            df, source_rows = df.filter(~blank), source_rows.filter(~blank)
    elif df.height:
        keep = df.select(~pl.all_horizontal(pl.all().is_null() | (pl.all() == ""))).to_series()
        if not keep.all():
            df, source_rows = df.filter(keep), source_rows.filter(keep)
    kept: pl.Series | None = None
    if lines and rows is not None and blank is not None:
        # no quote, no lone CR: a cell is never quoted when written, so the line as
        # it is in the file (its CR of a CRLF end removed) is what write_csv writes
        kept = rows.filter(~blank).str.strip_suffix("\r")
        if kept.len() != df.height:
            raise NotStreamable("polars reads a block otherwise")
    return Batch(df, source_rows, plain=plain, lines=kept), spanned


def _split_lines(chunk: bytes) -> pl.Series:
    """A quote-free block's lines (CRs kept); valid UTF-8 or ``NotStreamable``.

    Decoded by polars (no Python text of the block).
    """
    body = chunk[:-1] if chunk.endswith(b"\n") else chunk
    try:
        text = pl.Series([body], dtype=pl.Binary).cast(pl.String)
    except PolarsError:
        raise NotStreamable("not UTF-8") from None
    return text.str.split("\n").explode()


def _check_lines(rows: pl.Series, sep: str, width: int) -> None:
    """Quote-free lines: each blank or with exactly ``width - 1`` separators."""
    ok = (rows.str.count_matches(sep, literal=True) == width - 1) | rows.is_in(["", "\r"])
    if not ok.all():
        raise NotStreamable("a ragged line")


def _record_starts(text: str, sep: str, width: int, first_line: int) -> pl.Series:
    """The line each record starts on, by the stdlib reader (quoted fields)."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep, strict=True)
    starts: list[int] = []
    seen = 0
    try:
        for record in reader:
            if record and len(record) != width:
                raise NotStreamable("a ragged record")
            starts.append(first_line + seen)
            seen = reader.line_num
    except csv.Error:
        raise NotStreamable("malformed CSV") from None
    return pl.Series(starts, dtype=pl.Int64)


def parquet_columns(path: Path) -> pl.Schema:
    """The schema of the Parquet file ``path``.

    Raises:
        NotStreamable: not a readable Parquet file, or one without columns.
    """
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
            handle.seek(-4, os.SEEK_END)
            tail = handle.read(4)
        schema = pl.scan_parquet(path).collect_schema()
    except (OSError, PolarsError, pl.exceptions.PanicException, ValueError):
        raise NotStreamable("not a readable Parquet file") from None
    if magic != b"PAR1" or tail != b"PAR1" or not schema:
        raise NotStreamable("not a Parquet file with columns")
    return schema


def parquet_batches(path: Path, *, batch_rows: int = BATCH_ROWS) -> Iterator[Batch]:
    """The rows of ``path`` in order, ``batch_rows`` at a time."""
    offset = 0
    scan = pl.scan_parquet(path)
    while True:
        try:
            df = scan.slice(offset, batch_rows).collect()
        except (PolarsError, pl.exceptions.PanicException, OSError, ValueError):
            raise NotStreamable("a Parquet batch cannot be read") from None
        if not df.height:
            return
        rows = pl.int_range(offset + 1, offset + df.height + 1, dtype=pl.Int64, eager=True)
        offset += df.height
        yield Batch(df, rows.alias("source_row"), bytes_read=offset)
        if df.height < batch_rows:
            return
