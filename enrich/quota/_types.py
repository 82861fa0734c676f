"""The quota's public records, its one error, and the seam between a member and its store."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from enrich.errors import EnrichError

__all__ = [
    "Backend",
    "BudgetStatus",
    "EventKind",
    "MemberInfo",
    "MemberStatus",
    "QuotaEvent",
    "QuotaLostError",
    "StoreUnavailable",
]


EventKind = Literal["lost", "waiting", "restored"]


class QuotaLostError(EnrichError):
    """The quota store stayed unreachable past the limit: no slot can be granted (exit 1)."""


class StoreUnavailable(Exception):
    """One store operation failed; ``str(err)`` is one line without any secret."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberInfo:
    """Who a member is, as the store records it."""

    id: str
    budget: str
    rate: float
    pid: int
    host: str
    input: str
    joined: float  # the store's clock (SQLite: time.monotonic(); Redis: TIME), at registration


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberStatus:
    """One run on a budget, for ``enrich quota status``."""

    pid: int
    host: str
    input: str
    rate: float  # its --rate
    recent_rate: float  # slots it took per second over the last 10 s
    joined_at: float  # epoch seconds, by the store's clock
    busy: bool  # it is asking for slots now (it counts in the split)


@dataclass(frozen=True, slots=True, kw_only=True)
class BudgetStatus:
    """One budget of a store: its rate (the smallest --rate of its runs) and the runs on it."""

    name: str
    rate: float
    pace: float  # the slots per second it hands out (rate × headroom)
    members: tuple[MemberStatus, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class QuotaEvent:
    """The store was lost, is still lost, or came back; ``message`` is one log line."""

    kind: EventKind
    store: str  # describe(): never a password
    message: str
    outage_s: float


class Backend(Protocol):
    """What a member needs from a store; every method raises only :class:`StoreUnavailable`."""

    #: a server reached over the network ("unreachable"), or a local file ("unusable")
    remote: bool

    def describe(self) -> str: ...

    async def register(self, info: MemberInfo) -> float:
        """Record the member (also the first contact: it checks the store); return its clock."""
        ...

    async def heartbeat(self, info: MemberInfo) -> None:
        """Refresh the member, and drop the members of any budget whose heartbeat expired."""
        ...

    async def take(self, info: MemberInfo, want: int) -> list[float]:
        """Grant 1..want slots; return them as ``time.monotonic()`` deadlines, in order."""
        ...

    async def leave(self, info: MemberInfo) -> None: ...

    async def status(self) -> list[BudgetStatus]: ...

    async def aclose(self) -> None: ...
