"""Retry policy as data: which failure is retried, final or fatal, and how long to wait.

``RULES`` is an ordered table; the first rule that matches a ``CallError`` decides.
The fan-out never decides by itself: it asks ``RetryPolicy.verdict`` what to do with
a failure (retry, report, stop the run, or stop calling one CustSpaceId; whether the
outcome is worth remembering in the ledger) and ``backoff_s`` how long to wait.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from enrich.errors import ACCOUNT_FATAL_CODES, CallError

__all__ = [
    "RULES",
    "Decision",
    "RetryPolicy",
    "Rule",
    "Verdict",
    "classify",
    "is_service_answer",
]

#: retry: try again after a backoff; final: report the row; fatal: stop the run;
#: fatal_space: every number of this CustSpaceId would fail the same way.
Decision = Literal["retry", "final", "fatal", "fatal_space"]


@dataclass(frozen=True, slots=True)
class Rule:
    """One row of the table. A rule matches on code (exact or prefix) or on HTTP status."""

    name: str
    decision: Decision
    codes: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()
    statuses: range | None = None
    throttle: bool = False  # a throttle answer also slows the whole run down
    # A final outcome of this class is kept in the ledger when the service gave it.
    # Transient failures (retry rules whose attempts ran out) and account errors are not.
    cache: bool = False

    def matches(self, err: CallError) -> bool:
        """True when this rule applies to ``err``."""
        if err.code in self.codes or err.code.startswith(self.prefixes or ("\0",)):
            return True
        return self.statuses is not None and err.http_status in self.statuses


RULES: tuple[Rule, ...] = (
    Rule("account", "fatal", codes=ACCOUNT_FATAL_CODES),
    Rule("clock", "fatal", codes=frozenset({"InvalidTimeStamp.Expired"})),
    Rule("resource-owner", "fatal_space", codes=frozenset({"Unknown.ResourceOwnerId"})),
    Rule(
        "throttle",
        "retry",
        codes=frozenset({"System.LimitControl", "Client.HTTP429", "ServiceUnavailable.Throttling"}),
        prefixes=("Throttling",),
        statuses=range(429, 430),
        throttle=True,
    ),
    Rule("nonce", "retry", codes=frozenset({"SignatureNonceUsed"})),
    Rule("server", "retry", statuses=range(500, 600)),
    Rule(
        "server-code",
        "retry",
        codes=frozenset({"InternalError", "InternalFailure", "ServiceUnavailable", "UnknownError"}),
    ),
    Rule("transport", "retry", codes=frozenset({"Client.Timeout", "Client.Connection"})),
    # An unparseable 2xx body is nearly always a truncated or mangled answer from a
    # gateway: worth another try; after the last one it is reported as such.
    Rule("bad-body", "retry", codes=frozenset({"Client.BadResponse"})),
)


#: What a failure matching no rule is: reported, and remembered when the service gave it.
FINAL = Rule("final", "final", cache=True)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the fan-out does with one failed attempt.

    ``decision``: ``retry``, ``final`` (report the row), ``fatal`` (stop the run) or
    ``fatal_space`` (no further calls for this CustSpaceId). ``throttle``: slow the
    run down. ``cache``: keep the final outcome in the ledger. ``answered``: the
    service itself gave this error, so it has a time and a RequestId like an answer.
    """

    decision: Decision
    throttle: bool
    cache: bool
    answered: bool


def is_service_answer(err: CallError) -> bool:
    """True when the service itself gave the error (an API code), not our client side."""
    return not err.code.startswith("Client.")


def classify(err: CallError) -> Rule | None:
    """The first matching rule, or None: final (reported, not retried)."""
    for rule in RULES:
        if rule.matches(err):
            return rule
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """Attempts and exponential backoff with full jitter, honouring retry-after hints."""

    max_attempts: int = 6
    base_s: float = 0.5
    cap_s: float = 30.0
    #: this many attempts failing on the client side, and none succeeding: unreachable
    unreachable_after: int = 50

    def unreachable_sign(self, err: CallError) -> bool:
        """A failure that says the service may not be reachable at all (SPEC.md "When
        nothing gets through"): a connection error, a timeout, an HTTP 5xx."""
        status = err.http_status or 0
        return err.code in ("Client.Connection", "Client.Timeout") or 500 <= status < 600

    def decide(self, err: CallError, attempts: int) -> tuple[Decision, bool]:
        """(decision, is_throttle) after ``attempts`` tries ended in ``err``."""
        rule = classify(err)
        if rule is None:
            return "final", False
        if rule.decision == "retry" and attempts >= self.max_attempts:
            return "final", rule.throttle
        return rule.decision, rule.throttle

    def verdict(self, err: CallError, attempts: int, *, single_space: bool) -> Verdict:
        """The whole decision after ``attempts`` tries ended in ``err``.

        With a single CustSpaceId for the run, a rejected space is a rejected run.
        """
        rule = classify(err) or FINAL
        decision, throttle = self.decide(err, attempts)
        if decision == "fatal_space" and single_space:
            decision = "fatal"
        answered = is_service_answer(err)
        cache = decision == "final" and rule.cache and answered
        return Verdict(decision, throttle, cache, answered)

    def backoff_s(
        self, attempts: int, err: CallError, *, rand: Callable[[], float] = random.random
    ) -> float:
        """Full jitter: uniform(0, min(cap, base·2^(attempts-1))), at least the server's hint."""
        ceiling = min(self.cap_s, self.base_s * (2.0 ** max(0, attempts - 1)))
        delay = rand() * ceiling
        if err.retry_after_s is not None:
            delay = max(delay, min(err.retry_after_s, self.cap_s * 4))
        return delay
