"""Where an input's bytes come from: a file or standard input, with gzip or zstd undone.

Compressed CSV is recognised by its first bytes (gzip ``1f 8b``, zstd
``28 b5 2f fd``), whatever the file is called, so ``zcat``-less pipes and
``.csv.gz`` / ``.csv.zst`` names all read the same way.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import sys
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Final

from enrich.errors import InputError
from enrich.frames._common import reason

__all__ = ["decompress", "read_stdin", "spooled"]

_GZIP: Final = b"\x1f\x8b"
_ZSTD: Final = b"\x28\xb5\x2f\xfd"


def read_stdin(stdin: BinaryIO | None = None) -> bytes:
    """All of standard input (``stdin``, default ``sys.stdin``'s bytes).

    Raises:
        InputError: no standard input, a terminal (nothing was piped in), a read
            error, or no bytes at all.
    """
    stream = stdin
    if stream is None:
        if sys.stdin is None:
            raise InputError("there is no standard input to read; pipe a file into it")
        stream = sys.stdin.buffer
    try:
        if stream.isatty():
            raise InputError(
                "standard input is a terminal; pipe a file into it: enrich run - < leads.csv"
            )
        data = stream.read()
    except OSError as exc:
        raise InputError(f"cannot read standard input: {reason(exc)}") from None
    if not data:
        raise InputError("standard input is empty (0 bytes)")
    return data


def decompress(shown: Path, data: bytes) -> bytes:
    """``data`` itself, or its content when it is gzip or zstd compressed.

    Raises:
        InputError: a corrupt or truncated stream, or nothing inside it.
    """
    if data.startswith(_GZIP):
        try:
            out = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(f"{shown} is not a readable gzip file: {_why(exc)}") from None
        kind = "gzip"
    elif data.startswith(_ZSTD):
        out = _unzstd(shown, data)
        kind = "zstd"
    else:
        return data
    if not out:
        raise InputError(f"{shown} is empty once decompressed ({kind})")
    return out


def _why(exc: BaseException) -> str:
    if isinstance(exc, EOFError):
        return "it is truncated"
    return reason(exc)


def _unzstd(shown: Path, data: bytes) -> bytes:
    try:
        import zstandard
    except ImportError:  # pragma: no cover - zstandard is a dependency
        raise InputError(
            f"{shown} is zstd-compressed, and reading it needs the zstandard package "
            "(pip install zstandard)"
        ) from None
    try:
        with zstandard.ZstdDecompressor().stream_reader(
            io.BytesIO(data), read_across_frames=True
        ) as reader:
            out: bytes = reader.read()
    except zstandard.ZstdError as exc:
        raise InputError(f"{shown} is not a readable zstd file: {reason(exc)}") from None
    return out


@contextlib.contextmanager
def spooled(data: bytes, *, suffix: str) -> Iterator[Path]:
    """``data`` in a private temporary file (Parquet and XLSX readers want a file)."""
    fd, name = tempfile.mkstemp(prefix="enrich-stdin-", suffix=suffix)
    path = Path(name)
    try:
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
        except OSError as exc:
            raise InputError(
                f"cannot keep standard input in a temporary file: {reason(exc)}"
            ) from None
        yield path
    finally:
        path.unlink(missing_ok=True)
