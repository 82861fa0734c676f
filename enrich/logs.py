"""Log lines on stderr: ``text`` for people, ``json`` (one object per line) for machines.

Nothing secret is ever passed here; phone numbers are masked to their last four
digits with ``mask_phone`` before they reach a log line.
"""

from __future__ import annotations

import json
import sys
import time
import unicodedata
from collections.abc import Callable
from typing import Any, Literal, TextIO

from enrich.types import utc_timestamp

__all__ = ["Log", "mask_phone", "one_line"]


_ESCAPES = {ord("\r"): "\\r", ord("\n"): "\\n"}


def _escaped(ch: str) -> str:
    if ch == "\t" or unicodedata.category(ch) not in ("Cc", "Zl", "Zp"):
        return ch
    if ord(ch) in _ESCAPES:
        return _ESCAPES[ord(ch)]
    return f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}"


def one_line(text: str) -> str:
    """``text`` on one line, with no terminal control: CR, LF, ESC, other control
    characters and line separators shown escaped (a server message may hold them)."""
    if text.isprintable():
        return text
    return "".join(_escaped(ch) for ch in text)


def mask_phone(number: str | None) -> str:
    """``8613800138000`` → ``*********8000``."""
    if not number:
        return ""
    return "*" * max(0, len(number) - 4) + number[-4:]


class Log:
    """Writes events as ``text`` or ``json`` lines to a stream (stderr by default)."""

    def __init__(
        self,
        *,
        fmt: Literal["text", "json"] = "text",
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.time,
        quiet_info: bool = False,
    ) -> None:
        self.fmt = fmt
        self._stream = stream
        self._clock = clock
        self.quiet_info = quiet_info

    @property
    def stream(self) -> TextIO:
        """Where lines go (resolved late so tests can capture stderr)."""
        return self._stream if self._stream is not None else sys.stderr

    def event(self, name: str, message: str, *, level: str = "info", **fields: Any) -> None:
        """One event: ``name`` (machine), ``message`` (person), and fields."""
        if level == "info" and self.quiet_info and self.fmt == "text":
            return
        if self.fmt == "json":
            record = {
                "ts": utc_timestamp(self._clock()),
                "level": level,
                "event": name,
                "message": message,
                **fields,
            }
            line = json.dumps(record, ensure_ascii=False, default=str)
        else:
            prefix = "" if level == "info" else f"{level}: "
            line = f"enrich: {prefix}{one_line(message)}"
        print(line, file=self.stream, flush=True)

    def info(self, name: str, message: str, **fields: Any) -> None:
        """An informational event."""
        self.event(name, message, level="info", **fields)

    def warning(self, name: str, message: str, **fields: Any) -> None:
        """A warning event (always shown)."""
        self.event(name, message, level="warning", **fields)
