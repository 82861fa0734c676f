"""The retry table, as a table."""

from __future__ import annotations

import pytest

from enrich.errors import CallError
from enrich.retry import RetryPolicy

TABLE = [
    # code, http status, decision on attempt 1, throttle?
    ("System.LimitControl", 400, "retry", True),
    ("Throttling.User", 400, "retry", True),
    ("Client.HTTP429", 429, "retry", True),
    ("Client.HTTP500", 500, "retry", False),
    ("Client.HTTP503", 503, "retry", False),
    ("ServiceUnavailable", 503, "retry", False),
    ("Client.Timeout", None, "retry", False),
    ("Client.Connection", None, "retry", False),
    ("Client.BadResponse", 200, "retry", False),
    ("SignatureNonceUsed", 400, "retry", False),
    ("Product.Unsubscript", 400, "fatal", False),
    ("Ram.PermissionDeny", 400, "fatal", False),
    ("InvalidAccessKeyId.NotFound", 404, "fatal", False),
    ("SignatureDoesNotMatch", 400, "fatal", False),
    ("InvalidTimeStamp.Expired", 400, "fatal", False),
    ("Unknown.ResourceOwnerId", 400, "fatal_space", False),
    ("MissingParameter", 400, "final", False),
    ("Client.HTTP403", 403, "final", False),
    ("Some.NewCode", 400, "final", False),
]


@pytest.mark.parametrize(("code", "status", "decision", "throttle"), TABLE)
def test_table(code: str, status: int | None, decision: str, throttle: bool) -> None:
    policy = RetryPolicy(max_attempts=3)
    err = CallError(code, "m", http_status=status)
    assert policy.decide(err, 1) == (decision, throttle)
    # retries end as final after max_attempts; fatal stays fatal
    expected_last = "final" if decision == "retry" else decision
    assert policy.decide(err, 3)[0] == expected_last


def test_backoff_full_jitter_and_cap() -> None:
    policy = RetryPolicy(base_s=0.5, cap_s=4.0)
    err = CallError("Client.Timeout", "t")
    assert policy.backoff_s(1, err, rand=lambda: 1.0) == 0.5
    assert policy.backoff_s(3, err, rand=lambda: 1.0) == 2.0
    assert policy.backoff_s(10, err, rand=lambda: 1.0) == 4.0
    assert policy.backoff_s(10, err, rand=lambda: 0.0) == 0.0


def test_backoff_honours_retry_after() -> None:
    policy = RetryPolicy(base_s=0.5)
    err = CallError("System.LimitControl", "t", retry_after_s=2.5)
    assert policy.backoff_s(1, err, rand=lambda: 0.1) == 2.5
