"""Small helpers shared by the stores."""

from __future__ import annotations

import re

from enrich.quota._core import QuotaParams
from enrich.quota._types import BudgetStatus, MemberStatus

__all__ = ["budget_status", "one_line", "os_error_line"]

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def one_line(text: str) -> str:
    """A foreign message as one line: control characters and line breaks become a space."""
    return _CONTROL.sub(" ", text).strip().rstrip(".")


def budget_status(name: str, rows: list[tuple[float, MemberStatus]],
                  params: QuotaParams) -> BudgetStatus:
    """A budget's status from its live members (``(joined, status)``), oldest first."""
    members = tuple(m for _, m in sorted(rows, key=lambda r: r[0]))
    rate = min(m.rate for m in members)
    return BudgetStatus(name=name, rate=rate, pace=rate * params.headroom, members=members)


def os_error_line(exc: OSError) -> str:
    """``No such file or directory: '/x'`` rather than ``[Errno 2] No such file …``."""
    if exc.strerror and exc.filename:
        return one_line(f"{exc.strerror}: {exc.filename}")
    return one_line(exc.strerror or str(exc) or type(exc).__name__)
