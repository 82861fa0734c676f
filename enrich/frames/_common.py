"""What every format module shares: the formats, the table read, input checks, reasons."""

from __future__ import annotations

import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

import polars as pl

from enrich.errors import InputError, UsageError

__all__ = [
    "INPUT_FORMATS",
    "STDIN_NAME",
    "Compression",
    "FileType",
    "Format",
    "InputFormat",
    "Table",
    "check_input",
    "check_unique_columns",
    "file_type",
    "format_for",
    "is_stdio",
    "named_type",
    "parse_separator",
    "read_bytes",
    "reason",
    "split_name",
]

Format = Literal["csv", "parquet", "xlsx"]
Compression = Literal["gzip", "zstd"]
#: What ``--input-format`` names: a format, and ``tsv`` for a tab-separated CSV.
InputFormat = Literal["csv", "tsv", "parquet", "xlsx"]
INPUT_FORMATS: Final[tuple[InputFormat, ...]] = ("csv", "tsv", "parquet", "xlsx")
#: How messages name standard input (``-``).
STDIN_NAME: Final = "<stdin>"


@dataclass(frozen=True)
class FileType:
    """What a file name says: the format, a fixed separator, a compression."""

    fmt: Format
    extension: str
    """The whole extension as recognised, lower-case: ``.csv.gz``."""
    separator: str | None = None
    """A tab for ``.tsv`` names; ``None``: sniffed (input) or as given (output)."""
    compression: Compression | None = None


_TYPES: Final[tuple[FileType, ...]] = (
    FileType("csv", ".csv.gz", compression="gzip"),
    FileType("csv", ".tsv.gz", "\t", "gzip"),
    FileType("csv", ".csv.zst", compression="zstd"),
    FileType("csv", ".tsv.zst", "\t", "zstd"),
    FileType("csv", ".csv"),
    FileType("csv", ".tsv", "\t"),
    FileType("parquet", ".parquet"),
    FileType("xlsx", ".xlsx"),
)
_GIVEN: Final[dict[str, FileType]] = {
    "csv": FileType("csv", ".csv"),
    "tsv": FileType("csv", ".tsv", "\t"),
    "parquet": FileType("parquet", ".parquet"),
    "xlsx": FileType("xlsx", ".xlsx"),
}


def is_stdio(path: Path) -> bool:
    """``-``: standard input (as the input) or standard output (as the output)."""
    return str(path) == "-"


def named_type(path: Path) -> FileType | None:
    """The type ``path``'s name says, ``None`` for a name of no known type."""
    name = path.name.lower()
    for kind in _TYPES:
        if name.endswith(kind.extension) and len(name) > len(kind.extension):
            return kind
    return None


def split_name(path: Path) -> tuple[str, str]:
    """``leads.csv.gz`` → ``("leads", ".csv.gz")``: the stem before the whole extension.

    An unknown extension splits as ``Path`` does (``x.txt`` → ``("x", ".txt")``).
    """
    kind = named_type(path)
    if kind is None:
        return path.stem, path.suffix
    return path.name[: -len(kind.extension)], path.name[-len(kind.extension) :]


def file_type(
    path: Path, *, role: Literal["input", "output"], given: InputFormat | None = None
) -> FileType:
    """The format, separator and compression ``path``'s name says (case-insensitive).

    ``-`` is CSV (standard input or output). ``given`` (``--input-format``) names
    the format of an input whatever its name says. Compression is named for
    outputs; inputs are decompressed by their first bytes, whatever their name.

    Raises:
        InputError: an input with an unknown extension (exit 1).
        UsageError: an output with an unknown extension (exit 2).
    """
    if role == "input" and given is not None:
        return _GIVEN[given]
    if is_stdio(path):
        return _GIVEN["csv"]
    kind = named_type(path)
    if kind is not None:
        return kind
    suffix = path.suffix.lower()
    error = InputError if role == "input" else UsageError
    shown = f"'{path.suffix}'" if path.suffix else "(no extension)"
    if suffix in {".xls", ".xlsm", ".xlsb", ".ods"}:
        raise error(
            f"{role} format {shown} of {path} is not supported; "
            "save the workbook as .xlsx (or export .csv)"
        )
    raise error(f"unknown {role} format {shown} for {path}; use .csv, .parquet or .xlsx")


def format_for(
    path: Path, *, role: Literal["input", "output"], given: InputFormat | None = None
) -> Format:
    """The table format of ``path`` (``file_type``'s ``fmt``; same errors)."""
    return file_type(path, role=role, given=given).fmt


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
    bom: bool = False
    """CSV: a CSV output starts with a UTF-8 BOM (the input had one, or was read
    with another ``--encoding``: Excel then reads the UTF-8 output right)."""
    line_terminator: str = "\n"
    """CSV: the input's line ends (CRLF from Excel), kept in a CSV output."""
    encoding: str = "utf-8"
    """CSV: the encoding the input was read with (Python's codec name)."""
    header_row: int | None = None
    """CSV: the header's line; XLSX: the header's sheet row (1-based)."""
    source_rows: pl.Series | None = None
    """Per data row of ``df``: its line in the CSV file (where its record starts)
    or its row in the sheet (1-based), as the user sees it. ``None``: the data
    row's own position (Parquet, frames)."""


def check_input(path: Path) -> int:
    """Fail early with a clear line when the file cannot be read at all; its size."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise InputError(f"input file {path} does not exist") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {reason(exc)}") from None
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
        raise InputError(f"cannot read {path}: {reason(exc)}") from None
    return st.st_size


def read_bytes(path: Path) -> bytes:
    """The whole file; an ``OSError`` becomes one ``InputError`` line."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {reason(exc)}") from None


def check_unique_columns(names: Iterable[str], *, where: str) -> None:
    """``InputError`` for the first name of ``names`` seen twice; ``where`` names the table.

    The CSV header and an XLSX sheet's header row both go through here.
    """
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InputError(f"{where} has two columns named '{name}'; rename one of them")
        seen.add(name)


_RUST_OS_ERROR: Final = re.compile(r" \(os error \d+\)$")


def reason(exc: BaseException) -> str:
    """One line saying why: an OSError's strerror, else the first line of the message."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    # polars: "File too large (os error 27)", "parquet: …: underlying IO error: File too large"
    return _RUST_OS_ERROR.sub("", line.rpartition("underlying IO error: ")[2])
