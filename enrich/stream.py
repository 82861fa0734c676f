"""Which runs read their input in batches (large CSV and Parquet files), and their progress.

A run streams when its input is a CSV (UTF-8, no ``--header-row``) or Parquet file
of at least ``STREAM_MIN_BYTES`` and its outputs are uncompressed CSV or Parquet
and no ``--limit`` is given: pass 1 (``prepare``) counts the distinct
(CustSpaceId, phone cells) batch by batch, the calls are made on the distinct
keys, pass 2 (``report.write_outputs``) reads the file again and writes each
batch joined to its outcomes. Peak memory then grows with the distinct numbers,
not with the rows. Anything else is read whole, as small files are.

``CAMS_ENRICH_STREAM_MIN_BYTES`` changes the threshold (tests set it to 0, so the
two paths are compared on the same small files); ``CAMS_ENRICH_STREAM_BATCH_BYTES``
the size of a CSV batch.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import polars as pl

from enrich import frames
from enrich.errors import EnrichError
from enrich.frames._common import check_input, named_type
from enrich.frames.stream import (
    BATCH_BYTES,
    NotStreamable,
    StreamedTable,
    csv_layout,
    parquet_columns,
)
from enrich.job import RunConfig
from enrich.paths import OutputPaths

__all__ = [
    "STREAM_MIN_BYTES",
    "PhaseProgress",
    "StreamedTable",
    "log_line",
    "source_for",
]

#: Inputs from this size on are read in batches.
STREAM_MIN_BYTES: Final = 50 * 1024 * 1024

#: What a large file's progress reports, per phase: ``reading`` (pass 1, bytes),
#: ``normalising`` (distinct cells), ``writing`` (pass 2, bytes).
OnPhase = Callable[[str, int, int], None]


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, ""))
    except ValueError:
        return default


def source_for(
    cfg: RunConfig, paths: OutputPaths | None, *, on_phase: OnPhase | None = None
) -> StreamedTable | None:
    """The input as a table to read in batches, or ``None``: read it whole.

    ``paths``: the run's outputs (``None``: ``enrich check``, which writes none).
    Never raises: a file with something wrong is read whole, and that reader says what.
    """
    if frames.is_stdio(cfg.input) or cfg.limit is not None:
        return None
    if cfg.header_row is not None or (cfg.encoding or "utf-8").lower() not in ("utf-8", "utf8"):
        return None
    if paths is not None:
        if paths.fmt not in ("csv", "parquet"):
            return None
        for target in (paths.output, paths.errors):
            kind = named_type(target)
            if kind is not None and kind.compression is not None:
                return None
    try:
        kind = frames.file_type(cfg.input, role="input", given=cfg.input_format)
        size = check_input(cfg.input)
        if size < _env_int("CAMS_ENRICH_STREAM_MIN_BYTES", STREAM_MIN_BYTES):
            return None
        if kind.fmt == "parquet":
            schema = parquet_columns(cfg.input)
            return StreamedTable(
                df=pl.DataFrame(schema=schema), fmt="parquet", path=cfg.input, size=size,
                on_phase=on_phase,
            )  # fmt: skip
        if kind.fmt != "csv":
            return None
        sep = kind.separator
        if cfg.separator is not None:
            sep = frames.parse_separator(cfg.separator)
        layout = csv_layout(cfg.input, sep, size=size)
    except (EnrichError, NotStreamable, OSError):
        return None
    return StreamedTable(
        df=pl.DataFrame(schema=dict.fromkeys(layout.header, pl.String)),
        fmt="csv",
        separator=layout.separator,
        bom=layout.bom,
        line_terminator=layout.line_terminator,
        header_row=1,
        path=cfg.input,
        layout=layout,
        batch_bytes=_env_int("CAMS_ENRICH_STREAM_BATCH_BYTES", BATCH_BYTES),
        size=size,
        on_phase=on_phase,
    )


@dataclass
class PhaseProgress:
    """Calls ``report`` at most every ``every_s`` seconds per phase, and at each phase's end;
    ``also`` (a terminal's bar, ``Seams.on_phase``) at every call.

    ``report(phase, done, total)``: ``reading`` and ``writing`` count bytes of the
    input, ``normalising`` distinct phone cells.
    """

    report: OnPhase
    every_s: float = 30.0
    clock: Callable[[], float] = time.monotonic
    also: OnPhase | None = None
    _last: float = 0.0
    _phase: str = ""

    def __call__(self, phase: str, done: int, total: int) -> None:
        if self.also is not None:
            self.also(phase, done, total)
        now = self.clock()
        if phase != self._phase or done >= total or now - self._last >= self.every_s:
            self._phase, self._last = phase, now
            self.report(phase, done, total)


def log_line(phase: str, done: int, total: int) -> str:
    """A phase's progress as a log line says it."""
    if phase == "normalising":
        return f"{phase}: {done} of {total} distinct phone cells"
    share = 100.0 * done / total if total else 100.0
    return f"{phase}: {done / 1e6:.0f} of {total / 1e6:.0f} MB ({share:.0f} %)"
