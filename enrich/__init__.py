"""cams-enrich: WhatsApp business profiles for phone lists, from Alibaba Cloud CAMS.

From Python (a notebook, a script)::

    import polars as pl
    import enrich

    df = pl.DataFrame({"name": ["Ana", "Bo"], "phone": ["+44 7700 900123", "07700 900456"]})
    result = enrich.enrich_frame(df, default_region="GB", mock=True)
    result.frame      # the input + the bp_* columns (polars, or pandas as given)
    result.errors     # the error report as a frame
    result.summary    # the run summary as a dict

``enrich_frame_async`` does the same inside a running event loop, and
``enrich_file`` does what ``enrich run`` does. Failures are the exceptions of the
error tree (``enrich.InputError``, ``enrich.FatalApiError``, …).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from enrich.errors import (
    ConfigError,
    EnrichError,
    FatalApiError,
    InputError,
    Interrupted,
    LockedError,
    OutputError,
    UsageError,
)

if TYPE_CHECKING:
    from enrich.api import Result, enrich_file, enrich_frame, enrich_frame_async

__all__ = [
    "ConfigError",
    "EnrichError",
    "FatalApiError",
    "InputError",
    "Interrupted",
    "LockedError",
    "OutputError",
    "Result",
    "UsageError",
    "enrich_file",
    "enrich_frame",
    "enrich_frame_async",
]

_API = frozenset({"Result", "enrich_file", "enrich_frame", "enrich_frame_async"})


def __getattr__(name: str) -> Any:
    # The API (and polars with it) is imported on first use, so the command line
    # starts without it.
    if name in _API:
        from enrich import api

        return getattr(api, name)
    raise AttributeError(f"module 'enrich' has no attribute {name!r}")
