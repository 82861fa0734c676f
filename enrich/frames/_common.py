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
    "Format",
    "Table",
    "check_input",
    "check_unique_columns",
    "format_for",
    "parse_separator",
    "read_bytes",
    "reason",
]

Format = Literal["csv", "parquet", "xlsx"]

_EXTENSIONS: Final[dict[str, Format]] = {".csv": "csv", ".parquet": "parquet", ".xlsx": "xlsx"}


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
