"""A CSV file's bytes as text: checked, decoded, its BOM and line ends noted, titles skipped.

Excel saves "CSV UTF-8" with a BOM and CRLF line ends, and "CSV (Comma
delimited)" in the Windows code page (cp1252 in Western Europe and the
Americas) with CRLF: both are noted on the way in so that a CSV output can be
written the way Excel reads it back. Title lines above the header are skipped
with ``--header-row``.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from enrich.errors import InputError, UsageError

__all__ = ["CsvText", "codec_name", "decode_csv"]

_UTF8_BOM: Final = b"\xef\xbb\xbf"
_LINE_END: Final = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class CsvText:
    """The text of a CSV file from its header line on."""

    text: str
    payload: bytes
    """``text`` as UTF-8 (what polars reads)."""
    bom: bool
    """Write a CSV output with a UTF-8 BOM (see ``Table.bom``)."""
    line_terminator: str
    encoding: str
    first_line: int
    """The file's line number of ``text``'s first line (1 unless ``--header-row``)."""


def codec_name(encoding: str) -> str:
    """Python's name for an ``--encoding`` value (``CP1252`` → ``cp1252``).

    Raises:
        UsageError: not an encoding Python knows.
    """
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise UsageError(
            f"unknown encoding {encoding!r} for --encoding; "
            'use utf-8, cp1252 (Excel\'s "CSV (Comma delimited)"), latin-1, …'
        ) from None


def _is_wide(codec: str) -> bool:
    return codec.startswith(("utf-16", "utf-32"))


def decode_csv(
    path: Path, data: bytes, *, encoding: str | None = None, header_row: int | None = None
) -> CsvText:
    """Check and decode the bytes of the CSV file ``path`` (named in messages).

    ``encoding`` (default UTF-8): a UTF-8 BOM wins over it. ``header_row``:
    the 1-based line of the header; the lines above it are skipped unread.

    Raises:
        InputError: binary data, UTF-16 without ``--encoding``, bytes invalid in
            the encoding (the line and byte named), no header line.
        UsageError: an unknown encoding.
    """
    codec = codec_name(encoding) if encoding else "utf-8"
    if not _is_wide(codec):
        _reject_non_text(path, data)
    bom = data.startswith(_UTF8_BOM)
    if bom:
        data = data[len(_UTF8_BOM) :]
        codec = "utf-8"
    text = _decode(path, data, codec, offset=len(_UTF8_BOM) if bom else 0)
    if codec == "utf-8-sig":
        codec = "utf-8"
    if _is_wide(codec) and not text.strip():
        raise InputError(f"{path} has no header row (only blank lines)")
    first_line = 1
    if header_row is not None and header_row > 1:
        text = _skip_lines(path, text, header_row)
        first_line = header_row
    unchanged = codec == "utf-8" and first_line == 1
    return CsvText(
        text=text,
        payload=data if unchanged else text.encode("utf-8"),
        bom=bom or codec != "utf-8",
        line_terminator=_line_terminator(text),
        encoding=codec,
        first_line=first_line,
    )


def _decode(path: Path, data: bytes, codec: str, *, offset: int) -> str:
    try:
        return data.decode(codec)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        where = f"line {line}, byte {exc.start + offset + 1}"
        if codec == "utf-8":
            raise InputError(
                f"{path} is not valid UTF-8 ({where}); save it as UTF-8 CSV, or name its "
                'encoding: --encoding cp1252 for Excel\'s "CSV (Comma delimited)"'
            ) from None
        raise InputError(
            f"{path} is not valid {codec} ({where}); name the file's encoding with "
            "--encoding NAME (latin-1 reads any byte)"
        ) from None


def _skip_lines(path: Path, text: str, header_row: int) -> str:
    """``text`` from line ``header_row`` on; that line must hold the header."""
    start, skipped = 0, 0
    for match in _LINE_END.finditer(text):
        start, skipped = match.end(), skipped + 1
        if skipped == header_row - 1:
            break
    rest = text[start:]
    if skipped < header_row - 1 or not rest:
        lines = skipped + (1 if rest else 0)
        raise InputError(
            f"{path} has {lines} line{'s' if lines != 1 else ''}; "
            f"--header-row {header_row} is past its end"
        )
    if not _LINE_END.split(rest, maxsplit=1)[0].strip():
        raise InputError(
            f"{path}: line {header_row} is blank; --header-row names the line of the header"
        )
    return rest


def _line_terminator(text: str) -> str:
    match = _LINE_END.search(text)
    return match.group() if match else "\n"


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
