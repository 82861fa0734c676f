"""Reading CSV: every cell stays the text that was written.

The bytes are checked (not UTF-16, Parquet, ZIP or binary; valid UTF-8; a BOM
dropped), the separator sniffed unless given, then every record is scanned by
the stdlib reader, which names the line that is wrong. polars builds the frame
when it agrees with that scan; the stdlib reader builds it when it does not.
"""

from __future__ import annotations

import collections
import csv
import io
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import polars as pl
from polars.exceptions import PolarsError

from enrich.errors import InputError
from enrich.frames._common import Table, check_unique_columns, read_bytes

__all__ = ["CSV_SEPARATORS", "read_csv"]

#: Separators ``read_table`` sniffs among, in order of preference on a tie.
CSV_SEPARATORS: Final = (",", ";", "\t", "|")

_SNIFF_CHARS: Final = 64 * 1024
_SNIFF_ROWS: Final = 50
_PY_CSV_CHUNK: Final = 100_000


def read_csv(path: Path, separator: str | None) -> Table:
    """The CSV at ``path`` as text columns; ``separator`` ``None`` sniffs it."""
    data = read_bytes(path)
    _reject_non_text(path, data)
    data, text = _decode(path, data)
    sep = separator if separator is not None else _sniff(text)
    scan = _scan_csv(path, text, sep)
    df = _polars_csv(data, sep, scan)
    if df is None:
        df = _python_csv(text, sep, scan)
    if scan.blank_rows and len(scan.header) > 1:
        df = (
            df.with_row_index("__row__")
            .filter(~pl.col("__row__").is_in(scan.blank_rows))
            .drop("__row__")
        )
    return Table(df=df, fmt="csv", separator=sep)


def _decode(path: Path, data: bytes) -> tuple[bytes, str]:
    """The bytes without a UTF-8 BOM, and their text."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
        bom = 3
    else:
        bom = 0
    try:
        return data, data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(
            f"{path} is not valid UTF-8 (line {line}, byte {exc.start + bom + 1}); "
            "save it as UTF-8 CSV"
        ) from None


def _reject_non_text(path: Path, data: bytes) -> None:
    head = data[:8192]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError(f"{path} is UTF-16 text; save it as UTF-8 CSV")
    if head.startswith(b"PAR1"):
        raise InputError(f"{path} is a Parquet file, not CSV; rename it to .parquet")
    if head.startswith(b"PK\x03\x04"):
        raise InputError(f"{path} is a ZIP file (an XLSX workbook?), not CSV; rename it to .xlsx")
    if b"\x00" in head:
        if _looks_like_utf16(head):
            raise InputError(f"{path} is UTF-16 text; save it as UTF-8 CSV")
        raise InputError(f"{path} is binary data, not a CSV text file")
    if not data.lstrip(b"\xef\xbb\xbf \t\r\n"):
        raise InputError(f"{path} has no header row (only blank lines)")


def _looks_like_utf16(head: bytes) -> bool:
    """UTF-16 without a BOM: ASCII text with a NUL beside nearly every character."""
    pairs = len(head) // 2
    if pairs < 4:
        return False
    even_nul = head[0 : pairs * 2 : 2].count(0)
    odd_nul = head[1 : pairs * 2 : 2].count(0)
    return max(even_nul, odd_nul) >= 0.9 * pairs and min(even_nul, odd_nul) == 0


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
    blank_rows: list[int]
    """0-based record positions of blank lines."""
    leading_blank_lines: int


def _uniform_scan(text: str, sep: str) -> _CsvScan | None:
    """The common case at C speed: every record as wide as the header, no blank line.

    ``None`` for anything else (the caller then walks record by record, to say
    which line is wrong).
    """
    if '"' not in text and text.count("\r") == text.count("\r\n"):
        return _unquoted_scan(text, sep)
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
        header=header, rows=widths.get(len(header), 0), blank_rows=[], leading_blank_lines=0
    )


def _unquoted_scan(text: str, sep: str) -> _CsvScan | None:
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
    return _CsvScan(header=header, rows=len(lines) - 1, blank_rows=[], leading_blank_lines=0)


def _scan_csv(path: Path, text: str, sep: str) -> _CsvScan:
    """Check every record with the stdlib reader: field counts, quotes, header."""
    uniform = _uniform_scan(text, sep)
    if uniform is not None:
        check_unique_columns(uniform.header, where=str(path))
        return uniform
    walk = _RecordWalk(path)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep, strict=True)
    try:
        for record in reader:
            walk.add(record)
            walk.start_line = reader.line_num + 1
    except csv.Error as exc:
        raise _malformed(path, exc, start_line=walk.start_line, line=reader.line_num) from None
    return walk.scan()


@dataclass
class _RecordWalk:
    """The record-by-record scan: counts what it has seen, names the first bad line."""

    path: Path
    header: list[str] | None = None
    rows: int = 0
    blanks: list[int] = field(default_factory=list)
    leading: int = 0
    start_line: int = 1
    """The line the next record starts on."""

    def add(self, record: list[str]) -> None:
        if self.header is None:
            if not record:
                self.leading += 1
                return
            self.header = record
            check_unique_columns(record, where=str(self.path))
            return
        if len(record) != len(self.header):
            if record:
                got = f"{len(record)} field{'s' if len(record) != 1 else ''}"
                raise InputError(
                    f"{self.path}: line {self.start_line} has {got}, "
                    f"header has {len(self.header)}; "
                    "fix that line (or quote a field that contains the separator)"
                )
            if len(self.header) > 1:
                self.blanks.append(self.rows)
        self.rows += 1

    def scan(self) -> _CsvScan:
        if self.header is None:  # pragma: no cover - _reject_non_text catches blank files first
            raise InputError(f"{self.path} has no header row (only blank lines)")
        return _CsvScan(
            header=self.header,
            rows=self.rows,
            blank_rows=self.blanks,
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


def _python_csv(text: str, sep: str, scan: _CsvScan) -> pl.DataFrame:
    """The stdlib reader builds the frame (files polars reads differently)."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep, strict=True)
    header = scan.header
    for record in reader:
        if record:
            break
    width = len(header)
    chunks: list[pl.DataFrame] = []
    columns: list[list[str]] = [[] for _ in header]

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
    df.columns = list(header)
    # Match polars: an empty field is null.
    return df.select(pl.when(pl.all() != "").then(pl.all()).name.keep())
