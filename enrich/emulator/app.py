"""The aiohttp application that plays CAMS: authentication, limit, magic inputs, faults."""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Final

from aiohttp import web

from enrich.emulator.auth import (
    AuthError,
    NonceStore,
    decode_query,
    header_map,
    peek_access_key_id,
    verify,
)
from enrich.emulator.codes import error_spec, missing_parameter_message
from enrich.emulator.config import ALL_FAULTS, EmulatorConfig
from enrich.emulator.profiles import data_json
from enrich.emulator.stats import EmulatorStats
from enrich.emulator.sts import CREDENTIALS_PATH, StsIssuer

__all__ = ["STATS_KEY", "THROTTLE_RETRY_AFTER_MS", "make_app"]

#: ``x-acs-retry-after`` (milliseconds) sent with the ``throttle`` fault.
THROTTLE_RETRY_AFTER_MS: Final = 200

JSON_TYPE: Final = "application/json;charset=utf-8"
XML_TYPE: Final = "text/xml;charset=utf-8"
HTML_TYPE: Final = "text/html"

_GATEWAY_HTML: Final = (
    b"<html>\r\n<head><title>500 Internal Server Error</title></head>\r\n<body>\r\n"
    b"<center><h1>500 Internal Server Error</h1></center>\r\n<hr><center>Tengine</center>\r\n"
    b"</body>\r\n</html>\r\n"
)
_GARBAGE: Final = b"\x00\xff\xfe<<not json>>\x8f\x9c\r\n\x1b[31m\xc3\x28 garbage }{ \x00"


@dataclass(frozen=True, slots=True)
class _Answer:
    """What to send: an API code with its body, or a fault."""

    status: int
    body: bytes
    content_type: str
    code: str  # the API code, or "fault:<kind>" when the body carries none
    key: tuple[str, str] | None = None
    retry_after_ms: int | None = None
    drop: bool = False
    hang: bool = False


class _Limiter:
    """Admitted requests per AccessKeyId in a sliding window (event-loop only)."""

    def __init__(self, rate: float) -> None:
        if rate >= 1:
            self._capacity, self._window = int(rate), 1.0
        elif rate > 0:
            self._capacity, self._window = 1, 1.0 / rate
        else:
            self._capacity, self._window = 0, 0.0
        self._admitted: dict[str, deque[float]] = {}

    def admit(self, access_key_id: str, moment: float) -> bool:
        if self._capacity == 0:
            return True
        times = self._admitted.setdefault(access_key_id, deque())
        while times and moment - times[0] >= self._window:
            times.popleft()
        if len(times) >= self._capacity:
            return False
        times.append(moment)
        return True


def _request_id() -> str:
    return str(uuid.uuid4()).upper()


class _Emulator:
    """The state behind one app: config, stats, nonces, limiter, RNGs."""

    def __init__(self, config: EmulatorConfig, stats: EmulatorStats) -> None:
        self.config = config
        self.stats = stats
        self.nonces = NonceStore()
        self.limiter = _Limiter(config.rate_limit)
        self.fault_rng = random.Random(config.seed)
        self.jitter_rng = random.Random(f"jitter:{config.seed}")
        self.stopping = asyncio.Event()
        self.sts = StsIssuer(
            lifetime_s=config.sts_lifetime_s,
            account=next(iter(config.keys)),
            clock=config.clock,
        )

    # -- bodies --------------------------------------------------------------

    def error(
        self,
        code: str,
        *,
        request_id: str,
        host: str,
        phone: str | None,
        message: str | None = None,
        status: int | None = None,
    ) -> _Answer:
        spec = error_spec(code)
        text = spec.message if message is None else message
        body: dict[str, str]
        # A deterministic share of errors (PhoneNumber ending in 7) uses the
        # lower-case keys some Alibaba Cloud gateways send.
        if phone is not None and phone.endswith("7"):
            body = {"requestId": request_id, "code": code, "message": text}
        else:
            body = {
                "RequestId": request_id,
                "HostId": host,
                "Code": code,
                "Message": text,
                "Recommend": (
                    f"https://api.aliyun.com/troubleshoot?q={code}&product=cams"
                    f"&requestId={request_id}"
                ),
            }
        return _Answer(
            status=spec.status if status is None else status,
            body=json.dumps(body, ensure_ascii=False).encode("utf-8"),
            content_type=JSON_TYPE,
            code=code,
        )

    @staticmethod
    def success(request_id: str, key: tuple[str, str]) -> _Answer:
        body = (
            f'{{"RequestId":"{request_id}","Code":"OK","Message":"None","Success":true,'
            f'"Data":{data_json(key[1])}}}'
        )
        return _Answer(
            status=200, body=body.encode("utf-8"), content_type=JSON_TYPE, code="OK", key=key
        )

    def fault(self, kind: str, *, request_id: str, host: str, key: tuple[str, str]) -> _Answer:
        self.stats.record_fault(kind)
        phone = key[1]
        if kind == "http500_html":
            return _Answer(500, _GATEWAY_HTML, HTML_TYPE, "fault:http500_html")
        if kind == "http503_json":
            return self.error("ServiceUnavailable", request_id=request_id, host=host, phone=phone)
        if kind == "http429":
            return self.error("Throttling.User", request_id=request_id, host=host, phone=phone)
        if kind == "throttle":
            answer = self.error(
                "System.LimitControl", request_id=request_id, host=host, phone=phone
            )
            return _Answer(
                answer.status,
                answer.body,
                answer.content_type,
                answer.code,
                retry_after_ms=THROTTLE_RETRY_AFTER_MS,
            )
        if kind == "truncated_json":
            whole = self.success(request_id, key).body
            return _Answer(200, whole[: len(whole) // 2], JSON_TYPE, "fault:truncated_json")
        if kind == "garbage":
            return _Answer(200, _GARBAGE, JSON_TYPE, "fault:garbage")
        if kind == "code_not_ok":
            spec = error_spec("InternalError")
            body = {
                "RequestId": request_id,
                "Code": "InternalError",
                "Message": spec.message,
                "Success": False,
            }
            return _Answer(200, json.dumps(body).encode("utf-8"), JSON_TYPE, "InternalError")
        if kind == "xml_error":
            spec = error_spec("ServiceUnavailable")
            xml = (
                "<?xml version='1.0' encoding='UTF-8'?><Error>"
                f"<RequestId>{request_id}</RequestId><HostId>{_xml_escape(host)}</HostId>"
                f"<Code>ServiceUnavailable</Code><Message>{spec.message}</Message>"
                "<Recommend>https://api.aliyun.com/troubleshoot?q=ServiceUnavailable"
                f"&amp;product=cams&amp;requestId={request_id}</Recommend></Error>"
            )
            return _Answer(503, xml.encode("utf-8"), XML_TYPE, "ServiceUnavailable")
        if kind == "drop":
            return _Answer(0, b"", JSON_TYPE, "fault:drop", drop=True)
        if kind == "hang":
            return _Answer(200, b"", JSON_TYPE, "fault:hang", key=key, hang=True)
        raise ValueError(f"unknown fault kind {kind!r}")  # pragma: no cover - checked earlier

    # -- the decision -----------------------------------------------------------

    def decide(
        self,
        *,
        method: str,
        params: list[tuple[str, str]],
        headers: dict[str, list[str]],
        body: bytes,
        host: str,
        moment: float,
        request_id: str,
    ) -> _Answer:
        values = dict(params)
        phone = values.get("PhoneNumber") or None
        cust = values.get("CustSpaceId") or None
        self.stats.record_arrival(moment, peek_access_key_id(params, headers))

        def err(code: str, message: str | None = None) -> _Answer:
            return self.error(code, request_id=request_id, host=host, phone=phone, message=message)

        try:
            who = verify(
                method=method,
                params=params,
                headers=headers,
                body=body,
                keys=self.config.keys,
                now=self.config.clock(),
                sts=self.sts.get,
            )
        except AuthError as exc:
            return err(exc.code, exc.message)
        if not self.nonces.check_and_add(who.access_key_id, who.nonce, now=moment):
            return err("SignatureNonceUsed")
        minted = self.sts.get(who.access_key_id)
        account = who.access_key_id if minted is None else minted.account
        if not self.limiter.admit(account, moment):
            return err("System.LimitControl")
        if self.config.force_code is not None:
            return err(self.config.force_code)
        if cust is None:
            return err("MissingParameter", missing_parameter_message("CustSpaceId"))
        if phone is None:
            return err("MissingParameter", missing_parameter_message("PhoneNumber"))
        key = (cust, phone)
        attempt = self.stats.next_attempt(key)
        if cust.startswith("foreign"):
            return err("Unknown.ResourceOwnerId")
        if cust.startswith("err-"):
            return err(cust[4:])
        if cust.startswith("fault-"):
            kind, _, count = cust[6:].rpartition("-")
            if kind not in ALL_FAULTS or not count.isdigit():
                return err(
                    "InvalidParameter",
                    f"Emulator: CustSpaceId {cust!r} is not fault-<kind>-<n>; "
                    f"kinds: {', '.join(ALL_FAULTS)}.",
                )
            if attempt <= int(count):
                return self.fault(kind, request_id=request_id, host=host, key=key)
            return self.success(request_id, key)
        rate = self.config.fault_rate
        if rate > 0 and self.fault_rng.random() < rate:
            kind = self.config.faults[self.fault_rng.randrange(len(self.config.faults))]
            return self.fault(kind, request_id=request_id, host=host, key=key)
        return self.success(request_id, key)

    def delay(self) -> float:
        jitter = self.config.jitter_s
        base = self.config.latency_s
        if jitter > 0:
            base += self.jitter_rng.uniform(-jitter, jitter)
        return max(0.0, base)

    async def wait_or_stop(self, seconds: float) -> bool:
        """Sleep ``seconds``; ``True`` if the server began shutting down meanwhile."""
        if self.stopping.is_set():
            return True
        try:
            await asyncio.wait_for(self.stopping.wait(), seconds)
        except TimeoutError:
            return False
        return True


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


#: Where :func:`make_app` keeps the app's :class:`EmulatorStats`.
STATS_KEY: Final = web.AppKey("cams_emulator_stats", EmulatorStats)
_STATE_KEY: Final = web.AppKey("cams_emulator_state", _Emulator)


def _response(answer: _Answer, request_id: str) -> web.Response:
    headers = {"Content-Type": answer.content_type, "x-acs-request-id": request_id}
    if answer.retry_after_ms is not None:
        headers["x-acs-retry-after"] = str(answer.retry_after_ms)
    return web.Response(status=answer.status, body=answer.body, headers=headers)


def _drop(request: web.Request) -> web.Response:
    transport = request.transport
    if transport is not None:
        transport.close()
    # Writing to the closed transport fails quietly inside aiohttp ("premature
    # client disconnection"): the client sees the connection closed, no answer.
    return web.Response(status=500)


async def _api(request: web.Request) -> web.StreamResponse:
    state = request.app[_STATE_KEY]
    moment = time.monotonic()
    request_id = _request_id()
    params = decode_query(request.raw_path.partition("?")[2])
    body = await request.read() if request.body_exists else b""
    if body and request.content_type == "application/x-www-form-urlencoded":
        params += decode_query(body.decode("utf-8", "replace"))
    answer = state.decide(
        method=request.method,
        params=params,
        headers=header_map(request.headers.items()),
        body=body,
        host=request.host,
        moment=moment,
        request_id=request_id,
    )
    if answer.hang:
        if await state.wait_or_stop(state.config.hang_s):
            state.stats.record_answer(answer.code)
            return _drop(request)
        assert answer.key is not None
        answer = state.success(request_id, answer.key)
    else:
        pause = state.delay()
        if pause > 0:
            await state.wait_or_stop(pause)
    state.stats.record_answer(answer.code, answer.key)
    if answer.drop:
        return _drop(request)
    return _response(answer, request_id)


_CREDENTIAL_FAULTS: Final = ("garbage", "error", "http500", "incomplete", "hang", "revoked")


async def _credentials(request: web.Request) -> web.StreamResponse:
    """A credentials URI (``ALIBABA_CLOUD_CREDENTIALS_URI``): see :mod:`enrich.emulator.sts`."""
    state = request.app[_STATE_KEY]
    fault = request.query.get("fault", "")
    kind, _, count = fault.partition("-")
    if fault and (kind not in _CREDENTIAL_FAULTS or (count and not count.isdigit())):
        return web.json_response(
            {"Code": "InvalidParameter", "Message": f"Emulator: unknown fault {fault!r}; "
             f"kinds: {', '.join(_CREDENTIAL_FAULTS)} (revoked-<n> too)"},
            status=400,
        )
    try:
        lifetime = float(request.query["lifetime"]) if "lifetime" in request.query else None
    except ValueError:
        lifetime = None
    state.stats.record_credentials(fault or "ok")
    if kind == "hang":
        await state.wait_or_stop(state.config.hang_s)
        return _drop(request)
    if kind == "garbage":
        return web.Response(status=200, body=_GARBAGE, content_type="application/json")
    if kind == "http500":
        return web.Response(status=500, body=_GATEWAY_HTML, content_type="text/html")
    if kind == "error":
        return web.json_response({"Code": "Failed", "Message": "Emulator: no credentials"})
    revoked = kind == "revoked" and (not count or state.sts.served(fault) <= int(count))
    body = state.sts.mint(lifetime_s=lifetime, revoked=revoked).to_json()
    if kind == "incomplete":
        del body["SecurityToken"]
    return web.json_response(body)


async def _stats(request: web.Request) -> web.Response:
    with_arrivals = request.query.get("arrivals", "1") not in ("0", "false", "no")
    return web.json_response(request.app[STATS_KEY].to_json(arrivals=with_arrivals))


async def _reset(request: web.Request) -> web.Response:
    request.app[STATS_KEY].reset()
    return web.json_response({"reset": True})


async def _on_shutdown(app: web.Application) -> None:
    app[_STATE_KEY].stopping.set()


def make_app(config: EmulatorConfig, *, stats: EmulatorStats | None = None) -> web.Application:
    """The emulator as an aiohttp application.

    Routes: ``POST /`` (the API; ``GET /`` too, which V1 callers may sign),
    ``GET /credentials`` (a credentials URI minting STS keys, :mod:`enrich.emulator.sts`),
    ``GET /_emulator/stats`` (JSON snapshot of :class:`EmulatorStats`;
    ``?arrivals=0`` leaves the arrival list out) and
    ``POST /_emulator/reset``. The stats object is ``app[STATS_KEY]`` (pass
    ``stats`` to share one). On shutdown, hanging requests are released at
    once (their connections are closed unanswered).
    """
    app = web.Application()
    app[STATS_KEY] = stats if stats is not None else EmulatorStats()
    app[_STATE_KEY] = _Emulator(config, app[STATS_KEY])
    app.router.add_post("/", _api)
    app.router.add_get("/", _api, allow_head=False)  # V1 callers may sign a GET
    app.router.add_get(CREDENTIALS_PATH, _credentials)
    app.router.add_get("/_emulator/stats", _stats)
    app.router.add_post("/_emulator/reset", _reset)
    app.on_shutdown.append(_on_shutdown)
    return app
