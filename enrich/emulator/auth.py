"""Request authentication as the real gateway does it: ACS3-HMAC-SHA256 and V1 HMAC-SHA1.

Written from ``api/sdk-notes.md`` and the captured requests, deliberately
without ``enrich.signing``: the client's signer and this verifier are two
readings of the same spec, so one shared mistake cannot hide.

Everything here is pure (the clock is a parameter), except :class:`NonceStore`.
"""

from __future__ import annotations

import base64
import calendar
import hashlib
import hmac
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal
from urllib.parse import unquote_plus

from enrich.emulator.codes import error_spec, missing_parameter_message
from enrich.emulator.sts import StsCredential

__all__ = [
    "ACTION",
    "MAX_CLOCK_SKEW_S",
    "VERSION",
    "AuthError",
    "Authenticated",
    "NonceStore",
    "StsLookup",
    "acs3_canonical_request",
    "decode_query",
    "header_map",
    "parse_timestamp",
    "peek_access_key_id",
    "percent_encode",
    "v1_string_to_sign",
    "verify",
]

ACTION: Final = "QueryPhoneBusinessProfile"
VERSION: Final = "2020-06-06"
#: A request whose date is further than this from "now" is refused.
MAX_CLOCK_SKEW_S: Final = 15 * 60

ACS3: Final = "ACS3-HMAC-SHA256"
V1: Final = "V1-HMAC-SHA1"
EMPTY_SHA256: Final = hashlib.sha256(b"").hexdigest()

_UNRESERVED_RE: Final = re.compile(r"[A-Za-z0-9\-_.~]*")
_UNRESERVED: Final = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~"
)
_TIMESTAMP_RE: Final = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z")
#: The STS keys the emulator minted: AccessKeyId → its credential, or None.
StsLookup = Callable[[str], StsCredential | None]
#: Headers that must be present in an ACS3 request (and signed).
_ACS3_REQUIRED: Final = ("x-acs-date", "x-acs-signature-nonce", "x-acs-content-sha256")


class AuthError(Exception):
    """A request the gateway refuses; ``code`` and ``status`` are what it answers."""

    def __init__(self, code: str, message: str | None = None) -> None:
        spec = error_spec(code)
        self.code = code
        self.status = spec.status
        self.message = message if message is not None else spec.message
        super().__init__(f"{code}: {self.message}")


@dataclass(frozen=True, slots=True)
class Authenticated:
    """Who sent a request that passed authentication, and its one-time nonce."""

    scheme: Literal["ACS3-HMAC-SHA256", "V1-HMAC-SHA1"]
    access_key_id: str
    nonce: str
    security_token: str | None


def percent_encode(value: str) -> str:
    """RFC 3986 encoding of ``value``'s UTF-8 bytes: only ``A-Za-z0-9-_.~`` stay bare."""
    if _UNRESERVED_RE.fullmatch(value):
        return value
    return "".join(
        chr(byte) if byte in _UNRESERVED else f"%{byte:02X}" for byte in value.encode("utf-8")
    )


def decode_query(raw: str) -> list[tuple[str, str]]:
    """Decode a form-encoded query (``+`` is a space, any escape allowed) into pairs, in order."""
    pairs: list[tuple[str, str]] = []
    if not raw:
        return pairs
    for part in raw.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        pairs.append((unquote_plus(name), unquote_plus(value)))
    return pairs


def header_map(items: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """Lower-cased header name → its values in arrival order."""
    headers: dict[str, list[str]] = {}
    for name, value in items:
        headers.setdefault(name.lower(), []).append(value)
    return headers


def parse_timestamp(value: str) -> float:
    """Unix seconds of a ``YYYY-MM-DDTHH:MM:SSZ`` UTC stamp; ``InvalidTimeStamp.Format`` else."""
    match = _TIMESTAMP_RE.fullmatch(value)
    if match is None:
        raise AuthError("InvalidTimeStamp.Format")
    year, month, day, hour, minute, second = (int(group) for group in match.groups())
    try:
        return float(calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)))
    except (ValueError, OverflowError):  # pragma: no cover - timegm is lenient
        raise AuthError("InvalidTimeStamp.Format") from None


def _check_fresh(stamp: str, now: float) -> None:
    if abs(now - parse_timestamp(stamp)) > MAX_CLOCK_SKEW_S:
        raise AuthError("InvalidTimeStamp.Expired")


def _first(params: Sequence[tuple[str, str]], name: str) -> str | None:
    for key, value in params:
        if key == name:
            return value
    return None


def _acs3_fields(authorization: str) -> tuple[str, str, str]:
    algorithm, _, rest = authorization.strip().partition(" ")
    if algorithm != ACS3:
        raise AuthError(
            "IncompleteSignature",
            f"The signature algorithm {algorithm!r} is not supported; use {ACS3}.",
        )
    fields: dict[str, str] = {}
    for item in rest.split(","):
        name, sep, value = item.strip().partition("=")
        if sep:
            fields[name] = value.strip()
    credential = fields.get("Credential", "")
    signed = fields.get("SignedHeaders", "")
    signature = fields.get("Signature", "")
    if not (credential and signed and signature):
        raise AuthError(
            "IncompleteSignature",
            "The Authorization header needs Credential, SignedHeaders and Signature.",
        )
    return credential, signed, signature


def peek_access_key_id(params: Sequence[tuple[str, str]], headers: Mapping[str, list[str]]) -> str:
    """The AccessKeyId a request claims (not yet verified), or ``""`` when it names none."""
    authorization = headers.get("authorization")
    if authorization:
        for item in authorization[0].partition(" ")[2].split(","):
            name, _, value = item.strip().partition("=")
            if name == "Credential":
                return value.strip()
        return ""
    return _first(params, "AccessKeyId") or ""


def acs3_canonical_request(
    *,
    method: str,
    params: Sequence[tuple[str, str]],
    headers: Mapping[str, list[str]],
    signed_headers: Sequence[str],
    payload_hash: str,
) -> str:
    """The ACS3 canonical request (sdk-notes.md steps 1–3) of decoded ``params``."""
    query = "&".join(f"{name}={percent_encode(value)}" for name, value in sorted(params))
    header_block = "".join(
        f"{name}:{','.join(sorted(v.strip() for v in headers.get(name, [''])))}\n"
        for name in signed_headers
    )
    return f"{method}\n/\n{query}\n{header_block}\n{';'.join(signed_headers)}\n{payload_hash}"


def v1_string_to_sign(method: str, params: Sequence[tuple[str, str]]) -> str:
    """The V1 string to sign: every parameter but ``Signature``, sorted and encoded twice."""
    canonical = "&".join(
        f"{percent_encode(name)}={percent_encode(value)}"
        for name, value in sorted(params)
        if name != "Signature"
    )
    return f"{method}&{percent_encode('/')}&{percent_encode(canonical)}"


def _check_token(token: str | None) -> None:
    # Magic tokens let tests drive the STS failures the error tree knows about.
    if token is None:
        return
    if not token or token.startswith("malformed"):
        raise AuthError("InvalidSecurityToken.Malformed")
    if token.startswith("expired"):
        raise AuthError("InvalidSecurityToken.Expired")


def _check_minted(minted: StsCredential, token: str | None, now: float) -> None:
    """A minted key needs its own token, and is refused once that has expired."""
    if token is None or not hmac.compare_digest(token, minted.token):
        raise AuthError("InvalidSecurityToken.MismatchWithAccessKey")
    if now >= minted.expires_at:
        raise AuthError("InvalidSecurityToken.Expired")


def _secret_of(
    access_key_id: str, keys: Mapping[str, str], sts: StsLookup | None
) -> tuple[str, StsCredential | None]:
    secret = keys.get(access_key_id)
    if secret is not None:
        return secret, None
    minted = sts(access_key_id) if sts is not None else None
    if minted is None:
        raise AuthError("InvalidAccessKeyId.NotFound")
    return minted.secret, minted


def _check_api(action: str | None, version: str | None) -> None:
    if action != ACTION:
        raise AuthError(
            "InvalidAction.NotFound",
            f"Specified api is not found, please check your url and method. (action {action!r})",
        )
    if version != VERSION:
        raise AuthError("InvalidVersion", f"Specified parameter Version {version!r} is not valid.")


def _verify_acs3(
    method: str,
    params: Sequence[tuple[str, str]],
    headers: Mapping[str, list[str]],
    body: bytes,
    keys: Mapping[str, str],
    now: float,
    sts: StsLookup | None = None,
) -> Authenticated:
    credential, signed_list, signature = _acs3_fields(headers["authorization"][0])
    secret, minted = _secret_of(credential, keys, sts)
    signed = [name.strip().lower() for name in signed_list.split(";") if name.strip()]
    signed_set = set(signed)
    for name in _ACS3_REQUIRED:
        if name not in headers:
            raise AuthError("MissingParameter", missing_parameter_message(name))
    unsigned = sorted(
        name
        for name in headers
        if (name.startswith("x-acs-") or name == "host") and name not in signed_set
    )
    if unsigned:
        raise AuthError(
            "IncompleteSignature",
            f"The request signature does not conform to Aliyun standards: "
            f"header(s) {', '.join(unsigned)} must be signed.",
        )
    _check_fresh(headers["x-acs-date"][0].strip(), now)
    payload_hash = headers["x-acs-content-sha256"][0].strip()
    if payload_hash.lower() != hashlib.sha256(body).hexdigest():
        raise AuthError(
            "SignatureDoesNotMatch",
            "Specified signature does not match our calculation: "
            "x-acs-content-sha256 is not the SHA-256 of the body.",
        )
    canonical = acs3_canonical_request(
        method=method,
        params=params,
        headers=headers,
        signed_headers=sorted(signed_set),
        payload_hash=payload_hash,
    )
    string_to_sign = f"{ACS3}\n{hashlib.sha256(canonical.encode('utf-8')).hexdigest()}"
    expected = hmac.new(
        secret.encode("utf-8"), string_to_sign.encode("utf-8"), hashlib.sha256
    ).hexdigest()
    if not hmac.compare_digest(expected, signature.lower()):
        raise AuthError(
            "SignatureDoesNotMatch",
            "Specified signature does not match our calculation. server string to sign is:"
            + string_to_sign,
        )
    claimed = headers.get("x-acs-accesskey-id")
    if claimed is not None and claimed[0].strip() != credential:
        raise AuthError(
            "IncompleteSignature", "x-acs-accesskey-id differs from the Credential's AccessKeyId."
        )
    token = headers.get("x-acs-security-token")
    token_value = None if token is None else token[0].strip()
    if minted is None:
        _check_token(token_value)
    else:
        _check_minted(minted, token_value, now)
    _check_api(_single(headers, "x-acs-action"), _single(headers, "x-acs-version"))
    return Authenticated(
        scheme=ACS3,
        access_key_id=credential,
        nonce=headers["x-acs-signature-nonce"][0].strip(),
        security_token=None if token is None else token[0].strip(),
    )


def _single(headers: Mapping[str, list[str]], name: str) -> str | None:
    values = headers.get(name)
    return None if values is None else values[0].strip()


def _verify_v1(
    method: str,
    params: Sequence[tuple[str, str]],
    keys: Mapping[str, str],
    now: float,
    sts: StsLookup | None = None,
) -> Authenticated:
    values = dict(params)
    for name in ("AccessKeyId", "Signature", "SignatureNonce", "Timestamp"):
        if not values.get(name):
            raise AuthError("MissingParameter", missing_parameter_message(name))
    access_key_id = values["AccessKeyId"]
    secret, minted = _secret_of(access_key_id, keys, sts)
    if values.get("SignatureMethod") != "HMAC-SHA1" or values.get("SignatureVersion") != "1.0":
        raise AuthError(
            "IncompleteSignature",
            "V1 signatures need SignatureMethod=HMAC-SHA1, SignatureVersion=1.0.",
        )
    _check_fresh(values["Timestamp"], now)
    string_to_sign = v1_string_to_sign(method, params)
    expected = base64.b64encode(
        hmac.new(
            (secret + "&").encode("utf-8"), string_to_sign.encode("utf-8"), hashlib.sha1
        ).digest()
    ).decode("ascii")
    # Base64 has no space: a bare "+" sent unescaped arrives as one.
    if not hmac.compare_digest(expected, values["Signature"].replace(" ", "+")):
        raise AuthError(
            "SignatureDoesNotMatch",
            "Specified signature does not match our calculation. server string to sign is:"
            + string_to_sign,
        )
    token = values.get("SecurityToken")
    if minted is None:
        _check_token(token)
    else:
        _check_minted(minted, token, now)
    _check_api(values.get("Action"), values.get("Version"))
    return Authenticated(
        scheme=V1,
        access_key_id=access_key_id,
        nonce=values["SignatureNonce"],
        security_token=token,
    )


def verify(
    *,
    method: str,
    params: Sequence[tuple[str, str]],
    headers: Mapping[str, list[str]],
    body: bytes,
    keys: Mapping[str, str],
    now: float,
    sts: StsLookup | None = None,
) -> Authenticated:
    """Authenticate one request or raise :class:`AuthError` with the gateway's code.

    ``params`` are the decoded query (plus form body) pairs, ``headers`` a
    :func:`header_map`, ``now`` Unix seconds. An ``Authorization`` header means
    ACS3-HMAC-SHA256; else a ``Signature`` parameter means V1 (HMAC-SHA1).
    Checks, in order: the credential names a known key, the date is within
    15 minutes of ``now``, the signature, the STS token, the action and
    version. The nonce is the caller's to check (it needs memory). ``sts``
    looks up the STS keys the emulator minted: such a key must come with its
    own token, and is answered ``InvalidSecurityToken.Expired`` once that expired.
    """
    if "authorization" in headers:
        return _verify_acs3(method, params, headers, body, keys, now, sts)
    if _first(params, "Signature") is not None or _first(params, "AccessKeyId") is not None:
        return _verify_v1(method, params, keys, now, sts)
    raise AuthError("MissingParameter", missing_parameter_message("AccessKeyId"))


class NonceStore:
    """Nonces seen per AccessKeyId, each remembered for ``ttl_s``; at most ``max_per_key``.

    The default TTL (31 minutes) outlives the ±15-minute date window on both
    sides, so a replay is caught for as long as its date would be accepted.
    When a key exceeds ``max_per_key`` its oldest nonces are forgotten first.
    Not thread-safe: use it from the event loop only.
    """

    def __init__(self, *, ttl_s: float = 31 * 60, max_per_key: int = 500_000) -> None:
        self._ttl = ttl_s
        self._max = max_per_key
        self._seen: dict[str, dict[str, float]] = {}
        self._order: dict[str, deque[tuple[float, str]]] = {}

    def check_and_add(self, access_key_id: str, nonce: str, *, now: float | None = None) -> bool:
        """Remember ``nonce``; ``False`` if it was already seen for this key (a replay)."""
        moment = time.monotonic() if now is None else now
        seen = self._seen.setdefault(access_key_id, {})
        order = self._order.setdefault(access_key_id, deque())
        while order and (order[0][0] <= moment or len(order) > self._max):
            _, old = order.popleft()
            seen.pop(old, None)
        if nonce in seen:
            return False
        expiry = moment + self._ttl
        seen[nonce] = expiry
        order.append((expiry, nonce))
        if len(order) > self._max:
            _, old = order.popleft()
            seen.pop(old, None)
        return True

    def __len__(self) -> int:
        return sum(len(seen) for seen in self._seen.values())
