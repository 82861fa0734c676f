"""Credentials and the ACS3-HMAC-SHA256 request signature (pure: clock and nonce passed in).

The canonical request is built exactly as the official Alibaba Cloud SDK builds it
(see ``tests/data/golden_vectors.json``): query parameters sorted by name with values
percent-encoded leaving only ``A-Za-z0-9-_.~`` bare, signed headers lower-cased,
trimmed and sorted, then ``ACS3-HMAC-SHA256\\n`` + hex SHA-256 of that request is
signed with HMAC-SHA256 under the AccessKey secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import quote

from enrich.errors import InputError
from enrich.types import utc_timestamp

__all__ = [
    "ACTION",
    "ALGORITHM",
    "API_VERSION",
    "EMPTY_SHA256",
    "USER_AGENT",
    "Credentials",
    "CredentialsProvider",
    "SignedRequest",
    "acs3_signature",
    "canonical_query",
    "canonical_request",
    "credentials_from_env",
    "new_nonce",
    "sign_request",
    "utc_timestamp",
    "v1_signature",
]

ALGORITHM = "ACS3-HMAC-SHA256"
ACTION = "QueryPhoneBusinessProfile"
API_VERSION = "2020-06-06"
USER_AGENT = "cams-enrich/0.1 (aiohttp)"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()

_SAFE = "-_.~"


@dataclass(frozen=True, slots=True)
class Credentials:
    """An AccessKey pair, optionally with an STS security token. ``repr`` hides the secret."""

    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)


class CredentialsProvider(Protocol):
    """Where a client gets each attempt's credentials (``enrich.credentials.CredentialSource``).

    ``get`` is asked before every attempt and is cheap while the cached credentials
    stay valid. ``refresh(stale)`` is called after the service declared ``stale``
    expired: it fetches anew (once for any number of callers holding the same stale
    credentials) and says whether the credentials now differ from ``stale``.
    """

    async def get(self) -> Credentials:
        """Credentials valid for a request leaving now."""
        ...

    async def refresh(self, stale: Credentials | None = None) -> bool:
        """Fetch anew unless someone already replaced ``stale``; True if they differ now."""
        ...


def credentials_from_env(environ: Mapping[str, str] | None = None) -> Credentials:
    """Read ``ALIBABA_CLOUD_ACCESS_KEY_ID`` / ``_SECRET`` (and ``_SECURITY_TOKEN``).

    Raises InputError naming the missing variables; values are never echoed.
    """
    env = os.environ if environ is None else environ
    ak = env.get("ALIBABA_CLOUD_ACCESS_KEY_ID", "").strip()
    secret = env.get("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "").strip()
    token = env.get("ALIBABA_CLOUD_SECURITY_TOKEN", "").strip() or None
    missing = [
        name
        for name, value in (
            ("ALIBABA_CLOUD_ACCESS_KEY_ID", ak),
            ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", secret),
        )
        if not value
    ]
    if missing:
        raise InputError(
            f"missing credentials: set {' and '.join(missing)} in the environment "
            "(or use --mock to try the local emulator)"
        )
    return Credentials(ak, secret, token)


def _encode(value: str) -> str:
    return quote(value, safe=_SAFE, encoding="utf-8")


def canonical_query(params: Mapping[str, str]) -> str:
    """Sorted ``name=value`` pairs, values percent-encoded as the SDK does."""
    return "&".join(f"{_encode(k)}={_encode(v)}" for k, v in sorted(params.items()))


def canonical_request(
    *,
    method: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    payload_hash: str,
) -> tuple[str, str]:
    """Return (canonical request, SignedHeaders list) for the given signed headers."""
    lowered = {k.lower(): v.strip() for k, v in headers.items()}
    names = sorted(lowered)
    block = "".join(f"{n}:{lowered[n]}\n" for n in names)
    signed = ";".join(names)
    text = f"{method}\n{path}\n{canonical_query(query)}\n{block}\n{signed}\n{payload_hash}"
    return text, signed


def new_nonce() -> str:
    """32 lower-hex characters from the OS random source."""
    return os.urandom(16).hex()


def acs3_signature(secret: str, canonical: str) -> str:
    """Hex HMAC-SHA256 of ``ACS3-HMAC-SHA256\\n`` + hex SHA-256 of the canonical request."""
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    string_to_sign = f"{ALGORITHM}\n{digest}"
    return hmac.new(
        secret.encode("utf-8"), string_to_sign.encode("utf-8"), hashlib.sha256
    ).hexdigest()


def v1_signature(secret: str, params: Mapping[str, str], *, method: str = "POST") -> str:
    """The older RPC (V1, HMAC-SHA1) signature over the query parameters."""
    string_to_sign = f"{method}&{_encode('/')}&{_encode(canonical_query(params))}"
    mac = hmac.new(f"{secret}&".encode(), string_to_sign.encode("utf-8"), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode("ascii")


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """What goes on the wire: the query parameters and every header, Authorization included."""

    query: dict[str, str]
    headers: dict[str, str]


def sign_request(
    credentials: Credentials,
    *,
    host: str,
    query: Mapping[str, str],
    now: float,
    nonce: str,
    method: str = "POST",
    action: str = ACTION,
    version: str = API_VERSION,
    user_agent: str = USER_AGENT,
    extra_headers: Mapping[str, str] | None = None,
) -> SignedRequest:
    """Sign one request; every header returned (but Authorization) is signed."""
    headers: dict[str, str] = {
        "host": host,
        "x-acs-version": version,
        "x-acs-action": action,
        "user-agent": user_agent,
        "x-acs-date": utc_timestamp(now),
        "x-acs-signature-nonce": nonce,
        "accept": "application/json",
        "x-acs-content-sha256": EMPTY_SHA256,
        "x-acs-credentials-provider": "static_sts" if credentials.security_token else "static_ak",
    }
    if credentials.security_token:
        headers["x-acs-accesskey-id"] = credentials.access_key_id
        headers["x-acs-security-token"] = credentials.security_token
    if extra_headers:
        headers.update({k.lower(): v for k, v in extra_headers.items()})
    text, signed = canonical_request(
        method=method, path="/", query=query, headers=headers, payload_hash=EMPTY_SHA256
    )
    signature = acs3_signature(credentials.access_key_secret, text)
    headers["Authorization"] = (
        f"{ALGORITHM} Credential={credentials.access_key_id},"
        f"SignedHeaders={signed},Signature={signature}"
    )
    return SignedRequest(query=dict(query), headers=headers)
