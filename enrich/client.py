"""One signed call to QueryPhoneBusinessProfile → an ``Answer`` or a ``CallError``.

This is the only module that sees aiohttp and asyncio exceptions; they are
translated into ``CallError`` here (``_translate``), once. Body parsing is a
pure function (``parse_response``) so it can be tested on arbitrary bytes.
"""

from __future__ import annotations

import email.utils
import json
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NoReturn

import aiohttp
from yarl import URL

from enrich.endpoints import endpoint_for_region, is_loopback, validate_endpoint
from enrich.errors import CallError
from enrich.signing import (
    Credentials,
    CredentialsProvider,
    canonical_query,
    new_nonce,
    sign_request,
)
from enrich.types import Answer, Profile

__all__ = [
    "EXPIRED_TOKEN",
    "MAX_BODY_BYTES",
    "Answer",
    "CamsClient",
    "Profile",
    "endpoint_for_region",
    "is_loopback",
    "parse_response",
    "retry_after_seconds",
    "validate_endpoint",
]

#: A QueryPhoneBusinessProfile answer is a few KB; anything beyond this is refused unread.
MAX_BODY_BYTES = 1_000_000

#: The answer to a request signed with an STS token the service holds expired.
EXPIRED_TOKEN = "InvalidSecurityToken.Expired"

_PROFILE_FIELDS = (
    ("About", "about"),
    ("Address", "address"),
    ("Description", "description"),
    ("Vertical", "vertical"),
    ("Email", "email"),
    ("ProfilePictureUrl", "profile_picture_url"),
)


def _strip(value: object) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    text = text.strip()
    return text or None


def _get(data: Mapping[str, Any], name: str) -> Any:
    """A key in either case convention (``Code`` / ``code``)."""
    if name in data:
        return data[name]
    lower = name[:1].lower() + name[1:]
    return data.get(lower)


def _profile_from(data: object) -> Profile | None:
    """``Data`` → a ``Profile``; ``None`` only when ``Data`` is absent or null.

    A ``Data`` object whose fields are all empty once stripped is still a profile
    (an empty ``Profile()``, status ``ok``): the number has a business profile, an
    empty one. That is what the official SDK sees too (a ``Data`` model, not None).
    """
    if data is None:
        return None
    if not isinstance(data, Mapping):
        raise ValueError("Data is not an object")
    raw_sites = _get(data, "Websites")
    if raw_sites is None:
        sites: tuple[str, ...] = ()
    elif isinstance(raw_sites, str):
        sites = tuple(s for s in (_strip(raw_sites),) if s)
    elif isinstance(raw_sites, list):
        sites = tuple(s for s in (_strip(x) for x in raw_sites) if s)
    else:
        raise ValueError("Data.Websites is not a list")
    values = {attr: _strip(_get(data, key)) for key, attr in _PROFILE_FIELDS}
    return Profile(websites=sites, **values)


def retry_after_seconds(headers: Mapping[str, str], *, now: float) -> float | None:
    """``x-acs-retry-after`` (milliseconds) or ``Retry-After`` (seconds or HTTP date)."""
    acs = headers.get("x-acs-retry-after")
    if acs:
        try:
            ms = float(acs)
            if ms > 0:
                return ms / 1000.0
        except ValueError:
            pass
    std = headers.get("Retry-After")
    if std:
        try:
            secs = float(std)
            return secs if secs > 0 else None
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(std).timestamp()
            except (TypeError, ValueError, IndexError, OverflowError):
                return None
            return max(0.0, when - now) or None
    return None


def _snippet(body: bytes) -> str:
    text = body[:200].decode("utf-8", errors="replace")
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]*>", " ", text)).strip()
    return text[:120] or "(empty body)"


def _error_fields(body: bytes, content_type: str) -> tuple[str | None, str | None, str | None]:
    """(code, message, request_id) from a JSON or XML error body, or Nones."""
    stripped = body.strip()
    if stripped.startswith(b"{"):
        try:
            data = json.loads(stripped)
        except (ValueError, RecursionError):
            return None, None, None
        if isinstance(data, dict):
            code, msg, rid = _get(data, "Code"), _get(data, "Message"), _get(data, "RequestId")
            return (
                _strip(code) if isinstance(code, str) else None,
                _strip(msg) if isinstance(msg, str) else None,
                _strip(rid) if isinstance(rid, str) else None,
            )
        return None, None, None
    if stripped.startswith(b"<") and (
        "xml" in content_type or stripped.startswith(b"<?xml") or stripped.startswith(b"<Error")
    ):
        try:
            root = ET.fromstring(stripped)
        except (ET.ParseError, ValueError):
            return None, None, None

        def find(tag: str) -> str | None:
            el = root if root.tag == tag else root.find(f".//{tag}")
            return _strip(el.text) if el is not None and el.text else None

        return find("Code"), find("Message"), find("RequestId")
    return None, None, None


def parse_response(
    status: int,
    body: bytes,
    *,
    headers: Mapping[str, str] | None = None,
    now: float = 0.0,
) -> Answer:
    """An HTTP answer → ``Answer``, or ``CallError``; never raises anything else."""
    hdrs: Mapping[str, str] = headers or {}
    content_type = (hdrs.get("Content-Type") or "").lower()
    header_rid = hdrs.get("x-acs-request-id")
    retry_after = retry_after_seconds(hdrs, now=now)
    if not 200 <= status < 300:
        code, message, rid = _error_fields(body, content_type)
        rid = rid or header_rid
        if code:
            raise CallError(
                code, message or code, http_status=status, request_id=rid, retry_after_s=retry_after
            )
        raise CallError(
            f"Client.HTTP{status}",
            f"HTTP {status}: {_snippet(body)}",
            http_status=status,
            request_id=rid,
            retry_after_s=retry_after,
        )
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        what = "empty body" if not body.strip() else f"not JSON: {_snippet(body)}"
        raise CallError(
            "Client.BadResponse",
            f"unparseable answer ({what})",
            http_status=status,
            request_id=header_rid,
        ) from None
    if not isinstance(data, dict):
        raise CallError(
            "Client.BadResponse",
            "answer is not a JSON object",
            http_status=status,
            request_id=header_rid,
        )
    rid_value = _get(data, "RequestId")
    rid = _strip(rid_value) if isinstance(rid_value, str) else header_rid
    code_value = _get(data, "Code")
    code = _strip(code_value) if isinstance(code_value, str) else None
    if code is not None and code.upper() != "OK":
        msg = _get(data, "Message")
        text = _strip(msg) if isinstance(msg, str) else None
        raise CallError(
            code, text or code, http_status=status, request_id=rid, retry_after_s=retry_after
        )
    if code is None and not any(k in data for k in ("Data", "data")):
        raise CallError(
            "Client.BadResponse",
            "answer has neither Code nor Data",
            http_status=status,
            request_id=rid,
        )
    try:
        profile = _profile_from(_get(data, "Data"))
    except ValueError as exc:
        raise CallError(
            "Client.BadResponse", f"unexpected answer: {exc}", http_status=status, request_id=rid
        ) from None
    return Answer(profile=profile, request_id=rid, fetched_at=now)


Clock = Callable[[], float]


class _Static:
    """Fixed credentials: nothing to refresh."""

    def __init__(self, credentials: Credentials) -> None:
        self._credentials = credentials

    async def get(self) -> Credentials:
        return self._credentials

    async def refresh(self, stale: Credentials | None = None) -> bool:
        return False


class _Asked:
    """A coroutine function asked before every attempt; a refresh asks it once more."""

    def __init__(self, ask: Callable[[], Awaitable[Credentials]]) -> None:
        self._ask = ask

    async def get(self) -> Credentials:
        return await self._ask()

    async def refresh(self, stale: Credentials | None = None) -> bool:
        return (await self._ask()) != stale


CredentialsLike = Credentials | CredentialsProvider | Callable[[], Awaitable[Credentials]]


def _provider_of(credentials: CredentialsLike) -> CredentialsProvider:
    if isinstance(credentials, Credentials):
        return _Static(credentials)
    if callable(getattr(credentials, "get", None)) and callable(
        getattr(credentials, "refresh", None)
    ):
        return credentials  # type: ignore[return-value]
    if callable(credentials):
        return _Asked(credentials)
    raise TypeError(f"credentials: expected Credentials or a provider, got {type(credentials)}")


class CamsClient:
    """Signed QueryPhoneBusinessProfile calls over one aiohttp session (connection reuse).

    ``credentials`` is fixed ``Credentials``, a ``CredentialsProvider``
    (``enrich.credentials.CredentialSource``), or a coroutine function giving
    ``Credentials``: every attempt asks for credentials valid when it leaves.

    Seams: ``session`` (the transport), ``clock`` (wall time for x-acs-date),
    ``nonce`` (the signature nonce source), ``before_resend`` (awaited before
    the one request that follows an ``InvalidSecurityToken.Expired``: the runner
    takes a slot of its throttle there, so the pace counts it).
    """

    def __init__(
        self,
        *,
        endpoint: str | URL,
        credentials: CredentialsLike,
        timeout_s: float = 10.0,
        connect_timeout_s: float = 5.0,
        session: aiohttp.ClientSession | None = None,
        clock: Clock = time.time,
        nonce: Callable[[], str] = new_nonce,
        max_connections: int = 256,
        before_resend: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self._url = endpoint if isinstance(endpoint, URL) else validate_endpoint(endpoint)
        port = self._url.explicit_port
        host = self._url.raw_host or ""
        if ":" in host:
            host = f"[{host}]"
        self._host = f"{host}:{port}" if port else host
        self._credentials = _provider_of(credentials)
        self._before_resend = before_resend
        #: Requests sent again after ``InvalidSecurityToken.Expired`` (not in ``attempt``).
        self.resends = 0
        self._timeout = aiohttp.ClientTimeout(
            total=timeout_s, connect=min(connect_timeout_s, timeout_s)
        )
        self._clock = clock
        self._nonce = nonce
        self._own_session = session is None
        self._session = session
        self._max_connections = max_connections
        # TLS verification is always on, except for a loopback test server.
        self._ssl: bool = not is_loopback(self._url.host)

    async def __aenter__(self) -> CamsClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._max_connections, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=self._timeout, auto_decompress=True
            )
        return self._session

    async def close(self) -> None:
        """Close the session if this client opened it."""
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def query(self, cust_space_id: str, phone_number: str, *, attempt: int = 1) -> Answer:
        """One signed call (a fresh date and nonce each time); ``CallError`` on any failure.

        An ``InvalidSecurityToken.Expired`` answer is sent again once, at once,
        with freshly fetched credentials when the provider has others; a second
        one (or none to be had) is raised, and the retry policy holds it fatal.
        The provider's own errors (``credentials.CredentialsUnavailable``) pass through.
        """
        params = {"CustSpaceId": cust_space_id, "PhoneNumber": phone_number}
        credentials = await self._credentials.get()
        try:
            return await self._signed_call(params, credentials, attempt)
        except CallError as err:
            if err.code != EXPIRED_TOKEN or not credentials.security_token:
                raise
            if not await self._credentials.refresh(credentials):
                raise
        if self._before_resend is not None:
            await self._before_resend()
        self.resends += 1
        return await self._signed_call(params, await self._credentials.get(), attempt)

    async def _signed_call(
        self, params: dict[str, str], credentials: Credentials, attempt: int
    ) -> Answer:
        extra = {"x-acs-retry-attempts": str(attempt - 1)} if attempt > 1 else None
        signed = sign_request(
            credentials,
            host=self._host,
            query=params,
            now=self._clock(),
            nonce=self._nonce(),
            extra_headers=extra,
        )
        url = URL(f"{self._url}?{canonical_query(params)}", encoded=True)
        return await _translate(self._send(url, signed.headers))

    async def _send(self, url: URL, headers: dict[str, str]) -> Answer:
        session = self._get_session()
        async with session.post(
            url,
            headers=headers,
            ssl=self._ssl,
            allow_redirects=False,
            skip_auto_headers=("Content-Type",),
        ) as resp:
            declared = resp.content_length
            if declared is not None and declared > MAX_BODY_BYTES:
                _refuse_large(resp, f"answer of {declared} bytes")
            body = await _read_capped(resp.content, MAX_BODY_BYTES + 1)
            if len(body) > MAX_BODY_BYTES:
                _refuse_large(resp, f"answer larger than {MAX_BODY_BYTES} bytes")
            if declared is not None and len(body) < declared:
                raise CallError(
                    "Client.Connection",
                    "connection closed mid-answer (truncated body)",
                    http_status=resp.status,
                )
            return parse_response(resp.status, body, headers=resp.headers, now=self._clock())


def _refuse_large(resp: aiohttp.ClientResponse, what: str) -> NoReturn:
    """Drop the connection rather than read an oversized answer."""
    resp.close()
    raise CallError(
        "Client.BadResponse",
        f"{what} refused (limit {MAX_BODY_BYTES})",
        http_status=resp.status,
        request_id=resp.headers.get("x-acs-request-id"),
    )


async def _read_capped(stream: aiohttp.StreamReader, limit: int) -> bytes:
    """Read until EOF or ``limit`` bytes, whichever comes first."""
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await stream.read(limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


async def _translate(call: Awaitable[Answer]) -> Answer:
    """The one place aiohttp / asyncio exceptions become ``CallError``."""
    try:
        return await call
    except CallError:
        raise
    except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
        what = type(exc).__name__
        raise CallError("Client.Timeout", f"no answer within the timeout ({what})") from None
    except aiohttp.ClientPayloadError as exc:
        raise CallError("Client.Connection", f"truncated answer: {_one_line(exc)}") from None
    except aiohttp.ClientConnectorCertificateError as exc:
        msg = f"TLS certificate rejected: {_one_line(exc)}"
        raise CallError("Client.Connection", msg) from None
    except (aiohttp.ClientError, OSError) as exc:
        raise CallError("Client.Connection", f"{type(exc).__name__}: {_one_line(exc)}") from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__
