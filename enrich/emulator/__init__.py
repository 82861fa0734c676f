"""A local stand-in for Alibaba Cloud CAMS ``QueryPhoneBusinessProfile``.

An aiohttp server (``POST /`` with the query parameters and signed headers
the official SDK sends) that behaves like the real service closely enough to
test a client against it: ``enrich emulator`` runs it in the foreground,
``enrich run --mock`` and the tests in a background thread
(:class:`EmulatorServer`).

Authentication, as the real gateway does it
    ACS3-HMAC-SHA256 (``Authorization`` header; STS via
    ``x-acs-security-token``) and V1 HMAC-SHA1 (``Signature`` in the query;
    STS via ``SecurityToken``). The received query is decoded and re-encoded
    before checking, so ``+`` for space and re-normalised escapes verify.
    Every ``x-acs-*`` header and ``host`` must be signed. Default key pair
    ``testAKID`` / ``testSecret``. Refusals: unknown AccessKeyId → 404
    ``InvalidAccessKeyId.NotFound``; bad signature → 400
    ``SignatureDoesNotMatch`` (the message shows the server's string to sign);
    date more than 15 minutes off → ``InvalidTimeStamp.Expired``; a nonce
    seen before for that key (remembered 31 minutes) → ``SignatureNonceUsed``;
    no credentials, ``CustSpaceId`` or ``PhoneNumber`` → ``MissingParameter``.
    An STS token starting with ``expired`` / ``malformed`` →
    ``InvalidSecurityToken.Expired`` / ``.Malformed``.

STS credentials (:mod:`enrich.emulator.sts`)
    ``GET /credentials`` is a credentials URI (``ALIBABA_CLOUD_CREDENTIALS_URI``):
    it mints a key, secret and token valid for ``sts_lifetime_s`` (``?lifetime=S``
    per call). Requests signed with them are accepted while the token is valid,
    then answered 400 ``InvalidSecurityToken.Expired``; without their own token,
    ``InvalidSecurityToken.MismatchWithAccessKey``. They share the first key's
    limit. ``?fault=garbage|error|http500|incomplete|hang|revoked|revoked-<n>``
    picks a failure (``revoked``: the API holds them expired already).

Limit
    At most ``rate_limit`` (default 10, 0 = unlimited) admitted requests per
    AccessKeyId in any sliding 1-second window; beyond it, 400
    ``System.LimitControl`` "The system is under flow control.". Every
    arrival is recorded as ``(time.monotonic(), AccessKeyId)`` in
    ``stats.arrivals``; ``stats.max_in_window()`` checks a client's pacing.

Errors on demand
    ``force_code="Ram.PermissionDeny"`` (``--force-code``) answers every
    authenticated request with that code and its real HTTP status. By input
    (the CustSpaceId):

    - ``foreign…`` (e.g. ``foreign-space``) → ``Unknown.ResourceOwnerId``;
    - ``err-<Code>`` (e.g. ``err-Product.Unsubscript``) → that code, always;
    - ``fault-<kind>-<n>`` (e.g. ``fault-http503_json-2``) → the first ``n``
      requests for each (CustSpaceId, PhoneNumber) get that fault, later ones
      succeed: "retry, then succeed" made deterministic;
    - anything else is owned by every key and answers normally.

Faults (``fault_rate`` 0..1 of ordinary requests, kinds from ``faults``,
drawn from an RNG seeded with ``seed`` in arrival order, so reproducible)
    ``http500_html`` 500 with a text/html gateway page; ``http503_json`` 503
    ``ServiceUnavailable``; ``http429`` 429 ``Throttling.User``; ``throttle``
    400 ``System.LimitControl`` with ``x-acs-retry-after: 200`` (ms);
    ``truncated_json`` 200 with the body cut in half (Content-Length of the
    cut body); ``garbage`` 200 with non-JSON bytes; ``code_not_ok`` 200 with
    ``Code: InternalError``; ``xml_error`` 503 ``text/xml;charset=utf-8``
    ``<Error>`` body; ``drop`` the connection is closed unanswered; ``hang``
    the answer comes after ``hang_s`` (60 s), longer than any sane timeout.
    Magic CustSpaceIds never get random faults. ``latency_s`` ± ``jitter_s``
    is waited before every answer.

Answers
    Every answer has an upper-case UUID RequestId, also in the
    ``x-acs-request-id`` header. Errors are JSON
    ``{RequestId, HostId, Code, Message, Recommend}``, or
    ``{requestId, code, message}`` when the PhoneNumber ends in ``7``, with
    ``Content-Type: application/json;charset=utf-8``. Success is
    ``{RequestId, Code: "OK", Message: "None", Success: true, Data}``.

Profiles
    :func:`profile_for` (in :mod:`enrich.emulator.profiles`) is the pure,
    deterministic truth for every number: 17% no profile, 45% full, 38%
    partial (empty ``""`` / ``"\\n"`` or missing fields, ``Websites: []``),
    texts with trailing ``"\\n"``, Chinese, emoji, and leading ``=``, ``+``,
    ``-``, ``@``. "No profile" is sent as ``"Data": null`` for some numbers and
    ``"Data": {}`` for others (:func:`no_profile_form`); ``profile_for``
    returns ``None`` for both, :func:`data_on_wire` the exact value sent.

Stats
    :class:`EmulatorStats` (``server.stats``): ``requests_total``,
    ``arrivals``, ``codes``, ``faults``, ``successes`` and ``attempts`` per
    (CustSpaceId, PhoneNumber); ``GET /_emulator/stats`` serves them as JSON,
    ``POST /_emulator/reset`` clears them.
"""

from __future__ import annotations

from enrich.emulator.app import STATS_KEY, THROTTLE_RETRY_AFTER_MS, make_app
from enrich.emulator.config import ALL_FAULTS, DEFAULT_KEYS, EmulatorConfig
from enrich.emulator.profiles import data_on_wire, no_profile_form, profile_for
from enrich.emulator.server import EmulatorServer, serve_forever
from enrich.emulator.stats import EmulatorStats

__all__ = [
    "ALL_FAULTS",
    "DEFAULT_KEYS",
    "STATS_KEY",
    "THROTTLE_RETRY_AFTER_MS",
    "EmulatorConfig",
    "EmulatorServer",
    "EmulatorStats",
    "data_on_wire",
    "make_app",
    "no_profile_form",
    "profile_for",
    "serve_forever",
]
