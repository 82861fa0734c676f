"""Large outputs written batch by batch to a staging file, as the whole-file writers write them.

``CsvAppender`` writes the header (and a BOM) once, then each batch; its
``write_lines`` appends rows already written as CSV text (a large file's second
pass copies each row's line), in a thread of its own while the caller prepares
the next batch (one batch in flight, in order). ``ParquetParts`` keeps each batch in a private
temporary folder and streams them into one file at the end (polars ``sink_parquet``).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import polars as pl
from polars.exceptions import PolarsError

from enrich.errors import OutputError
from enrich.frames._common import named_type, reason
from enrich.frames.stream import NotStreamable

__all__ = ["CsvAppender", "ParquetParts", "output_separator"]

_UTF8_BOM = b"\xef\xbb\xbf"


def output_separator(shown: Path, separator: str) -> str:
    """The separator a CSV output named ``shown`` is written with: its name's (``.tsv``),
    else ``separator``."""
    kind = named_type(shown)
    return kind.separator if kind is not None and kind.separator else separator


class CsvAppender:
    """CSV written batch by batch to ``path`` as ``csv_write.write_csv`` writes it whole."""

    def __init__(
        self, path: Path, *, shown: Path, separator: str, bom: bool, line_terminator: str
    ) -> None:
        kind = named_type(shown)
        if kind is not None and kind.compression:
            raise NotStreamable("a compressed output")
        self.sep = output_separator(shown, separator)
        self.bom, self.line_terminator, self.shown = bom, line_terminator, shown
        self.first = True
        self._pending: concurrent.futures.Future[None] | None = None
        self._writer: concurrent.futures.ThreadPoolExecutor | None = None
        try:
            self.handle = path.open("wb")
        except OSError as exc:
            raise OutputError(f"cannot write {shown}: {reason(exc)}") from None

    def write(self, flat: pl.DataFrame) -> None:
        """Append ``flat`` (text ready for a spreadsheet); the first batch writes the header."""
        with self._writing():
            flat.write_csv(
                self.handle,
                separator=self.sep,
                null_value="",
                include_bom=self.bom and self.first,
                include_header=self.first,
                line_terminator=self.line_terminator,
            )

    def write_lines(self, *parts: pl.Series, header: Sequence[str]) -> None:
        """Append rows already written as CSV text: each row is its ``parts`` joined by
        the separator, as they are (no quote added), then the line end. The first call
        writes the header (names as they are: no name needs quotes).

        The rows are written by a thread of this appender while the caller goes on;
        the batch before is waited for first, and ``close`` waits for the last.
        """
        self._wait()
        with self._writing():
            if self.first:
                head = self.sep.join(header) + self.line_terminator
                self.handle.write((_UTF8_BOM if self.bom else b"") + head.encode("utf-8"))
        if not parts or not parts[0].len():
            return
        rows = pl.DataFrame([p.alias(f"c{i}") for i, p in enumerate(parts)])
        if self._writer is None:
            self._writer = concurrent.futures.ThreadPoolExecutor(1, "enrich-csv-writer")
        self._pending = self._writer.submit(
            rows.write_csv,
            self.handle,
            separator=self.sep,
            include_header=False,
            quote_style="never",
            line_terminator=self.line_terminator,
        )

    def _wait(self) -> None:
        """The batch in flight written (its failure raised as ``OutputError``)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            with self._writing():
                pending.result()

    def _stop(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.shutdown(wait=True)

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """A write that fails is an ``OutputError``; one that succeeds ends the header."""
        try:
            yield
        except (OSError, PolarsError, ValueError) as exc:
            raise OutputError(f"cannot write {self.shown}: {reason(exc)}") from None
        self.first = False

    def discard(self) -> None:
        """Close without a word (the staged file is removed by ``staged_outputs``)."""
        with contextlib.suppress(Exception):
            self._wait()
        self._stop()
        with contextlib.suppress(OSError):
            self.handle.close()

    def close(self) -> None:
        """Flush, fsync and close (a staged file is whole before it is renamed)."""
        try:
            self._wait()
            self._stop()
            self.handle.flush()
            os.fsync(self.handle.fileno())
        except OSError as exc:
            raise OutputError(f"cannot write {self.shown}: {reason(exc)}") from None
        finally:
            self.handle.close()


class ParquetParts:
    """Parquet written batch by batch: parts in a private folder, one file at the end."""

    def __init__(self, path: Path, *, shown: Path) -> None:
        self.path, self.shown = path, shown
        self.folder = tempfile.TemporaryDirectory(prefix="enrich-parts-")
        self.parts: list[Path] = []

    def write(self, df: pl.DataFrame) -> None:
        """Keep one batch (as is: lists stay lists)."""
        part = Path(self.folder.name) / f"{len(self.parts):06d}.parquet"
        try:
            df.write_parquet(part)
        except (OSError, PolarsError, ValueError) as exc:
            raise OutputError(f"cannot write {self.shown}: {reason(exc)}") from None
        self.parts.append(part)

    def close(self) -> None:
        """The parts, in order, streamed into ``path``; the folder removed."""
        try:
            pl.scan_parquet(self.parts).sink_parquet(self.path, maintain_order=True)
            with self.path.open("rb") as handle:
                os.fsync(handle.fileno())
        except (OSError, PolarsError, ValueError) as exc:
            raise OutputError(f"cannot write {self.shown}: {reason(exc)}") from None
        finally:
            self.discard()

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self.folder.cleanup()
