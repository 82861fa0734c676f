"""SIGINT and SIGTERM, one policy for a run, from before the event loop to after it.

- While answers are being fetched, a signal asks the calls to stop: every answer so
  far is already in the cache, and the run then raises ``Interrupted`` (exit 130).
- Anywhere else before the outputs are committed (reading, normalising, looking up
  the cache, building and staging the outputs), it stops the run at once. Staged files
  are removed on the way out; older outputs stay as they were.
- Once the outputs are being committed (the renames into place), the run is done: the
  renames are never split by a signal, and the run ends with its own exit code.
- After the first signal the run is stopping: a second one changes nothing.

"At once" means raising ``SignalStop`` from the handler. It derives from
``KeyboardInterrupt`` on purpose: an ``Exception`` raised there would be swallowed by
any library's ``except Exception`` (phonenumbers has one) or by asyncio when it lands
in a loop callback, and the run would carry on as if nothing had happened.
``Interrupts.stop_message`` is what the caller turns it into.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

__all__ = ["Interrupts", "SignalStop"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class SignalStop(KeyboardInterrupt):
    """Raised by the signal handler outside the calls (see the module docstring)."""


class Interrupts:
    """Installed with ``with``; a no-op when disabled or off the main thread."""

    stop_message = (
        "interrupted: nothing written (older outputs are as they were); answers "
        "fetched so far are kept in the cache; run the same command again to resume"
    )

    def __init__(self, *, enabled: bool = True) -> None:
        self._enabled = enabled and threading.current_thread() is threading.main_thread()
        self._previous: dict[int, Any] = {}
        self._calling: tuple[asyncio.AbstractEventLoop, Callable[[], None]] | None = None
        self._stopping = False
        self.committed = False

    def __enter__(self) -> Interrupts:
        if self._enabled:
            for sig in _SIGNALS:
                self._previous[sig] = signal.signal(sig, self._on_signal)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    @contextlib.contextmanager
    def calling(self, loop: asyncio.AbstractEventLoop, stop: Callable[[], None]) -> Iterator[None]:
        """While inside: a signal calls ``stop`` on ``loop`` instead of raising."""
        self._calling = (loop, stop)
        try:
            yield
        finally:
            self._calling = None

    @contextlib.contextmanager
    def committing(self) -> Iterator[None]:
        """While inside (the renames), signals wait; after it they no longer stop the run."""
        if not self._enabled:
            self.committed = True
            yield
            return
        signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        try:
            self.committed = True
            yield
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.committed or self._stopping:
            return  # the outputs are in place, or the run is already stopping
        self._stopping = True
        if self._calling is not None:
            loop, stop = self._calling
            loop.call_soon_threadsafe(stop)
            return
        raise SignalStop
