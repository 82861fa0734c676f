"""Reading CSV: every cell stays the text that was written.

The bytes are checked and decoded (``csv_text``: not UTF-16, Parquet, ZIP or
binary; valid in their encoding; a BOM and the line ends noted; title lines
skipped), the separator sniffed unless given, then every record is scanned by
the stdlib reader, which names the line that is wrong. polars builds the frame
when it agrees with that scan; the stdlib reader builds it when it does not.
Blank records and nameless empty columns at the right are dropped, and every
data row keeps the line it starts on (``Table.source_rows``).
"""

from __future__ import annotations

import array
import collections
import csv
import io
import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import polars as pl
from polars.exceptions import PolarsError

from enrich.errors import InputError
from enrich.frames._common import Table, check_unique_columns
from enrich.frames.csv_text import decode_csv

__all__ = ["CSV_SEPARATORS", "read_csv"]

#: Separators ``read_table`` sniffs among, in order of preference on a tie.
CSV_SEPARATORS: Final = (",", ";", "\t", "|")

_SNIFF_CHARS: Final = 64 * 1024
_SNIFF_ROWS: Final = 50
_PY_CSV_CHUNK: Final = 100_000
#: A line break as the stdlib reader counts lines (``io.StringIO(newline="")``).
_BREAK: Final = r"\r\n|\r|\n"
_NAMELESS: Final = "__EMPTY__"


def read_csv(
    path: Path,
    separator: str | None,
    *,
    data: bytes,
    encoding: str | None = None,
    header_row: int | None = None,
) -> Table:
    """The CSV ``data`` of ``path`` as text columns; ``separator`` ``None`` sniffs it."""
    decoded = decode_csv(path, data, encoding=encoding, header_row=header_row)
    text = decoded.text
    sep = separator if separator is not None else _sniff(text)
    scan = _scan_csv(path, text, sep, first_line=decoded.first_line)
    names = _frame_names(scan.header)
    df = _polars_csv(decoded.payload, sep, scan) if names == scan.header else None
    if df is None:
        df = _python_csv(text, sep, scan, names)
    lines = _record_lines(scan, df)
    if len(scan.header) > 1 and df.height:
        # A record with no value at all (a blank line, ",,") is no data row.
        blank = pl.all_horizontal(pl.all().is_null() | (pl.all() == ""))
        keep = df.select(~blank).to_series()
        if not keep.all():
            df, lines = df.filter(keep), lines.filter(keep)
    return Table(
        df=_drop_empty_columns(path, df, scan),
        fmt="csv",
        separator=sep,
        bom=decoded.bom,
        line_terminator=decoded.line_terminator,
        encoding=decoded.encoding,
        header_row=scan.header_line,
        source_rows=lines,
    )


def _frame_names(header: list[str]) -> list[str]:
    """The header, with a made-up name for each empty one when several are empty."""
    if header.count("") <= 1:
        return header
    return [name or f"{_NAMELESS}{i}" for i, name in enumerate(header)]


def _drop_empty_columns(path: Path, df: pl.DataFrame, scan: _CsvScan) -> pl.DataFrame:
    """Drop the nameless columns at the right that hold nothing (``Name,Phone,,``).

    Several nameless columns still holding values: is a title line above the header?
    """
    header = scan.header
    drop: list[str] = []
    for i in range(len(header) - 1, 0, -1):
        name = df.columns[i]
        if header[i] or (df[name].drop_nulls() != "").any():
            break
        drop.append(name)
    df = df.drop(drop)
    nameless = [c for c, h in zip(df.columns, header, strict=False) if not h]
    if len(nameless) > 1:
        line = scan.header_line
        raise InputError(
            f"{path}: the header (line {line}) has {len(nameless)} columns without a name; "
            f"name them, or if line {line} is a title, give the header's line with "
            "--header-row N"
        )
    return df.rename({nameless[0]: ""}) if nameless and nameless[0] != "" else df


def _record_lines(scan: _CsvScan, df: pl.DataFrame) -> pl.Series:
    """The file line each record of ``df`` starts on."""
    if scan.record_lines is not None:
        return pl.Series("source_row", scan.record_lines, dtype=pl.Int64)
    first = scan.header_line + 1 + sum(len(re.findall(_BREAK, name)) for name in scan.header)
    if not scan.multiline or not df.width:
        return pl.int_range(first, first + df.height, dtype=pl.Int64, eager=True).alias(
            "source_row"
        )
    spans = df.select(
        (1 + pl.sum_horizontal(pl.all().str.count_matches(_BREAK).fill_null(0))).alias("n")
    ).to_series()
    return (first + spans.cum_sum() - spans).cast(pl.Int64).alias("source_row")


def _sniff(text: str) -> str:
    """Pick the separator that splits the first lines into the most, equal, fields.

    A header that no candidate splits is a one-column file: then the first
    candidate that splits none of the first lines (``,`` when all do).
    """
    head = text[:_SNIFF_CHARS]
    truncated = len(text) > len(head)
    if truncated and "\n" in head:
        head = head[: head.rindex("\n") + 1]
    best, best_score = None, (False, 1)
    single_column = None
    for sep in CSV_SEPARATORS:
        try:
            reader = csv.reader(io.StringIO(head, newline=""), delimiter=sep)
            rows = [r for r in itertools.islice(reader, _SNIFF_ROWS) if r]
        except csv.Error:
            continue
        if not rows:
            continue
        width = len(rows[0])
        checked = rows[:-1] if truncated and len(rows) > 1 else rows
        consistent = all(len(r) == width for r in checked)
        if width == 1:
            # A one-column file: any separator that splits no line will do.
            if consistent and single_column is None:
                single_column = sep
            continue
        score = (consistent, width)
        if score > best_score:
            best, best_score = sep, score
    return best or single_column or ","


@dataclass
class _CsvScan:
    header: list[str]
    rows: int
    """Records after the header, blank lines included (as polars counts them)."""
    header_line: int
    """The file line the header is on."""
    multiline: bool = False
    """Fields may hold line breaks (the text has quotes)."""
    record_lines: array.array[int] | None = None
    """The file line each record starts on, when the record-by-record walk ran."""
    leading_blank_lines: int = 0


def _uniform_scan(text: str, sep: str, first_line: int) -> _CsvScan | None:
    """The common case at C speed: every record as wide as the header, no blank line.

    ``None`` for anything else (the caller then walks record by record, to say
    which line is wrong).
    """
    if '"' not in text and text.count("\r") == text.count("\r\n"):
        return _unquoted_scan(text, sep, first_line)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep, strict=True)
    try:
        header = next(reader, None)
        if not header:
            return None
        widths = collections.Counter(map(len, reader))
    except csv.Error:
        return None
    if set(widths) - {len(header)}:
        return None
    return _CsvScan(
        header=header,
        rows=widths.get(len(header), 0),
        header_line=first_line,
        multiline=True,
    )


def _unquoted_scan(text: str, sep: str, first_line: int) -> _CsvScan | None:
    """No quote and no bare CR: a record is a line and its fields are its separators + 1."""
    lines = text.split("\n")
    if lines and lines[-1] in ("", "\r"):
        lines.pop()  # the final newline ends the last record
    if not lines or lines[0] in ("", "\r"):
        return None
    header = lines[0].removesuffix("\r").split(sep)
    seps = pl.Series(lines[1:], dtype=pl.String).str.count_matches(sep, literal=True)
    if len(seps) and (seps.min() != len(header) - 1 or seps.max() != len(header) - 1):
        return None  # a blank or ragged line: the record-by-record walk says which
    if len(header) == 1 and any(line in ("", "\r") for line in lines[1:]):
        return None
    return _CsvScan(header=header, rows=len(lines) - 1, header_line=first_line)


def _scan_csv(path: Path, text: str, sep: str, *, first_line: int = 1) -> _CsvScan:
    """Check every record with the stdlib reader: field counts, quotes, header.

    ``first_line``: the file's line number of ``text``'s first line.
    """
    uniform = _uniform_scan(text, sep, first_line)
    if uniform is not None:
        check_unique_columns((c for c in uniform.header if c), where=str(path))
        return uniform
    walk = _RecordWalk(path, start_line=first_line)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep, strict=True)
    try:
        for record in reader:
            walk.add(record)
            walk.start_line = first_line + reader.line_num
    except csv.Error as exc:
        line = first_line - 1 + reader.line_num
        raise _malformed(path, exc, start_line=walk.start_line, line=line) from None
    return walk.scan()


@dataclass
class _RecordWalk:
    """The record-by-record scan: counts what it has seen, names the first bad line."""

    path: Path
    start_line: int = 1
    """The file line the next record starts on."""
    header: list[str] | None = None
    header_line: int = 1
    rows: int = 0
    lines: array.array[int] = field(default_factory=lambda: array.array("q"))
    leading: int = 0

    def add(self, record: list[str]) -> None:
        if self.header is None:
            if not record:
                self.leading += 1
                return
            self.header, self.header_line = record, self.start_line
            check_unique_columns((c for c in record if c), where=str(self.path))
            return
        if len(record) != len(self.header) and record:
            raise self._ragged(record)
        self.lines.append(self.start_line)
        self.rows += 1

    def _ragged(self, record: list[str]) -> InputError:
        got = f"{len(record)} field{'s' if len(record) != 1 else ''}"
        title = ""
        if len(self.header or ()) == 1 and not self.rows:
            title = (
                f"; or, if line {self.header_line} is a title, give the header's line "
                f"with --header-row {self.start_line}"
            )
        return InputError(
            f"{self.path}: line {self.start_line} has {got}, "
            f"header has {len(self.header or ())}; "
            f"fix that line (or quote a field that contains the separator){title}"
        )

    def scan(self) -> _CsvScan:
        if self.header is None:  # pragma: no cover - decode_csv catches blank files first
            raise InputError(f"{self.path} has no header row (only blank lines)")
        return _CsvScan(
            header=self.header,
            rows=self.rows,
            header_line=self.header_line,
            multiline=True,
            record_lines=self.lines,
            leading_blank_lines=self.leading,
        )


def _malformed(path: Path, exc: csv.Error, *, start_line: int, line: int) -> InputError:
    """The stdlib reader's complaint as one line that says what to fix."""
    message = str(exc)
    if "unexpected end of data" in message:
        return InputError(
            f"{path}: unclosed quote in the record starting on line {start_line}; "
            'close it (a quote inside a quoted field is written "")'
        )
    if "field larger than field limit" in message:
        return InputError(
            f"{path}: line {start_line} has a field longer than "
            f"{csv.field_size_limit()} characters; is it really a CSV file?"
        )
    return InputError(f"{path}: malformed CSV on line {line}: {message}")


def _polars_csv(data: bytes, sep: str, scan: _CsvScan) -> pl.DataFrame | None:
    """The fast reader; ``None`` when it disagrees with the stdlib scan."""
    if scan.leading_blank_lines:
        return None
    try:
        df = pl.read_csv(
            data,
            separator=sep,
            infer_schema=False,
            has_header=True,
            quote_char='"',
            raise_if_empty=False,
            truncate_ragged_lines=False,
        )
    except (PolarsError, pl.exceptions.PanicException, ValueError):
        return None
    if df.columns != scan.header or df.height != scan.rows:
        return None
    return df


def _python_csv(text: str, sep: str, scan: _CsvScan, names: list[str]) -> pl.DataFrame:
    """The stdlib reader builds the frame (files polars reads differently)."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep, strict=True)
    for record in reader:
        if record:
            break
    width = len(names)
    chunks: list[pl.DataFrame] = []
    columns: list[list[str]] = [[] for _ in names]

    def flush() -> None:
        chunks.append(
            pl.DataFrame(
                [pl.Series(f"c{i}", values, dtype=pl.String) for i, values in enumerate(columns)]
            )
        )
        for values in columns:
            values.clear()

    for record in reader:
        fields = record or [""] * width
        for values, value in zip(columns, fields, strict=True):
            values.append(value)
        if len(columns[0]) >= _PY_CSV_CHUNK:
            flush()
    flush()
    df = pl.concat(chunks, how="vertical") if len(chunks) > 1 else chunks[0]
    df.columns = list(names)
    # Match polars: an empty field is null.
    return df.select(pl.when(pl.all() != "").then(pl.all()).name.keep())
