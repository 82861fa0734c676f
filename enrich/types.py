"""The leaf of shared types: what every layer passes to every other.

This module imports nothing of the package (httpx ``_types.py`` is the model), so
any module may import it without a cycle: the key of a call, a profile and an
answer, how a key ended (``KeyOutcome`` and its constructors), the progress
counters, the output and error-report column lists, and the UTC time helpers.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol

__all__ = [
    "API_TEXT_COLUMNS",
    "BP_COLUMNS",
    "ERROR_COLUMNS",
    "Answer",
    "ErrorFields",
    "Key",
    "KeyOutcome",
    "Profile",
    "Progress",
    "Status",
    "utc_timestamp",
]

#: One call's key: (CustSpaceId, normalised number).
Key = tuple[str, str]
#: How a key ended.
Status = Literal["ok", "no_profile", "error"]

#: The enriched columns, in their order, after the input's own.
BP_COLUMNS: Final[tuple[str, ...]] = (
    "bp_status",
    "bp_phone",
    "bp_about",
    "bp_address",
    "bp_description",
    "bp_vertical",
    "bp_email",
    "bp_profile_picture_url",
    "bp_websites",
    "bp_fetched_at",
    "bp_request_id",
    "bp_error_code",
)
#: Text that came from the API: neutralised against formulas in CSV and XLSX.
#: (bp_status, bp_phone and bp_fetched_at are ours, never the API's text.)
API_TEXT_COLUMNS: Final[tuple[str, ...]] = tuple(
    c for c in BP_COLUMNS if c not in ("bp_status", "bp_phone", "bp_fetched_at")
)
#: The error report's columns, in their order.
ERROR_COLUMNS: Final[tuple[str, ...]] = (
    "row",
    "phone",
    "phone_normalized",
    "cust_space_id",
    "error_code",
    "error_message",
    "http_status",
    "request_id",
    "attempts",
    "source_row",
)


def utc_timestamp(now: float) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` for a POSIX time (the API's and the summary's format)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))


@dataclass(frozen=True, slots=True)
class Profile:
    """A WhatsApp business profile, texts stripped, empty → None."""

    about: str | None = None
    address: str | None = None
    description: str | None = None
    vertical: str | None = None
    email: str | None = None
    profile_picture_url: str | None = None
    websites: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """A plain dict for the cache."""
        return {
            "about": self.about,
            "address": self.address,
            "description": self.description,
            "vertical": self.vertical,
            "email": self.email,
            "profile_picture_url": self.profile_picture_url,
            "websites": list(self.websites),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Profile:
        """Inverse of ``to_json``."""
        return cls(
            data.get("about"),
            data.get("address"),
            data.get("description"),
            data.get("vertical"),
            data.get("email"),
            data.get("profile_picture_url"),
            tuple(data.get("websites") or ()),
        )


@dataclass(frozen=True, slots=True)
class Answer:
    """A successful answer: a profile, or None when the number has none."""

    profile: Profile | None
    request_id: str | None
    fetched_at: float


class ErrorFields(Protocol):
    """What an outcome takes from a failed call (``errors.CallError`` has these)."""

    @property
    def code(self) -> str: ...
    @property
    def message(self) -> str: ...
    @property
    def http_status(self) -> int | None: ...
    @property
    def request_id(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class KeyOutcome:
    """How one (CustSpaceId, number) key ended: what the ledger keeps and the report shows."""

    status: Status
    profile: Profile | None = None
    request_id: str | None = None
    fetched_at: float | None = None
    error_code: str | None = None
    error_message: str | None = None
    http_status: int | None = None
    attempts: int = 0  # 0 for an answer taken from the ledger

    @classmethod
    def answered(cls, answer: Answer, *, attempts: int) -> KeyOutcome:
        """A successful answer: ``ok`` with its profile, or ``no_profile``."""
        return cls(
            "ok" if answer.profile is not None else "no_profile",
            profile=answer.profile,
            request_id=answer.request_id,
            fetched_at=answer.fetched_at,
            attempts=attempts,
        )

    @classmethod
    def failed(
        cls, err: ErrorFields, *, attempts: int, fetched_at: float | None = None
    ) -> KeyOutcome:
        """A final failure of this key's own call; ``fetched_at`` when the service gave it."""
        return cls(
            "error",
            request_id=err.request_id,
            fetched_at=fetched_at,
            error_code=err.code,
            error_message=err.message,
            http_status=err.http_status,
            attempts=attempts,
        )

    @classmethod
    def rejected(cls, err: ErrorFields, *, attempts: int) -> KeyOutcome:
        """Not called (any more): the service rejected its CustSpaceId for another number."""
        return cls(
            "error",
            error_code=err.code,
            error_message=err.message,
            http_status=err.http_status,
            attempts=attempts,
        )


@dataclass
class Progress:
    """The run's counters: a snapshot for progress displays and periodic log lines."""

    total: int
    done: int = 0
    ok: int = 0
    no_profile: int = 0
    errors: int = 0
    api_calls: int = 0
    retries: int = 0
    throttled: int = 0
    failed_attempts: int = 0
    """Attempts that failed so far, retried or not (the numbers still retrying show here
    before they count in ``errors``)."""
    started: float = field(default_factory=time.monotonic)
    first_call: float | None = None  # loop time (monotonic) of the first request
    last_call: float | None = None  # … of the latest request
    last_answer: float | None = None  # … and of the last answer
    slot_s: float = 0.0  # the paced interval: every call holds at least one slot

    def count(self, outcome: KeyOutcome) -> None:
        """One more key done, by its status."""
        self.done += 1
        if outcome.status == "ok":
            self.ok += 1
        elif outcome.status == "no_profile":
            self.no_profile += 1
        else:
            self.errors += 1

    @property
    def calling_s(self) -> float:
        """From the first request to the last answer or the end of the last call's slot.

        Counting the last call's slot keeps N calls paced at P/s from reading as N / ((N-1)/P),
        over the pace, when the answers are quick.
        """
        if self.first_call is None or self.last_answer is None:
            return 0.0
        last_call = self.first_call if self.last_call is None else self.last_call
        end = max(self.last_answer, last_call + self.slot_s)
        return max(0.0, end - self.first_call)

    @property
    def rate(self) -> float:
        """Calls per second so far, by the same count of time as ``calling_s``."""
        if self.first_call is None:
            return 0.0
        elapsed = time.monotonic() - self.first_call + self.slot_s
        return self.api_calls / elapsed if elapsed > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the current pace of completion."""
        elapsed = time.monotonic() - self.started
        if self.done == 0 or elapsed <= 0:
            return None
        return (self.total - self.done) / (self.done / elapsed)
