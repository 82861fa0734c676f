"""The one error tree of cams-enrich, and the process exit codes.

::

    EnrichError                 anything that ends a run; carries exit_code
     ├── UsageError             bad option or combination (exit 2)
     ├── InputError             input file, column, sheet, credentials (exit 1)
     ├── ConfigError            job file, ${ENV} interpolation (exit 1)
     ├── OutputError            an output cannot be written (exit 1)
     ├── LockedError            another run holds the output's lock (exit 1)
     ├── FatalApiError          account-level API failure: every row would fail (exit 3)
     └── Interrupted            SIGINT / SIGTERM (exit 130)

    CallError                   one API call's failure (not a run failure):
                                code, message, HTTP status, RequestId, retry-after;
                                becomes a row of the error report

aiohttp and asyncio exceptions are translated into ``CallError`` in exactly one
place, ``enrich.client``. The CLI maps ``EnrichError`` to one line on stderr and
its ``exit_code``; nothing below the CLI prints or exits.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "ACCOUNT_FATAL_CODES",
    "EXIT_ERROR_RATE",
    "EXIT_FAILURE",
    "EXIT_FATAL",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "CallError",
    "ConfigError",
    "EnrichError",
    "FatalApiError",
    "InputError",
    "Interrupted",
    "LockedError",
    "OutputError",
    "UsageError",
]

EXIT_OK: Final = 0
EXIT_FAILURE: Final = 1
EXIT_USAGE: Final = 2
EXIT_FATAL: Final = 3
EXIT_ERROR_RATE: Final = 4
EXIT_INTERRUPTED: Final = 130

#: API codes that would fail every row of the account: the run stops early.
ACCOUNT_FATAL_CODES: Final = frozenset(
    {
        "Product.Unsubscript",
        "Ram.PermissionDeny",
        "InvalidAccessKeyId.NotFound",
        "InvalidAccessKeyId.Inactive",
        "SignatureDoesNotMatch",
        "InvalidSecurityToken.Expired",
        "InvalidSecurityToken.Malformed",
    }
)


class EnrichError(Exception):
    """Base of every error that ends a run; ``str(err)`` is the one line shown."""

    exit_code: int = EXIT_FAILURE


class UsageError(EnrichError):
    """An option or combination of options that cannot work."""

    exit_code = EXIT_USAGE


class InputError(EnrichError):
    """The input file, its columns or sheets, or the credentials are unusable."""


class ConfigError(EnrichError):
    """A job file or its ``${ENV}`` interpolation is unusable."""


class OutputError(EnrichError):
    """An output file cannot be written."""


class LockedError(EnrichError):
    """Another run holds the lock on the same output."""


class FatalApiError(EnrichError):
    """An account-level API error: every further call would fail the same way."""

    exit_code = EXIT_FATAL

    def __init__(self, message: str, *, code: str, request_id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.request_id = request_id


class Interrupted(EnrichError):
    """The run was stopped by SIGINT or SIGTERM."""

    exit_code = EXIT_INTERRUPTED


class CallError(Exception):
    """One API call failed; the fields are what the error report needs."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        http_status: int | None = None,
        request_id: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.http_status = http_status
        self.request_id = request_id
        self.retry_after_s = retry_after_s

    def __repr__(self) -> str:
        return (
            f"CallError(code={self.code!r}, http_status={self.http_status!r}, "
            f"request_id={self.request_id!r})"
        )
