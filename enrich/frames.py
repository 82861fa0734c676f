"""Read and write the tables the job works on: CSV, Parquet and XLSX.

Reading keeps every input cell as it was written (CSV cells stay text, so
``007``, 13-digit numbers and dates come back exactly; Parquet keeps its
dtypes; XLSX keeps numbers numeric). Every problem with an input becomes one
``InputError`` line naming the file and what to fix.

Writing is atomic (``atomic_path``: a temp file beside the target, fsync,
``os.replace``) and safe for spreadsheet programs: text that came from the API
is neutralised when it could start a formula (``neutralize``), and no XLSX
cell is ever written as a formula. Input columns are never altered.
"""

from __future__ import annotations

import collections
import contextlib
import csv
import io
import itertools
import logging
import os
import re
import secrets
import stat
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import fastexcel
import polars as pl
import xlsxwriter
from polars.exceptions import PolarsError
from python_calamine import CalamineError, CalamineWorkbook
from xlsxwriter.exceptions import XlsxWriterException
from xlsxwriter.format import Format as XlsxFormat
from xlsxwriter.worksheet import Worksheet

from enrich.errors import InputError, OutputError, UsageError

__all__ = [
    "CSV_SEPARATORS",
    "DANGEROUS_PREFIXES",
    "Format",
    "Table",
    "atomic_path",
    "cell_texts",
    "format_for",
    "neutralize",
    "parse_separator",
    "read_table",
    "write_table",
]

Format = Literal["csv", "parquet", "xlsx"]

#: Separators ``read_table`` sniffs among, in order of preference on a tie.
CSV_SEPARATORS: Final = (",", ";", "\t", "|")

#: First characters that make a spreadsheet program read text as a formula (OWASP).
DANGEROUS_PREFIXES: Final = ("=", "+", "-", "@", "\t", "\r")

_EXTENSIONS: Final[dict[str, Format]] = {".csv": "csv", ".parquet": "parquet", ".xlsx": "xlsx"}
_SNIFF_CHARS: Final = 64 * 1024
_SNIFF_ROWS: Final = 50
_PY_CSV_CHUNK: Final = 100_000
_XLSX_MAX_ROWS: Final = 1_048_576
_XLSX_MAX_WIDTH: Final = 60
_XLSX_MIN_WIDTH: Final = 8
_ENRICHED_PREFIX: Final = "bp_"

# fastexcel logs a WARNING each time a mixed column falls back to text, which is
# exactly how mixed phone columns are meant to be read; users need not see it.
logging.getLogger("fastexcel").setLevel(logging.ERROR)
# calamine (fastexcel's reader) warns about chart sheets it cannot read as data;
# such a sheet reads as empty and gets its own clear error, so the warning is noise.
logging.getLogger("calamine").setLevel(logging.ERROR)


def format_for(path: Path, *, role: Literal["input", "output"]) -> Format:
    """The table format named by ``path``'s extension (case-insensitive).

    Raises:
        InputError: an input with an unknown extension (exit 1).
        UsageError: an output with an unknown extension (exit 2).
    """
    suffix = path.suffix.lower()
    fmt = _EXTENSIONS.get(suffix)
    if fmt is not None:
        return fmt
    error = InputError if role == "input" else UsageError
    shown = f"'{path.suffix}'" if path.suffix else "(no extension)"
    if suffix in {".xls", ".xlsm", ".xlsb", ".ods"}:
        raise error(
            f"{role} format {shown} of {path} is not supported; "
            "save the workbook as .xlsx (or export .csv)"
        )
    raise error(f"unknown {role} format {shown} for {path}; use .csv, .parquet or .xlsx")


def parse_separator(text: str) -> str:
    """Check a ``--separator`` value; ``tab`` and ``\\t`` spell a tab.

    Raises:
        UsageError: not a single usable character.
    """
    sep = "\t" if text in {"tab", "TAB", "\\t"} else text
    if len(sep) != 1 or sep in {'"', "\n", "\r"}:
        raise UsageError(f"--separator must be one character such as , ; | or tab, not {text!r}")
    return sep


@dataclass
class Table:
    """A table read from a file, with what is needed to write it back alike."""

    df: pl.DataFrame
    """The data sheet, every input column unchanged."""
    fmt: Format
    sheet_name: str | None = None
    """XLSX: the name of the sheet read."""
    other_sheets: dict[str, pl.DataFrame] = field(default_factory=dict)
    """XLSX: the other sheets, in workbook order, carried to an XLSX output."""
    separator: str = ","
    """CSV: the separator used (given or sniffed); ``,`` otherwise."""
    numeric_cells: dict[str, dict[str, pl.Series]] = field(default_factory=dict)
    """XLSX: per sheet, per column that mixes numbers and text (read as text), the
    numeric cells' values (null elsewhere), so an XLSX output writes them back as
    numbers."""


# --------------------------------------------------------------------------- reading


def read_table(
    path: Path, *, sheet: str | int | None = None, separator: str | None = None
) -> Table:
    """Read a CSV, Parquet or XLSX file (format from the extension).

    * CSV: every column is text, exactly as written; empty fields are null.
      The separator is sniffed among ``,`` ``;`` tab ``|`` unless given; a UTF-8
      BOM is dropped. Blank lines are skipped, except in a one-column file,
      where a blank line is an empty value.
    * Parquet: every column keeps its dtype.
    * XLSX: ``sheet`` is a sheet name, or a 1-based position (an ``int``, or a
      string of digits that names no sheet); the first sheet by default.
      Columns keep the type Excel stored (numbers, dates, booleans, text); a
      column mixing types is read as text. Rows with no value at all are
      skipped. The other sheets are read too, to be carried to the output.

    ``sheet`` is ignored for CSV and Parquet, ``separator`` for all but CSV.
    A file with a header and no data rows is read as 0 rows.

    Raises:
        InputError: the file is missing, unreadable, empty or malformed; one
            line naming the file and what to fix.
        UsageError: ``separator`` is not a single usable character.
    """
    fmt = format_for(path, role="input")
    sep = parse_separator(separator) if separator is not None and fmt == "csv" else None
    size = _check_input(path)
    if fmt == "csv":
        return _read_csv(path, sep)
    if fmt == "parquet":
        return Table(df=_read_parquet(path, size), fmt="parquet")
    return _read_xlsx(path, sheet)


def _check_input(path: Path) -> int:
    """Fail early with a clear line when the file cannot be read at all."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise InputError(f"input file {path} does not exist") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {_reason(exc)}") from None
    if path.is_dir():
        raise InputError(f"{path} is a directory, not an input file")
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{path} is not a regular file (a pipe or a device?); save it as a file")
    if st.st_size == 0:
        raise InputError(f"{path} is empty (0 bytes)")
    try:
        with path.open("rb") as handle:
            handle.read(1)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {_reason(exc)}") from None
    return st.st_size


_RUST_OS_ERROR: Final = re.compile(r" \(os error \d+\)$")


def _reason(exc: BaseException) -> str:
    """One line saying why: an OSError's strerror, else the first line of the message."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    # polars: "File too large (os error 27)", "parquet: …: underlying IO error: File too large"
    return _RUST_OS_ERROR.sub("", line.rpartition("underlying IO error: ")[2])


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {_reason(exc)}") from None


# --- CSV


def _read_csv(path: Path, separator: str | None) -> Table:
    data = _read_bytes(path)
    _reject_non_text(path, data)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
        bom = 3
    else:
        bom = 0
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(
            f"{path} is not valid UTF-8 (line {line}, byte {exc.start + bom + 1}); "
            "save it as UTF-8 CSV"
        ) from None
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
        _check_header(path, uniform.header)
        return uniform
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep, strict=True)
    header: list[str] | None = None
    rows = 0
    blanks: list[int] = []
    leading = 0
    start_line = 1
    try:
        for record in reader:
            if header is None:
                if not record:
                    leading += 1
                    start_line = reader.line_num + 1
                    continue
                header = record
                _check_header(path, header)
            elif len(record) != len(header):
                if record:
                    got = f"{len(record)} field{'s' if len(record) != 1 else ''}"
                    raise InputError(
                        f"{path}: line {start_line} has {got}, header has {len(header)}; "
                        "fix that line (or quote a field that contains the separator)"
                    )
                if len(header) > 1:
                    blanks.append(rows)
                rows += 1
            else:
                rows += 1
            start_line = reader.line_num + 1
    except csv.Error as exc:
        message = str(exc)
        if "unexpected end of data" in message:
            raise InputError(
                f"{path}: unclosed quote in the record starting on line {start_line}; "
                'close it (a quote inside a quoted field is written "")'
            ) from None
        if "field larger than field limit" in message:
            raise InputError(
                f"{path}: line {start_line} has a field longer than "
                f"{csv.field_size_limit()} characters; is it really a CSV file?"
            ) from None
        raise InputError(f"{path}: malformed CSV on line {reader.line_num}: {message}") from None
    if header is None:  # pragma: no cover - _reject_non_text catches blank files first
        raise InputError(f"{path} has no header row (only blank lines)")
    return _CsvScan(header=header, rows=rows, blank_rows=blanks, leading_blank_lines=leading)


def _check_header(path: Path, header: Sequence[str]) -> None:
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise InputError(f"{path} has two columns named '{name}'; rename one of them")
        seen.add(name)


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


# --- Parquet


def _read_parquet(path: Path, size: int) -> pl.DataFrame:
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
            handle.seek(max(size - 4, 0))
            tail = handle.read(4)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {_reason(exc)}") from None
    if magic != b"PAR1" or tail != b"PAR1" or size < 12:
        raise InputError(f"{path} is not a Parquet file (or it is truncated)")
    try:
        df = pl.read_parquet(path)
    except (PolarsError, pl.exceptions.PanicException, OSError, ValueError) as exc:
        raise InputError(f"{path} is not a readable Parquet file: {_reason(exc)}") from None
    if df.width == 0:
        raise InputError(f"{path} has no columns")
    return df


# --- XLSX


def _read_xlsx(path: Path, sheet: str | int | None) -> Table:
    try:
        reader = fastexcel.read_excel(str(path))
        names = list(reader.sheet_names)
    except (fastexcel.FastExcelError, OSError) as exc:
        raise InputError(f"{path} is not a readable XLSX workbook: {_xlsx_reason(exc)}") from None
    if not names:
        raise InputError(f"{path} has no sheets")
    index = _pick_sheet(path, names, sheet)
    numeric: dict[str, dict[str, pl.Series]] = {}
    df, numeric[names[index]] = _load_sheet(path, reader, names, index)
    if df.width == 0:
        raise InputError(
            f"sheet '{names[index]}' of {path} is empty (no header row); "
            f"choose another with --sheet NAME (sheets: {', '.join(names)})"
        )
    others: dict[str, pl.DataFrame] = {}
    for i, name in enumerate(names):
        if i != index:
            others[name], numeric[name] = _load_sheet(path, reader, names, i)
    numeric = {name: cols for name, cols in numeric.items() if cols}
    return Table(
        df=df, fmt="xlsx", sheet_name=names[index], other_sheets=others, numeric_cells=numeric
    )


def _xlsx_reason(exc: BaseException) -> str:
    text = _reason(exc)
    return text.removeprefix("calamine error: ")


def _shown_name(name: str) -> str:
    """A user-given name quoted for a one-line message (control characters escaped)."""
    return "'" + "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in name) + "'"


def _pick_sheet(path: Path, names: Sequence[str], sheet: str | int | None) -> int:
    listed = ", ".join(names)
    if sheet is None:
        return 0
    if isinstance(sheet, str):
        if sheet in names:
            return names.index(sheet)
        folded = [i for i, name in enumerate(names) if name.casefold() == sheet.casefold()]
        if len(folded) == 1:
            return folded[0]
        if not (sheet.isascii() and sheet.isdigit()):
            raise InputError(f"sheet {_shown_name(sheet)} not found in {path}; sheets: {listed}")
        sheet = int(sheet)
    if not 1 <= sheet <= len(names):
        raise InputError(
            f"sheet {sheet} not found in {path}: positions start at 1 and it has "
            f"{len(names)} sheet{'s' if len(names) != 1 else ''} ({listed})"
        )
    return sheet - 1


def _load_sheet(
    path: Path, reader: fastexcel.ExcelReader, names: Sequence[str], index: int
) -> tuple[pl.DataFrame, dict[str, pl.Series]]:
    try:
        # Sample every row: with the default 1,000, a text cell further down a
        # numeric column would be coerced to null, i.e. silently lost.
        df = reader.load_sheet(index, schema_sample_rows=None).to_polars()
        if df.width:
            raw = reader.load_sheet(index, header_row=None, n_rows=1, dtypes="string")
            header = raw.to_polars().row(0)
        else:
            header = ()
    except (fastexcel.FastExcelError, OSError, PolarsError, ValueError) as exc:
        raise InputError(
            f"cannot read sheet '{names[index]}' of {path}: {_xlsx_reason(exc)}"
        ) from None
    seen: set[str] = set()
    for cell in header:
        if cell is None or cell == "":
            continue
        if cell in seen:
            raise InputError(
                f"sheet '{names[index]}' of {path} has two columns named '{cell}'; "
                "rename one of them"
            )
        seen.add(cell)
    numeric = _mixed_numeric_cells(path, reader, index, df)
    if df.width and df.height:
        keep = ~df.select(pl.all_horizontal(pl.all().is_null())).to_series()
        df = df.filter(keep)
        numeric = {name: values.filter(keep) for name, values in numeric.items()}
    return df, numeric


def _mixed_numeric_cells(
    path: Path, reader: fastexcel.ExcelReader, index: int, df: pl.DataFrame
) -> dict[str, pl.Series]:
    """For text columns that also hold numeric cells: those cells' values, by row.

    fastexcel reads a column that mixes numbers and text as text; python-calamine
    still knows each cell's type. Only sheets that really mix types pay for it.
    """
    text_columns = [name for name, dtype in df.schema.items() if dtype == pl.String]
    if not text_columns or not df.height:
        return {}
    try:
        reader.load_sheet(index, schema_sample_rows=None, dtype_coercion="strict")
        return {}
    except fastexcel.UnsupportedColumnTypeCombinationError:
        pass
    except (fastexcel.FastExcelError, OSError, ValueError):
        return {}
    try:
        rows = CalamineWorkbook.from_path(str(path)).get_sheet_by_index(index).to_python()
    except (CalamineError, OSError, ValueError):
        return {}
    if len(rows) != df.height + 1 or any(len(row) != df.width for row in rows[:1]):
        return {}  # a layout we cannot align cell by cell: keep the text reading
    out: dict[str, pl.Series] = {}
    for name in text_columns:
        c = df.columns.index(name)
        values = [
            float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None
            for v in (row[c] if c < len(row) else None for row in rows[1:])
        ]
        if any(v is not None for v in values):
            out[name] = pl.Series(name, values, dtype=pl.Float64)
    return out


# ------------------------------------------------------------------------- cell texts


def cell_texts(series: pl.Series) -> pl.Series:
    """The cells of ``series`` as text, the way a person reads them in a sheet.

    Text is kept as is; integers give their digits; integral floats give
    integer digits (``8613800138000.0`` → ``"8613800138000"``, never
    ``"8.613800138e12"``); other floats, and other types, their ``str`` form;
    null, and a float NaN (how float columns say "no value"), give null.
    Vectorised.
    """
    dtype = series.dtype
    name = series.name
    if dtype == pl.String:
        return series
    if dtype.is_integer() or dtype == pl.Null:
        return series.cast(pl.String)
    if dtype.is_float():
        col = pl.col(name)
        integral = col.is_finite() & (col == col.round(0)) & (col.abs() < 2.0**63)
        return (
            pl.DataFrame([series])
            .select(
                pl.when(integral)
                .then(col.cast(pl.Int64, strict=False).cast(pl.String))
                .when(col.is_not_nan())
                .then(col.cast(pl.String))
                .alias(name)
            )
            .to_series()
        )
    if dtype.is_nested() or dtype == pl.Binary:
        return _text_expr_frame(series.to_frame()).to_series()
    return series.cast(pl.String, strict=False)


def _nested_to_json(col: pl.Expr, name: str) -> pl.Expr:
    # json_encode works on structs only: wrap, encode, and strip the wrapper.
    wrapped = pl.struct(col.alias("v")).struct.json_encode().str.slice(5).str.head(-1)
    return pl.when(col.is_not_null()).then(wrapped).alias(name)


def _text_expr_frame(df: pl.DataFrame) -> pl.DataFrame:
    exprs = []
    for name, dtype in df.schema.items():
        col = pl.col(name)
        if dtype.is_nested():
            exprs.append(_nested_to_json(col, name))
        elif dtype == pl.Binary:
            exprs.append(col.bin.encode("hex").alias(name))
        else:
            exprs.append(col.cast(pl.String).alias(name))
    return df.select(exprs)


# --------------------------------------------------------------------------- writing


def neutralize(text: str) -> str:
    """Prefix ``'`` to text a spreadsheet program would read as a formula (OWASP).

    Applies when ``text`` starts with ``=``, ``+``, ``-``, ``@``, tab or CR.
    """
    return "'" + text if text.startswith(DANGEROUS_PREFIXES) else text


_DANGEROUS_RE: Final = "^[" + re.escape("".join(DANGEROUS_PREFIXES)) + "]"


def _neutralize_expr(col: pl.Expr) -> pl.Expr:
    return pl.when(col.str.contains(_DANGEROUS_RE)).then(pl.lit("'") + col).otherwise(col)


def _for_spreadsheet(
    df: pl.DataFrame, *, api_text_columns: Sequence[str], list_columns: Sequence[str]
) -> pl.DataFrame:
    """Flatten lists and neutralise API text; input columns keep their values."""
    lists = set(list_columns)
    api = set(api_text_columns) | lists
    flat: list[pl.Expr] = []
    for name, dtype in df.schema.items():
        col = pl.col(name)
        if name in lists and isinstance(dtype, pl.List | pl.Array):
            if isinstance(dtype, pl.Array):
                col = col.arr.to_list()
            joined = col.list.eval(pl.element().cast(pl.String)).list.join(" ")
            flat.append(pl.when(joined != "").then(joined).alias(name))  # no items: empty cell
        elif dtype.is_nested():
            flat.append(_nested_to_json(col, name))
        elif dtype == pl.Binary:
            flat.append(col.bin.encode("hex").alias(name))
        else:
            flat.append(col)
    # Two steps, so each flattened column is computed once, not once per check.
    out = df.select(flat)
    return out.with_columns(
        _neutralize_expr(pl.col(name)).alias(name)
        for name, dtype in out.schema.items()
        if name in api and dtype == pl.String
    )


def write_table(
    df: pl.DataFrame,
    path: Path,
    *,
    fmt: Format,
    api_text_columns: Sequence[str],
    list_columns: Sequence[str] = ("bp_websites",),
    sheet_name: str | None = None,
    other_sheets: Mapping[str, pl.DataFrame] | None = None,
    separator: str = ",",
    enriched_columns: Sequence[str] | None = None,
    shown_as: Path | None = None,
    numeric_cells: Mapping[str, Mapping[str, pl.Series]] | None = None,
) -> None:
    """Write ``df`` to ``path`` atomically, whole or not at all.

    * Parquet: as is; lists stay lists, nothing is neutralised.
    * CSV and XLSX: each column of ``list_columns`` becomes its items joined by
      a single space (an empty or null list → an empty cell); text cells of
      ``api_text_columns`` and ``list_columns`` starting with ``=``, ``+``,
      ``-``, ``@``, tab or CR get a leading ``'`` (``neutralize``). Other
      columns are written unchanged.
    * CSV: UTF-8 without BOM, ``separator``, quotes only where needed, null
      as an empty field.
    * XLSX: the data sheet (``sheet_name``, default ``Sheet1``) then
      ``other_sheets`` in order; text is always a text cell (never a formula,
      never a URL or number), numbers, dates and booleans keep their types;
      the header row is frozen and filterable; the headers of
      ``enriched_columns`` (default: those starting with ``bp_``) are
      coloured; column widths fit their contents up to a cap; the cells that
      ``numeric_cells`` (``Table.numeric_cells``) marks in text columns are
      written back as numbers.

    An older file at ``path`` stays untouched when writing fails. Messages name
    ``shown_as`` (default ``path``): the file the user asked for when ``path``
    is a staging file.

    Raises:
        OutputError: the file cannot be written; one line naming it and why.
    """
    shown = shown_as or path
    if path.is_dir():
        raise OutputError(f"cannot write {shown}: it is a directory")
    with atomic_path(path, shown_as=shown) as tmp:
        try:
            if fmt == "parquet":
                df.write_parquet(tmp)
            elif fmt == "csv":
                flat = _for_spreadsheet(
                    df, api_text_columns=api_text_columns, list_columns=list_columns
                )
                flat.write_csv(tmp, separator=separator, null_value="")
            else:
                flat = _for_spreadsheet(
                    df, api_text_columns=api_text_columns, list_columns=list_columns
                )
                highlighted = (
                    set(enriched_columns)
                    if enriched_columns is not None
                    else {c for c in df.columns if c.startswith(_ENRICHED_PREFIX)}
                )
                _write_xlsx(
                    shown,
                    tmp,
                    flat,
                    sheet_name=sheet_name or "Sheet1",
                    other_sheets=other_sheets or {},
                    highlighted=highlighted,
                    numeric_cells=numeric_cells or {},
                )
        except (PolarsError, pl.exceptions.PanicException, XlsxWriterException, ValueError) as exc:
            # OSError is left to atomic_path, which says it the same way.
            raise OutputError(f"cannot write {shown}: {_reason(exc)}") from None


@contextmanager
def atomic_path(path: Path, *, shown_as: Path | None = None) -> Iterator[Path]:
    """Yield a fresh temp path beside ``path``; publish it there on a clean exit.

    On a clean exit the temp file is fsynced and moved over ``path`` with
    ``os.replace`` (then the folder is fsynced, best effort). On any error the
    temp file is removed and an older ``path`` is left untouched. The temp
    file gets the usual permissions (0666 less the umask).

    Raises:
        OutputError: an ``OSError`` while creating, writing or publishing
            (one line: ``cannot write out.csv: Permission denied``). Other
            exceptions from the body propagate unchanged. Messages name
            ``shown_as`` (default ``path``).
    """
    folder = path.parent
    shown = shown_as or path
    tmp = _create_temp(path, shown)
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        _unlink_quietly(tmp)
        raise OutputError(f"cannot write {shown}: {_reason(exc)}") from None
    except BaseException:
        _unlink_quietly(tmp)
        raise
    with contextlib.suppress(OSError):
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _create_temp(path: Path, shown: Path) -> Path:
    folder = path.parent
    if not folder.exists():
        raise OutputError(f"cannot write {shown}: folder {folder} does not exist")
    if not folder.is_dir():
        raise OutputError(f"cannot write {shown}: {folder} is not a folder")
    while True:
        tmp = folder / f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:  # pragma: no cover - 32 random bits collided
            continue
        except OSError as exc:
            raise OutputError(f"cannot write {shown}: {_reason(exc)}") from None
        os.close(fd)
        return tmp


def remove_stale_temps(target: Path) -> None:
    """Remove the temp files beside ``target`` that a killed run left (its process gone).

    Temp names carry the writer's PID (``.out.csv.<pid>-<hex>.tmp``, and a staged
    ``.out.csv.<pid>.tmp`` with its own temp ``..out.csv.<pid>.tmp.<pid>-<hex>.tmp``);
    a file whose process still runs is left alone.
    """
    pattern = re.compile(rf"\.\.?{re.escape(target.name)}\.(\d+)[.-].*\.tmp")
    try:
        names = os.listdir(target.parent)
    except OSError:
        return
    for name in names:
        m = pattern.fullmatch(name)
        if m and not _running(int(m.group(1))):
            _unlink_quietly(target.parent / name)


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # someone else's process
    return True


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


# --- XLSX writing


@dataclass
class _Formats:
    header: XlsxFormat
    enriched_header: XlsxFormat
    date: XlsxFormat
    datetime: XlsxFormat
    time: XlsxFormat
    duration: XlsxFormat


_CellWriter = Callable[[int, int, Any], Any]


def _write_xlsx(
    path: Path,
    tmp: Path,
    df: pl.DataFrame,
    *,
    sheet_name: str,
    other_sheets: Mapping[str, pl.DataFrame],
    highlighted: set[str],
    numeric_cells: Mapping[str, Mapping[str, pl.Series]],
) -> None:
    for name, frame in [(sheet_name, df), *other_sheets.items()]:
        if frame.height + 1 > _XLSX_MAX_ROWS:
            raise OutputError(
                f"cannot write {path}: sheet '{name}' has {frame.height} rows, more than "
                f"XLSX holds ({_XLSX_MAX_ROWS - 1}); write .csv or .parquet instead"
            )
    workbook = xlsxwriter.Workbook(
        str(tmp),
        {
            # Text is text: never a formula, a URL or a number.
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
            "nan_inf_to_errors": True,
            "remove_timezone": True,
            # Rows stream to disk: memory stays flat on large sheets.
            "constant_memory": True,
        },
    )
    formats = _Formats(
        header=workbook.add_format({"bold": True, "bottom": 1}),
        enriched_header=workbook.add_format(
            {"bold": True, "bottom": 1, "bg_color": "#DDEBF7", "font_color": "#1F4E79"}
        ),
        date=workbook.add_format({"num_format": "yyyy-mm-dd"}),
        datetime=workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"}),
        time=workbook.add_format({"num_format": "hh:mm:ss"}),
        duration=workbook.add_format({"num_format": "[h]:mm:ss"}),
    )
    _write_sheet(
        workbook.add_worksheet(sheet_name),
        df,
        formats,
        highlighted,
        numeric_cells.get(sheet_name, {}),
    )
    for name, frame in other_sheets.items():
        other = _text_safe(frame)
        _write_sheet(
            workbook.add_worksheet(name), other, formats, set(), numeric_cells.get(name, {})
        )
    workbook.close()


def _text_safe(df: pl.DataFrame) -> pl.DataFrame:
    """Other sheets: nested or binary columns (not expected from XLSX) become text."""
    if not any(dtype.is_nested() or dtype == pl.Binary for dtype in df.dtypes):
        return df
    return _for_spreadsheet(df, api_text_columns=(), list_columns=())


def _write_sheet(
    ws: Worksheet,
    df: pl.DataFrame,
    formats: _Formats,
    highlighted: set[str],
    numeric: Mapping[str, pl.Series],
) -> None:
    for c, (name, width) in enumerate(zip(df.columns, _widths(df), strict=True)):
        ws.set_column(c, c, width)
        ws.write_string(
            0, c, name, formats.enriched_header if name in highlighted else formats.header
        )
    if df.width:
        ws.freeze_panes(1, 0)
        ws.autofilter(0, 0, max(df.height, 1), df.width - 1)
        ws.ignore_errors({"number_stored_as_text": f"A1:XFD{df.height + 1}"})
    midnight = _midnight_columns(df)
    writers = [
        _cell_writer(ws, dtype, formats, date_only=name in midnight)
        for name, dtype in df.schema.items()
    ]
    for c, name in enumerate(df.columns):
        if name in numeric and df.schema[name] == pl.String:
            writers[c] = _numbers_first(ws, writers[c], numeric[name].to_list())
    for r, row in enumerate(df.iter_rows(), start=1):
        for c, value in enumerate(row):
            if value is not None:
                writers[c](r, c, value)


def _numbers_first(
    ws: Worksheet, text_writer: _CellWriter, numbers: list[float | None]
) -> _CellWriter:
    """A text column's writer that writes the cells that were numbers as numbers."""

    def write(r: int, c: int, value: Any) -> None:
        number = numbers[r - 1] if r - 1 < len(numbers) else None
        if number is not None:
            ws.write_number(r, c, number)
        else:
            text_writer(r, c, value)

    return write


def _midnight_columns(df: pl.DataFrame) -> set[str]:
    """Datetime columns whose values are all at midnight: Excel dates, shown as dates."""
    names = [name for name, dtype in df.schema.items() if dtype == pl.Datetime]
    if not names or not df.height:
        return set()
    row = df.select((pl.col(name).dt.time() == pl.time(0)).all().alias(name) for name in names).row(
        0
    )
    return {name for name, midnight in zip(names, row, strict=True) if midnight}


def _cell_writer(
    ws: Worksheet, dtype: pl.DataType, formats: _Formats, *, date_only: bool = False
) -> _CellWriter:
    if dtype == pl.String or dtype in (pl.Categorical, pl.Enum):
        return lambda r, c, v: ws.write_string(r, c, v)
    if dtype == pl.Boolean:
        return lambda r, c, v: ws.write_boolean(r, c, v)
    if dtype.is_integer() or dtype.is_float():
        return lambda r, c, v: ws.write_number(r, c, v)
    if dtype.is_decimal():
        return lambda r, c, v: ws.write_number(r, c, float(v))
    if dtype == pl.Date:
        return lambda r, c, v: ws.write_datetime(r, c, v, formats.date)
    if dtype == pl.Datetime:
        fmt = formats.date if date_only else formats.datetime
        return lambda r, c, v: ws.write_datetime(r, c, v, fmt)
    if dtype == pl.Time:
        return lambda r, c, v: ws.write_datetime(r, c, v, formats.time)
    if dtype == pl.Duration:
        return lambda r, c, v: ws.write_datetime(r, c, v, formats.duration)
    return lambda r, c, v: ws.write_string(r, c, str(v))


def _widths(df: pl.DataFrame) -> list[int]:
    if df.width == 0:
        return []
    if df.height:
        lengths = df.select(
            pl.col(name).cast(pl.String, strict=False).str.len_chars().max().alias(name)
            for name in df.columns
        ).row(0)
    else:
        lengths = (0,) * df.width
    return [
        min(max(len(name) + 3, (length or 0) + 2, _XLSX_MIN_WIDTH), _XLSX_MAX_WIDTH)
        for name, length in zip(df.columns, lengths, strict=True)
    ]
