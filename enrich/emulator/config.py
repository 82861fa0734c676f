"""The emulator's configuration and the fault kinds it knows."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

__all__ = ["ALL_FAULTS", "DEFAULT_KEYS", "EmulatorConfig"]

#: Every fault kind, in the order the ``--help`` text describes them.
ALL_FAULTS: Final[tuple[str, ...]] = (
    "http500_html",
    "http503_json",
    "http429",
    "throttle",
    "truncated_json",
    "garbage",
    "code_not_ok",
    "xml_error",
    "drop",
    "hang",
)

#: The key pair of the captured requests, and the emulator's default.
DEFAULT_KEYS: Final[Mapping[str, str]] = {"testAKID": "testSecret"}


def _default_keys() -> Mapping[str, str]:
    return dict(DEFAULT_KEYS)


@dataclass(frozen=True, kw_only=True)
class EmulatorConfig:
    """How the emulator behaves; the defaults are a well-behaved CAMS.

    ``keys`` maps AccessKeyId → AccessKeySecret. ``rate_limit`` is the number
    of admitted requests per AccessKeyId in any sliding 1-second window
    (0 = unlimited; below 1, one request per ``1/rate_limit`` seconds).
    ``latency_s`` ± ``jitter_s`` (uniform) is waited before every answer.
    ``fault_rate`` (0..1) is the share of ordinary requests answered with a
    fault drawn from ``faults`` by an RNG seeded with ``seed``. ``force_code``
    answers every authenticated request with that error code. ``hang_s`` is
    how long a ``hang`` fault holds its answer. ``clock`` gives "now" (Unix
    seconds) for the ``x-acs-date`` / ``Timestamp`` check and for STS expiry.
    ``sts_lifetime_s`` is how long the STS credentials served at
    ``GET /credentials`` (a credentials URI) stay valid.
    """

    keys: Mapping[str, str] = field(default_factory=_default_keys)
    rate_limit: float = 10.0
    latency_s: float = 0.0
    jitter_s: float = 0.0
    fault_rate: float = 0.0
    faults: tuple[str, ...] = ALL_FAULTS
    force_code: str | None = None
    hang_s: float = 60.0
    seed: int = 0
    clock: Callable[[], float] = time.time
    sts_lifetime_s: float = 3600.0

    def __post_init__(self) -> None:
        if not self.keys:
            raise ValueError("EmulatorConfig.keys needs at least one AccessKeyId → secret pair")
        if self.rate_limit < 0:
            raise ValueError(f"rate_limit must be >= 0, got {self.rate_limit}")
        if self.latency_s < 0 or self.jitter_s < 0 or self.hang_s < 0:
            raise ValueError("latency_s, jitter_s and hang_s must be >= 0")
        if not 0.0 <= self.fault_rate <= 1.0:
            raise ValueError(f"fault_rate must be within 0..1, got {self.fault_rate}")
        unknown = [kind for kind in self.faults if kind not in ALL_FAULTS]
        if unknown:
            raise ValueError(
                f"unknown fault kind(s) {', '.join(unknown)}; known: {', '.join(ALL_FAULTS)}"
            )
        if self.sts_lifetime_s <= 0:
            raise ValueError(f"sts_lifetime_s must be > 0, got {self.sts_lifetime_s}")
        if self.fault_rate > 0 and not self.faults:
            raise ValueError("fault_rate > 0 needs at least one fault kind")
