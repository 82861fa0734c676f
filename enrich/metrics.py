"""The ``--metrics-file``: a run's figures as Prometheus gauges, for the node_exporter
textfile collector.

Every metric is a gauge labelled ``job`` (the ``--job`` file stem, else the input stem).
Gauges, and no ``_total`` suffix, because each value describes the last run only: the
file is replaced whole at the end of every run, so the values go up and down from night
to night and are not counters. A code that no longer occurs simply disappears.

======================================================  =====================================
metric                                                  from
======================================================  =====================================
``cams_enrich_exit_code{job}``                          ``exit_code`` (always written)
``cams_enrich_last_run_end_timestamp_seconds{job}``     ``finished_at`` (always written)
``cams_enrich_duration_seconds{job}``                   ``duration_s`` (always written)
``cams_enrich_input_rows{job}``                         summary ``rows``
``cams_enrich_rows{job,status}``                        ``ok``, ``no_profile``,
                                                        ``invalid_phone`` (``invalid``),
                                                        ``error`` (``error_rows - invalid``):
                                                        the ``bp_status`` values, summing to
                                                        the input rows
``cams_enrich_error_rows{job,code}``                    ``errors_by_code``
``cams_enrich_unique_numbers{job}``                     ``unique_numbers``
``cams_enrich_cache_hits{job}``                         ``cache_hits``
``cams_enrich_api_calls{job}``                          ``api_calls`` (retries included)
``cams_enrich_retries{job}``                            ``retries``
``cams_enrich_throttled{job}``                          ``throttled``
``cams_enrich_requests_per_second{job}``                ``requests_per_s``
======================================================  =====================================

A failed run (exit 1, 3 or 130 after the input was read) may have a partial summary. A key
that is missing, or not a number, leaves its gauge out of the file rather than writing 0:
a fatal run did not have "0 ok rows", it has no such figure. The three figures passed as
arguments are always written, so an alert on the end time and the exit code always has
its series.

There is no ``last_success_timestamp_seconds``: it would have to be carried over from the
previous file on a failed run, and reading a file that another run may be replacing is
not worth it. Alert on the end time and the exit code instead (README, "Running in
production").

The file is written atomically, by hand rather than with
``prometheus_client.write_to_textfile``: that helper neither fsyncs nor removes its temp
file on a ``KeyboardInterrupt`` (our interrupt), and before 0.20 not on any error. The
temp file is hidden, beside the target (same file system), and ends in ``.tmp`` so the
collector, which reads only ``*.prom``, never sees it half-written.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from prometheus_client import CollectorRegistry, Gauge, generate_latest

from enrich.errors import OutputError, UsageError
from enrich.frames.staging import atomic_path, remove_stale_temps

__all__ = ["METRICS_EXTENSION", "PREFIX", "check_metrics_path", "write_metrics"]

#: The node_exporter textfile collector reads only files with this extension.
METRICS_EXTENSION: Final = ".prom"
PREFIX: Final = "cams_enrich_"

#: summary key → (metric name without the prefix, help text)
_PLAIN: Final[tuple[tuple[str, str, str], ...]] = (
    ("rows", "input_rows", "Input data rows of the last run."),
    ("unique_numbers", "unique_numbers", "Distinct valid (CustSpaceId, number) keys."),
    ("cache_hits", "cache_hits", "Keys answered from the cache."),
    ("api_calls", "api_calls", "HTTP requests sent, retries included."),
    ("retries", "retries", "Requests beyond the first for a key."),
    ("throttled", "throttled", "Throttle answers received."),
    ("requests_per_s", "requests_per_second", "API calls per second of calling."),
)


def check_metrics_path(path: Path) -> None:
    """Refuse, before the run starts, a metrics path that cannot work.

    Raises:
        UsageError: the name does not end in ``.prom`` (the textfile collector would
            never read it), the folder is missing or not a folder, or the path is a
            folder.
    """
    if path.suffix != METRICS_EXTENSION:
        raise UsageError(
            f"--metrics-file {path}: the name must end in {METRICS_EXTENSION} "
            "(the node_exporter textfile collector reads only *.prom)"
        )
    folder = path.parent
    if not folder.is_dir():
        what = "does not exist" if not folder.exists() else "is not a folder"
        raise UsageError(f"--metrics-file {path}: folder {folder} {what}")
    if path.is_dir():
        raise UsageError(f"--metrics-file {path}: is a folder")


def write_metrics(
    path: Path,
    summary: Mapping[str, Any],
    *,
    job: str,
    exit_code: int,
    duration_s: float,
    finished_at: float,
) -> None:
    """Write the run's figures to ``path`` in the Prometheus text format, atomically.

    Args:
        path: the ``.prom`` file (not checked here: see ``check_metrics_path``).
        summary: the run summary, complete or partial; the keys read are listed in the
            module docstring, missing ones leave their gauge out.
        job: the ``job`` label value.
        exit_code: the process's exit code.
        duration_s: the run's wall time, in seconds.
        finished_at: the end of the run, in seconds since the epoch.

    Raises:
        OutputError: the file cannot be written (one line:
            ``cannot write metrics file PATH: reason``); an older file is left as it was.
    """
    _publish(path, generate_latest(_registry(summary, job, exit_code, duration_s, finished_at)))


def _registry(
    summary: Mapping[str, Any], job: str, exit_code: int, duration_s: float, finished_at: float
) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    gauges: dict[str, Gauge] = {}

    def gauge(name: str, doc: str, value: float, **labels: str) -> None:
        if name not in gauges:  # created on first use: a figure never set is not written
            gauges[name] = Gauge(PREFIX + name, doc, ["job", *labels], registry=registry)
        gauges[name].labels(job=job, **labels).set(value)

    gauge("exit_code", "Exit code of the last run.", exit_code)
    gauge("duration_seconds", "Wall time of the last run.", duration_s)
    gauge(
        "last_run_end_timestamp_seconds",
        "When the last run ended, in seconds since the epoch.",
        finished_at,
    )
    for key, name, doc in _PLAIN:
        if (value := _number(summary.get(key))) is not None:
            gauge(name, doc, value)

    rows_doc = "Rows of the last run by bp_status."
    invalid = _number(summary.get("invalid"))
    error_rows = _number(summary.get("error_rows"))
    for status, value in (
        ("ok", _number(summary.get("ok"))),
        ("no_profile", _number(summary.get("no_profile"))),
        ("invalid_phone", invalid),
        ("error", None if error_rows is None or invalid is None else error_rows - invalid),
    ):
        if value is not None:
            gauge("rows", rows_doc, value, status=status)

    by_code = summary.get("errors_by_code")
    if isinstance(by_code, Mapping):
        for code, count in sorted(by_code.items()):
            if (value := _number(count)) is not None:
                gauge("error_rows", "Rows of the last run by error code.", value, code=str(code))
    return registry


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _publish(path: Path, data: bytes) -> None:
    """Write ``data`` atomically over ``path`` (``frames.atomic_path``: a temp file
    beside it, fsync, rename; 0666 less the umask, so node_exporter can read it)."""
    folder = path.parent
    if not folder.is_dir():
        what = "does not exist" if not folder.exists() else "is not a folder"
        raise OutputError(f"cannot write metrics file {path}: folder {folder} {what}")
    remove_stale_temps(path)
    try:
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)
    except OutputError as exc:
        message = str(exc).replace("cannot write ", "cannot write metrics file ", 1)
        raise OutputError(message) from None
