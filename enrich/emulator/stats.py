"""What the emulator saw and answered; thread-safe, for tests and benchmarks."""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from typing import Final

__all__ = ["MAX_ARRIVALS", "EmulatorStats", "max_in_window"]

#: Arrivals kept (the oldest are forgotten first), so a long-running server stays bounded.
MAX_ARRIVALS: Final = 1_000_000


def max_in_window(times: list[float], window_s: float = 1.0) -> int:
    """Most of ``times`` inside any half-open window ``[t, t + window_s)``.

    The one sliding-window count of the project: the emulator's stats, the
    tests and the benchmarks all use it. ``times`` may come in any order
    (tasks finish out of order); a sorted list costs one pass.
    """
    times = sorted(times)
    best = 0
    start = 0
    for end, moment in enumerate(times):
        while moment - times[start] >= window_s:
            start += 1
        best = max(best, end - start + 1)
    return best


class EmulatorStats:
    """Counters of one emulator, safe to read from any thread while it serves.

    - ``requests_total``: API requests (``POST /``) that arrived.
    - ``arrivals``: ``(time.monotonic(), AccessKeyId)`` of each, in arrival
      order (``""`` when the request named no key); the last
      :data:`MAX_ARRIVALS` are kept. ``time.monotonic`` is system-wide on
      Linux, so another process on the machine can compare with it.
    - ``codes``: answers by the ``Code`` they carried (``"OK"`` for success);
      answers carrying no code count as ``"fault:<kind>"`` (``http500_html``,
      ``truncated_json``, ``garbage``, ``drop``, and ``hang`` when shutdown
      cut it short; a ``hang`` that runs its course answers ``"OK"``).
    - ``faults``: injected faults by kind (random or by a magic CustSpaceId).
    - ``successes``: ``Code: OK`` answers per ``(CustSpaceId, PhoneNumber)``.
    - ``attempts``: authenticated, admitted requests per ``(CustSpaceId,
      PhoneNumber)``; this drives the ``fault-<kind>-<n>`` CustSpaceIds, so
      :meth:`reset` also restarts those.
    - ``credentials_served``: answers of ``GET /credentials`` by kind
      (``"ok"``, or the ``?fault=`` asked for).

    The properties return snapshots (copies).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests_total = 0
        self._arrivals: deque[tuple[float, str]] = deque(maxlen=MAX_ARRIVALS)
        self._codes: Counter[str] = Counter()
        self._faults: Counter[str] = Counter()
        self._successes: Counter[tuple[str, str]] = Counter()
        self._attempts: Counter[tuple[str, str]] = Counter()
        self._credentials: Counter[str] = Counter()

    # -- recording (called by the app) ------------------------------------

    def record_arrival(self, moment: float, access_key_id: str) -> None:
        """Count one API request arriving at ``moment`` (monotonic) for ``access_key_id``."""
        with self._lock:
            self._requests_total += 1
            self._arrivals.append((moment, access_key_id))

    def record_answer(self, code: str, key: tuple[str, str] | None = None) -> None:
        """Count one answer carrying ``code``; an ``"OK"`` with a key counts as its success."""
        with self._lock:
            self._codes[code] += 1
            if code == "OK" and key is not None:
                self._successes[key] += 1

    def record_fault(self, kind: str) -> None:
        """Count one injected fault."""
        with self._lock:
            self._faults[kind] += 1

    def record_credentials(self, kind: str) -> None:
        """Count one answer of the credentials URI (``"ok"`` or a fault)."""
        with self._lock:
            self._credentials[kind] += 1

    def next_attempt(self, key: tuple[str, str]) -> int:
        """Count one more attempt for ``key`` and return the count (1 for the first)."""
        with self._lock:
            self._attempts[key] += 1
            return self._attempts[key]

    # -- reading -------------------------------------------------------------

    @property
    def requests_total(self) -> int:
        """API requests that arrived."""
        with self._lock:
            return self._requests_total

    @property
    def arrivals(self) -> list[tuple[float, str]]:
        """``(monotonic time, AccessKeyId)`` per arrival, oldest first (a copy)."""
        with self._lock:
            return list(self._arrivals)

    @property
    def codes(self) -> Counter[str]:
        """Answers by code (a copy)."""
        with self._lock:
            return Counter(self._codes)

    @property
    def faults(self) -> Counter[str]:
        """Injected faults by kind (a copy)."""
        with self._lock:
            return Counter(self._faults)

    @property
    def successes(self) -> Counter[tuple[str, str]]:
        """``Code: OK`` answers per (CustSpaceId, PhoneNumber) (a copy)."""
        with self._lock:
            return Counter(self._successes)

    @property
    def attempts(self) -> Counter[tuple[str, str]]:
        """Authenticated, admitted requests per (CustSpaceId, PhoneNumber) (a copy)."""
        with self._lock:
            return Counter(self._attempts)

    @property
    def credentials_served(self) -> Counter[str]:
        """Answers of ``GET /credentials`` by kind (a copy)."""
        with self._lock:
            return Counter(self._credentials)

    def max_in_window(self, window_s: float = 1.0, access_key_id: str | None = None) -> int:
        """Most arrivals (of one key, or of all) inside any sliding ``window_s`` window."""
        times = [
            moment for moment, key in self.arrivals if access_key_id is None or key == access_key_id
        ]
        return max_in_window(times, window_s)

    def reset(self) -> None:
        """Forget everything counted so far (nonces and rate-limit windows are kept)."""
        with self._lock:
            self._requests_total = 0
            self._arrivals.clear()
            self._codes.clear()
            self._faults.clear()
            self._successes.clear()
            self._attempts.clear()
            self._credentials.clear()

    def to_json(self, *, arrivals: bool = True) -> dict[str, object]:
        """A JSON-ready snapshot, as ``GET /_emulator/stats`` serves it."""
        with self._lock:
            arrived = list(self._arrivals)
            snapshot: dict[str, object] = {
                "requests_total": self._requests_total,
                "codes": dict(self._codes),
                "faults": dict(self._faults),
                "successes": [
                    {"cust_space_id": cust, "phone": phone, "count": count}
                    for (cust, phone), count in self._successes.items()
                ],
                "attempts": [
                    {"cust_space_id": cust, "phone": phone, "count": count}
                    for (cust, phone), count in self._attempts.items()
                ],
                "credentials_served": dict(self._credentials),
            }
        keys = sorted({key for _, key in arrived})
        snapshot["max_in_window_1s"] = {
            "*": max_in_window([moment for moment, _ in arrived]),
            **{key: max_in_window([moment for moment, k in arrived if k == key]) for key in keys},
        }
        snapshot["monotonic_now"] = time.monotonic()
        if arrivals:
            snapshot["arrivals"] = [[moment, key] for moment, key in arrived]
        return snapshot
