"""The CAMS emulator as a real server: signatures, limit, errors on demand, faults, profiles."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, urlencode

import aiohttp
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from yarl import URL

from enrich.emulator import (
    ALL_FAULTS,
    THROTTLE_RETRY_AFTER_MS,
    EmulatorConfig,
    EmulatorServer,
    data_on_wire,
    no_profile_form,
    profile_for,
)
from enrich.emulator.auth import (
    AuthError,
    NonceStore,
    acs3_canonical_request,
    decode_query,
    header_map,
    v1_string_to_sign,
    verify,
)
from enrich.emulator.command import emulator_command, parse_keys
from enrich.emulator.profiles import data_json
from enrich.emulator.stats import max_in_window

DATA = Path(__file__).parent / "data"
CAPTURES = json.loads((DATA / "captured_requests.json").read_text(encoding="utf-8"))["requests"]
GOLDEN = json.loads((DATA / "golden_vectors.json").read_text(encoding="utf-8"))["vectors"]
KEYS = {"testAKID": "testSecret"}
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
REQUEST_ID_RE = re.compile(r"[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}")
PHONE = "8613800001234"
PROJECT = Path(__file__).resolve().parent.parent


# -- a test-side signer (a third reading of sdk-notes.md) ----------------------------


def _utc(moment: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if moment is None else moment, UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )


def sign_acs3(
    host: str,
    params: dict[str, str],
    *,
    ak: str = "testAKID",
    secret: str = "testSecret",
    date: str | None = None,
    nonce: str | None = None,
    token: str | None = None,
) -> tuple[str, dict[str, str]]:
    """(wire query, headers) of an ACS3-HMAC-SHA256 request the way the SDK builds it."""
    headers = {
        "host": host,
        "x-acs-version": "2020-06-06",
        "x-acs-action": "QueryPhoneBusinessProfile",
        "user-agent": "test-emulator",
        "x-acs-date": date or _utc(),
        "x-acs-signature-nonce": nonce or uuid.uuid4().hex,
        "accept": "application/json",
        "x-acs-content-sha256": EMPTY_SHA256,
    }
    if token is not None:
        headers["x-acs-accesskey-id"] = ak
        headers["x-acs-security-token"] = token
    query = "&".join(f"{k}={quote(v, safe='~')}" for k, v in sorted(params.items()))
    names = sorted(headers)
    canonical = (
        f"POST\n/\n{query}\n"
        + "".join(f"{n}:{headers[n].strip()}\n" for n in names)
        + f"\n{';'.join(names)}\n{EMPTY_SHA256}"
    )
    to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()
    signature = hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = (
        f"ACS3-HMAC-SHA256 Credential={ak},SignedHeaders={';'.join(names)},Signature={signature}"
    )
    return urlencode(params), headers


def sign_v1(
    params: dict[str, str],
    *,
    ak: str = "testAKID",
    secret: str = "testSecret",
    date: str | None = None,
    token: str | None = None,
    method: str = "POST",
) -> str:
    """The wire query of a V1 (HMAC-SHA1) request."""
    full = {
        "Action": "QueryPhoneBusinessProfile",
        "Format": "json",
        "Version": "2020-06-06",
        "Timestamp": date or _utc(),
        "SignatureNonce": uuid.uuid4().hex,
        **params,
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "AccessKeyId": ak,
    }
    if token is not None:
        full["SecurityToken"] = token
    canonical = "&".join(
        f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in sorted(full.items())
    )
    to_sign = f"{method}&%2F&{quote(canonical, safe='~')}"
    digest = hmac.new((secret + "&").encode(), to_sign.encode(), hashlib.sha1).digest()
    full["Signature"] = base64.b64encode(digest).decode()
    return urlencode(full)


# -- a tiny HTTP client ------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, object]:
        return json.loads(self.body)

    @property
    def code(self) -> str:
        body = self.json
        return str(body.get("Code", body.get("code")))


async def _send(
    session: aiohttp.ClientSession, url: str, query: str, headers: dict[str, str]
) -> Reply:
    async with session.post(URL(f"{url}/?{query}", encoded=True), headers=headers) as resp:
        return Reply(
            resp.status, {k.lower(): v for k, v in resp.headers.items()}, await resp.read()
        )


def send_many(
    url: str, requests: list[tuple[str, dict[str, str]]], *, timeout: float = 5.0
) -> list[Reply]:
    """Send the (query, headers) requests one after the other over one session."""

    async def run() -> list[Reply]:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
            return [await _send(session, url, q, h) for q, h in requests]

    return asyncio.run(run())


def send(url: str, query: str, headers: dict[str, str], *, timeout: float = 5.0) -> Reply:
    return send_many(url, [(query, headers)], timeout=timeout)[0]


def host_of(server: EmulatorServer) -> str:
    return server.url.removeprefix("http://")


def signed(server: EmulatorServer, cust: str = "space-1", phone: str = PHONE, **kw: object):
    return sign_acs3(host_of(server), {"CustSpaceId": cust, "PhoneNumber": phone}, **kw)  # type: ignore[arg-type]


def assert_error(reply: Reply, status: int, code: str) -> None:
    assert reply.status == status, reply.body
    assert reply.headers["content-type"] == "application/json;charset=utf-8"
    body = reply.json
    assert reply.code == code
    request_id = body.get("RequestId", body.get("requestId"))
    assert request_id == reply.headers["x-acs-request-id"]
    assert REQUEST_ID_RE.fullmatch(str(request_id))


def assert_ok(reply: Reply, phone: str = PHONE) -> None:
    assert reply.status == 200, reply.body
    body = reply.json
    assert body["Code"] == "OK" and body["Success"] is True
    assert body["RequestId"] == reply.headers["x-acs-request-id"]
    assert body["Data"] == data_on_wire("any", phone)


# -- signatures: the captured SDK requests ----------------------------------------------


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda c: f"{c['index']}-{c['label']}")
def test_every_captured_request_verifies_at_its_capture_time(capture: dict) -> None:
    who = verify(
        method=capture["method"],
        params=decode_query(capture["raw_query"]),
        headers=header_map(capture["headers"]),
        body=capture["body"].encode(),
        keys=KEYS,
        now=capture["received_at_unix"],
    )
    assert who.access_key_id == "testAKID"
    if "sts" in capture["label"]:
        assert who.security_token == "testSTSToken"


def test_captured_request_is_stale_without_the_clock_seam() -> None:
    capture = CAPTURES[0]
    with pytest.raises(AuthError) as caught:
        verify(
            method="POST",
            params=decode_query(capture["raw_query"]),
            headers=header_map(capture["headers"]),
            body=b"",
            keys=KEYS,
            now=capture["received_at_unix"] + 16 * 60,
        )
    assert caught.value.code == "InvalidTimeStamp.Expired"


def _signed_values(capture: dict) -> Iterator[tuple[str, str, int]]:
    """(where, name, index) of every signed value of a capture."""
    headers = header_map(capture["headers"])
    if "authorization" in headers:
        signed = headers["authorization"][0].split("SignedHeaders=")[1].split(",")[0].split(";")
        for i, (name, _) in enumerate(capture["headers"]):
            if name.lower() in signed or name.lower() == "authorization":
                yield "header", name, i
    for i, _ in enumerate(decode_query(capture["raw_query"])):
        yield "query", "", i


def _alter(text: str, position: int) -> str:
    return text[:position] + ("x" if text[position] != "x" else "y") + text[position + 1 :]


@pytest.mark.parametrize(
    "label",
    [
        "a_success/sync",
        "e_sts_token_success/sync",
        "s_special_chars/async",
        "u_unicode_value/sync",
        "v_optional_params/sync",
        "o_v1_rpc_signature/sync",
        "p_v1_rpc_signature_sts/sync",
        "t_special_chars_v1/async",
    ],
)
def test_altering_any_character_of_a_signed_value_fails(label: str) -> None:
    capture = next(c for c in CAPTURES if c["label"] == label)
    params = decode_query(capture["raw_query"])
    altered_count = 0
    for where, _name, index in _signed_values(capture):
        pairs = [list(p) for p in (capture["headers"] if where == "header" else params)]
        value = pairs[index][1]
        for position in range(len(value)):
            changed = [list(p) for p in pairs]
            changed[index][1] = _alter(value, position)
            headers = capture["headers"] if where == "query" else changed
            query = params if where == "header" else changed
            with pytest.raises(AuthError):
                verify(
                    method="POST",
                    params=[tuple(p) for p in query],
                    headers=header_map(tuple(h) for h in headers),
                    body=b"",
                    keys=KEYS,
                    now=capture["received_at_unix"],
                )
            altered_count += 1
    assert altered_count > 100


@pytest.mark.parametrize("vector", GOLDEN, ids=lambda v: v["name"])
def test_golden_vectors(vector: dict) -> None:
    if vector["algorithm"] == "V1-HMAC-SHA1":
        params = list(vector["params"].items())
        assert v1_string_to_sign("POST", params) == vector["string_to_sign"]
        params.append(("Signature", vector["signature"]))
        headers: dict[str, list[str]] = {}
    else:
        headers = {k: [v] for k, v in vector["signed_headers"].items()}
        params = list(vector["query"].items())
        canonical = acs3_canonical_request(
            method="POST",
            params=params,
            headers=headers,
            signed_headers=sorted(headers),
            payload_hash=EMPTY_SHA256,
        )
        assert canonical == vector["canonical_request"]
        headers["authorization"] = [vector["authorization"]]
    stamp = datetime.strptime("2024-01-02T03:04:05Z", "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    verify(
        method="POST", params=params, headers=headers, body=b"", keys=KEYS, now=stamp.timestamp()
    )


def test_captured_requests_replayed_over_http(emulator) -> None:
    moment = CAPTURES[0]["received_at_unix"]
    server = emulator(rate_limit=0, clock=lambda: moment)
    nonces = {
        c["raw_query"] + str(header_map(c["headers"]).get("x-acs-signature-nonce"))
        for c in CAPTURES
    }
    assert len(nonces) == len(CAPTURES)
    requests = [
        (c["raw_query"], [(k, v) for k, v in c["headers"] if k.lower() != "content-length"])
        for c in CAPTURES
    ]
    replies = send_many(server.url, requests)  # type: ignore[arg-type]
    for capture, reply in zip(CAPTURES, replies, strict=True):
        assert reply.status == 200, (capture["label"], reply.body)
        assert reply.json["Code"] == "OK"
    replay = send(server.url, *requests[0])  # type: ignore[arg-type]
    assert_error(replay, 400, "SignatureNonceUsed")
    assert server.stats.codes == {"OK": len(CAPTURES), "SignatureNonceUsed": 1}


# -- rejections ---------------------------------------------------------------------------


def test_a_fresh_signed_request_succeeds_and_v1_and_sts_too(emulator) -> None:
    server = emulator()
    assert_ok(send(server.url, *signed(server)))
    assert_ok(send(server.url, *signed(server, token="testSTSToken")))
    v1 = sign_v1({"CustSpaceId": "s p+a/c*e", "PhoneNumber": PHONE})
    assert_ok(send(server.url, v1, {}))
    v1_sts = sign_v1({"CustSpaceId": "space", "PhoneNumber": PHONE}, token="testSTSToken")
    assert_ok(send(server.url, v1_sts, {}))


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"secret": "wrongSecret"}, 400, "SignatureDoesNotMatch"),
        ({"ak": "unknownAKID"}, 404, "InvalidAccessKeyId.NotFound"),
        # seconds from now, made a date when the test runs (not when it is collected:
        # a suite slower than a minute would bring a date 16 min ahead within 15)
        ({"date": -16 * 60}, 400, "InvalidTimeStamp.Expired"),
        ({"date": 16 * 60}, 400, "InvalidTimeStamp.Expired"),
        ({"date": "2024-01-02 03:04:05"}, 400, "InvalidTimeStamp.Format"),
        ({"token": "expired-token"}, 400, "InvalidSecurityToken.Expired"),
    ],
)
def test_rejections(emulator, kwargs: dict, status: int, code: str) -> None:
    server = emulator()
    if isinstance(kwargs.get("date"), int):
        kwargs = {**kwargs, "date": _utc(time.time() + kwargs["date"])}
    assert_error(send(server.url, *signed(server, **kwargs)), status, code)
    assert server.stats.successes == {}


def test_a_date_within_15_minutes_is_accepted(emulator) -> None:
    server = emulator()
    assert_ok(send(server.url, *signed(server, date=_utc(time.time() - 14 * 60))))


def test_v1_get_is_signed_with_its_method(emulator) -> None:
    server = emulator()
    params = {"CustSpaceId": "space", "PhoneNumber": PHONE}

    async def get(query: str) -> int:
        async with (
            aiohttp.ClientSession() as session,
            session.get(URL(f"{server.url}/?{query}", encoded=True)) as resp,
        ):
            return resp.status

    assert asyncio.run(get(sign_v1(params, method="GET"))) == 200
    assert asyncio.run(get(sign_v1(params, method="POST"))) == 400


def test_v1_rejections(emulator) -> None:
    server = emulator()
    params = {"CustSpaceId": "space", "PhoneNumber": PHONE}
    assert_error(send(server.url, sign_v1(params, secret="nope"), {}), 400, "SignatureDoesNotMatch")
    assert_error(
        send(server.url, sign_v1(params, ak="nope"), {}), 404, "InvalidAccessKeyId.NotFound"
    )
    stale = sign_v1(params, date=_utc(time.time() - 3600))
    assert_error(send(server.url, stale, {}), 400, "InvalidTimeStamp.Expired")


def test_reused_nonce_is_refused_per_key(emulator) -> None:
    server = emulator(keys={"AK1": "s1", "AK2": "s2"})
    nonce = uuid.uuid4().hex
    first = send(server.url, *signed(server, ak="AK1", secret="s1", nonce=nonce))
    again = send(server.url, *signed(server, ak="AK1", secret="s1", nonce=nonce))
    other_key = send(server.url, *signed(server, ak="AK2", secret="s2", nonce=nonce))
    assert_ok(first)
    assert_error(again, 400, "SignatureNonceUsed")
    assert_ok(other_key)


def test_nonce_store_is_bounded_and_forgets_after_its_ttl() -> None:
    store = NonceStore(ttl_s=10, max_per_key=3)
    assert store.check_and_add("AK", "a", now=0)
    assert not store.check_and_add("AK", "a", now=5)
    for nonce in "bcd":
        assert store.check_and_add("AK", nonce, now=6)
    assert len(store) == 3  # "a" was forgotten: at most 3 per key
    assert store.check_and_add("AK", "b", now=17)  # ttl passed


def test_tampered_query_value_is_refused(emulator) -> None:
    server = emulator()
    query, headers = signed(server, phone="8613800001234")
    tampered = query.replace("8613800001234", "8613800001235")
    assert_error(send(server.url, tampered, headers), 400, "SignatureDoesNotMatch")


def test_unsigned_acs_header_is_refused(emulator) -> None:
    server = emulator()
    query, headers = signed(server)
    headers["x-acs-extra"] = "sneaky"
    assert_error(send(server.url, query, headers), 400, "IncompleteSignature")


@pytest.mark.parametrize(
    ("params", "missing"),
    [({"PhoneNumber": PHONE}, "CustSpaceId"), ({"CustSpaceId": "space"}, "PhoneNumber")],
)
def test_missing_parameter(emulator, params: dict, missing: str) -> None:
    server = emulator()
    reply = send(server.url, *sign_acs3(host_of(server), params))
    assert_error(reply, 400, "MissingParameter")
    assert f'"{missing}"' in reply.json["Message"]


def test_missing_credentials(emulator) -> None:
    server = emulator()
    reply = send(server.url, urlencode({"CustSpaceId": "space", "PhoneNumber": PHONE}), {})
    assert_error(reply, 400, "MissingParameter")
    assert '"AccessKeyId"' in reply.json["Message"]
    assert server.stats.arrivals[0][1] == ""


def test_error_bodies_upper_and_lower_case_keys(emulator) -> None:
    server = emulator(force_code="Ram.PermissionDeny")
    upper = send(server.url, *signed(server, phone="8613800001234")).json
    lower = send(server.url, *signed(server, phone="8613800001237")).json
    assert set(upper) == {"RequestId", "HostId", "Code", "Message", "Recommend"}
    assert upper["HostId"] == host_of(server)
    assert set(lower) == {"requestId", "code", "message"}


# -- the limit -----------------------------------------------------------------------------


def test_limit_per_key_in_a_sliding_second(emulator) -> None:
    server = emulator(rate_limit=5, keys={"AK1": "s1", "AK2": "s2"})
    a = [signed(server, ak="AK1", secret="s1", phone=f"86138000{i:05d}") for i in range(7)]
    b = [signed(server, ak="AK2", secret="s2", phone=f"86139000{i:05d}") for i in range(5)]
    started = time.monotonic()
    replies = send_many(server.url, a[:6] + b)
    if time.monotonic() - started >= 0.9:
        pytest.skip("this machine took too long to fill a 1 s window")
    assert [r.status for r in replies[:5]] == [200] * 5
    assert_error(replies[5], 400, "System.LimitControl")
    assert replies[5].json["Message"] == "The system is under flow control."
    assert [r.status for r in replies[6:]] == [200] * 5  # AK2 is independent
    arrivals = server.stats.arrivals
    assert [ak for _, ak in arrivals] == ["AK1"] * 6 + ["AK2"] * 5
    assert server.stats.max_in_window(1.0, "AK1") == 6  # arrivals, throttled one included
    first_admitted = arrivals[0][0]
    time.sleep(max(0.0, first_admitted + 1.02 - time.monotonic()))
    assert_ok(send(server.url, *a[6]), phone="8613800000006")


def test_limit_zero_is_unlimited(emulator) -> None:
    server = emulator(rate_limit=0)
    replies = send_many(server.url, [signed(server) for _ in range(30)])
    assert {r.status for r in replies} == {200}


def test_max_in_window() -> None:
    assert max_in_window([]) == 0
    assert max_in_window([0.0, 0.5, 0.99, 1.0, 1.2]) == 4  # [0.5, 1.5)
    assert max_in_window([0.0, 0.5, 1.0, 1.5]) == 2  # half-open windows
    assert max_in_window([0.0, 0.1, 0.2], window_s=0.15) == 2
    assert max_in_window([1.2, 0.0, 0.99, 0.5, 1.0]) == 4  # in any order


# -- errors on demand ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("Product.Unsubscript", 400),
        ("Ram.PermissionDeny", 400),
        ("System.LimitControl", 400),
        ("Unknown.ResourceOwnerId", 400),
        ("InvalidAccessKeyId.NotFound", 404),
        ("SignatureDoesNotMatch", 400),
        ("ServiceUnavailable", 503),
        ("InternalError", 500),
    ],
)
def test_force_code(emulator, code: str, status: int) -> None:
    server = emulator(force_code=code)
    assert_error(send(server.url, *signed(server)), status, code)


def test_magic_cust_space_ids(emulator) -> None:
    server = emulator(rate_limit=0)
    assert_error(
        send(server.url, *signed(server, cust="foreign-42")), 400, "Unknown.ResourceOwnerId"
    )
    for _ in range(2):
        reply = send(server.url, *signed(server, cust="err-Ram.PermissionDeny"))
        assert_error(reply, 400, "Ram.PermissionDeny")
        assert reply.json["Message"] == "You are not authorized to perform the operation."
    assert_error(
        send(server.url, *signed(server, cust="err-Product.Unsubscript")),
        400,
        "Product.Unsubscript",
    )
    assert_error(send(server.url, *signed(server, cust="err-Some.Other")), 400, "Some.Other")
    assert_error(send(server.url, *signed(server, cust="fault-nope-1")), 400, "InvalidParameter")


def test_fault_n_then_success_per_number(emulator) -> None:
    server = emulator(rate_limit=0)
    cust = "fault-http503_json-2"
    replies = send_many(server.url, [signed(server, cust=cust) for _ in range(3)])
    assert [r.status for r in replies] == [503, 503, 200]
    assert_ok(replies[2])
    other = send_many(server.url, [signed(server, cust=cust, phone="8613800009999")])
    assert other[0].status == 503  # counted per (CustSpaceId, PhoneNumber)
    assert server.stats.successes == {(cust, PHONE): 1}
    assert server.stats.attempts[(cust, PHONE)] == 3


# -- every fault kind ----------------------------------------------------------------------


def _fault(server: EmulatorServer, kind: str, *, timeout: float = 5.0) -> Reply:
    return send(server.url, *signed(server, cust=f"fault-{kind}-1"), timeout=timeout)


def test_fault_http500_html(emulator) -> None:
    reply = _fault(emulator(), "http500_html")
    assert reply.status == 500
    assert reply.headers["content-type"].startswith("text/html")
    assert b"<html>" in reply.body
    assert REQUEST_ID_RE.fullmatch(reply.headers["x-acs-request-id"])


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("http503_json", 503, "ServiceUnavailable"),
        ("http429", 429, "Throttling.User"),
        ("throttle", 400, "System.LimitControl"),
    ],
)
def test_fault_json_errors(emulator, kind: str, status: int, code: str) -> None:
    reply = _fault(emulator(), kind)
    assert_error(reply, status, code)
    if kind == "throttle":
        assert reply.headers["x-acs-retry-after"] == str(THROTTLE_RETRY_AFTER_MS)
    else:
        assert "x-acs-retry-after" not in reply.headers


def test_fault_truncated_json(emulator) -> None:
    reply = _fault(emulator(), "truncated_json")
    assert reply.status == 200
    assert int(reply.headers["content-length"]) == len(reply.body) > 10
    assert reply.body.startswith(b'{"RequestId":"')
    with pytest.raises(json.JSONDecodeError):
        json.loads(reply.body)


def test_fault_garbage(emulator) -> None:
    reply = _fault(emulator(), "garbage")
    assert reply.status == 200
    with pytest.raises(ValueError):
        json.loads(reply.body)


def test_fault_code_not_ok(emulator) -> None:
    reply = _fault(emulator(), "code_not_ok")
    assert reply.status == 200
    assert reply.json["Code"] == "InternalError" and reply.json["Success"] is False


def test_fault_xml_error(emulator) -> None:
    reply = _fault(emulator(), "xml_error")
    assert reply.status == 503
    assert reply.headers["content-type"] == "text/xml;charset=utf-8"
    root = ET.fromstring(reply.body)
    assert root.tag == "Error"
    assert root.findtext("Code") == "ServiceUnavailable"
    assert root.findtext("RequestId") == reply.headers["x-acs-request-id"]


def test_fault_drop(emulator) -> None:
    server = emulator()
    with pytest.raises(aiohttp.ServerDisconnectedError):
        _fault(server, "drop")
    assert server.stats.codes["fault:drop"] == 1


def test_fault_hang_outlasts_the_client_timeout_then_answers(emulator) -> None:
    server = emulator(hang_s=0.5)
    with pytest.raises(asyncio.TimeoutError):
        _fault(server, "hang", timeout=0.2)
    server2 = emulator(hang_s=0.2)
    started = time.monotonic()
    reply = _fault(server2, "hang")
    assert time.monotonic() - started >= 0.19
    assert_ok(reply)


def test_stop_releases_hanging_requests_promptly(emulator) -> None:
    server = emulator(hang_s=60)
    query, headers = signed(server, cust="fault-hang-1")

    async def hang_then_stop() -> BaseException | None:
        async with aiohttp.ClientSession() as session:
            pending = asyncio.ensure_future(_send(session, server.url, query, headers))
            while server.stats.faults["hang"] == 0:
                await asyncio.sleep(0.01)
            started = time.monotonic()
            await asyncio.to_thread(server.stop)
            assert time.monotonic() - started < 2.0
            try:
                await asyncio.wait_for(pending, 2.0)
            except aiohttp.ClientError as exc:
                return exc
            return None

    assert isinstance(asyncio.run(hang_then_stop()), aiohttp.ClientError)


def test_latency_is_waited_before_answering(emulator) -> None:
    server = emulator(latency_s=0.15, jitter_s=0.05)
    started = time.monotonic()
    assert_ok(send(server.url, *signed(server)))
    assert time.monotonic() - started >= 0.099


def _fault_sequence(emulator, seed: int) -> list[tuple[int, str]]:
    server = emulator(
        rate_limit=0,
        fault_rate=0.5,
        seed=seed,
        faults=("http503_json", "http429", "code_not_ok", "garbage", "http500_html"),
    )
    replies = send_many(server.url, [signed(server, phone=f"86138{i:08d}") for i in range(40)])
    sequence = []
    for reply in replies:
        try:
            code = reply.code
        except ValueError:
            code = "-"
        sequence.append(
            (
                reply.status,
                code if reply.headers["content-type"].startswith("application/json") else "html",
            )
        )
    return sequence


def test_same_seed_same_fault_sequence(emulator) -> None:
    first = _fault_sequence(emulator, seed=3)
    assert first == _fault_sequence(emulator, seed=3)
    assert first != _fault_sequence(emulator, seed=4)
    assert 5 < sum(status != 200 or code != "OK" for status, code in first) < 35


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        EmulatorConfig(faults=("nope",))
    with pytest.raises(ValueError, match="fault_rate"):
        EmulatorConfig(fault_rate=1.5)
    with pytest.raises(ValueError, match="rate_limit"):
        EmulatorConfig(rate_limit=-1)


# -- profiles --------------------------------------------------------------------------------


NUMBERS = [f"86138{i:08d}" for i in range(1000)]


def _texts(profile: dict) -> list[str]:
    return [v for k, v in profile.items() if k != "Websites"] + list(profile.get("Websites", []))


def test_profile_for_is_deterministic_and_returns_fresh_dicts() -> None:
    phone = next(n for n in NUMBERS if no_profile_form(n) is None)
    first = profile_for("a", phone)
    assert first is not None
    first["Websites"] = "mutated"
    assert profile_for("b", phone) != first
    assert profile_for("a", phone) == profile_for("b", phone)


def test_profile_mix_over_1000_numbers() -> None:
    profiles = [profile_for("space", n) for n in NUMBERS]
    none_share = sum(p is None for p in profiles) / len(profiles)
    assert 0.10 <= none_share <= 0.30
    forms = {no_profile_form(n) for n, p in zip(NUMBERS, profiles, strict=True) if p is None}
    assert forms == {"null", "empty"}
    present = [p for p in profiles if p is not None]
    texts = [t for p in present for t in _texts(p)]
    assert any(t.strip()[:1] in ("=", "+", "-", "@") for t in texts)
    assert any(t[:1] == " " and t.strip()[:1] == "=" for t in texts)
    assert any(not t.isascii() for t in texts)
    assert any(any(ord(c) > 0xFFFF for c in t) for t in texts)  # emoji
    assert any(t.endswith("\n") for t in texts)
    assert any(p.get("Websites") == [] for p in present)
    assert any("Websites" not in p or "Email" not in p for p in present)
    assert any(
        set(p)
        == {"About", "Address", "Description", "Email", "ProfilePictureUrl", "Vertical", "Websites"}
        and all(p.values())
        for p in present
    )
    for p in present:
        assert any(isinstance(v, str) and v.strip() for v in p.values())
        assert all(isinstance(w, str) for w in p.get("Websites", []))


@settings(max_examples=200, deadline=None)
@given(phone=st.text(min_size=0, max_size=30))
def test_data_json_is_what_data_on_wire_says(phone: str) -> None:
    wire = data_on_wire("space", phone)
    assert json.loads(data_json(phone)) == wire
    assert (profile_for("space", phone) is None) == (wire in (None, {}))
    assert (no_profile_form(phone) is None) == (profile_for("space", phone) is not None)


def test_profiles_are_stable_across_processes() -> None:
    code = (
        "import json,sys; from enrich.emulator import data_on_wire;"
        "print(json.dumps([data_on_wire('s', f'86138{i:08d}') for i in range(50)]))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(PROJECT)}
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=30,
    )
    assert json.loads(out.stdout) == [data_on_wire("s", n) for n in NUMBERS[:50]]
    # Pinned: a change of algorithm or pools must be deliberate.
    assert profile_for("s", "8613800001235") == {
        "About": "Hey there! I am using WhatsApp.",
        "Address": "Jl. Jend. Sudirman Kav. 52-53, Jakarta 12190",
        "Description": "@everyone welcome!",
        "Email": "sales.4902@example.com",
        "ProfilePictureUrl": "https://pps.whatsapp.net/v/t61.24694-24/49025ad0fb1fdd74_n.jpg?ccb=11-4&oh=01_49025a",
        "Vertical": "Restaurant",
        "Websites": ["https://alibaba.com"],
    }


def test_no_profile_is_sent_as_null_or_empty_object(emulator) -> None:
    server = emulator(rate_limit=0)
    null_phone = next(n for n in NUMBERS if no_profile_form(n) == "null")
    empty_phone = next(n for n in NUMBERS if no_profile_form(n) == "empty")
    null_reply, empty_reply = send_many(
        server.url, [signed(server, phone=null_phone), signed(server, phone=empty_phone)]
    )
    assert null_reply.json["Data"] is None and "Data" in null_reply.json
    assert empty_reply.json["Data"] == {}
    assert null_reply.json["Code"] == empty_reply.json["Code"] == "OK"


# -- stats ------------------------------------------------------------------------------------


def test_stats_endpoint_and_reset(emulator) -> None:
    server = emulator(rate_limit=0)
    send_many(
        server.url,
        [
            signed(server),
            signed(server, cust="err-Ram.PermissionDeny"),
            signed(server, cust="fault-http429-1"),
        ],
    )

    async def get(path: str, method: str = "GET") -> dict:
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, server.url + path) as r,
        ):
            assert r.status == 200
            return await r.json()

    stats = asyncio.run(get("/_emulator/stats"))
    assert stats["requests_total"] == 3
    assert stats["codes"] == {"OK": 1, "Ram.PermissionDeny": 1, "Throttling.User": 1}
    assert stats["faults"] == {"http429": 1}
    assert stats["successes"] == [{"cust_space_id": "space-1", "phone": PHONE, "count": 1}]
    assert len(stats["arrivals"]) == 3 and stats["arrivals"][0][1] == "testAKID"
    assert stats["max_in_window_1s"]["testAKID"] == 3
    assert "arrivals" not in asyncio.run(get("/_emulator/stats?arrivals=0"))
    assert asyncio.run(get("/_emulator/reset", "POST")) == {"reset": True}
    assert server.stats.requests_total == 0 and server.stats.codes == {}
    assert asyncio.run(get("/_emulator/stats"))["requests_total"] == 0
    # reset restarts fault-<kind>-<n> counting
    assert send(server.url, *signed(server, cust="fault-http429-1")).status == 429


# -- the command -------------------------------------------------------------------------------


def test_help_documents_every_fault_and_magic_input() -> None:
    result = CliRunner().invoke(emulator_command, ["--help"])
    assert result.exit_code == 0
    for kind in ALL_FAULTS:
        assert kind in result.output
    for text in (
        "foreign",
        "err-Ram.PermissionDeny",
        "fault-http503_json-2",
        "--force-code",
        "Examples:",
    ):
        assert text in result.output


def test_command_rejects_bad_options() -> None:
    result = CliRunner().invoke(emulator_command, ["--keys", "nocolon"])
    assert result.exit_code == 2 and "AK:SECRET" in result.output
    result = CliRunner().invoke(emulator_command, ["--faults", "http500_html,nope"])
    assert result.exit_code == 2 and "nope" in result.output
    assert parse_keys("A:x, B:y:z") == {"A": "x", "B": "y:z"}


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_command_announces_and_stops_on_signal(signum: int) -> None:
    code = "from enrich.emulator.command import emulator_command; emulator_command()"
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    with subprocess.Popen(
        [sys.executable, "-c", code, "--port", "0", "--keys", "AK1:S1,AK2:S2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as proc:
        try:
            assert proc.stdout is not None and proc.stderr is not None
            first = proc.stdout.readline()
            assert re.search(r"http://127\.0\.0\.1:\d+", first), first
            lines = [proc.stdout.readline() for _ in range(4)]
            assert "export ALIBABA_CLOUD_ACCESS_KEY_ID=AK1\n" in lines
            assert "export ALIBABA_CLOUD_ACCESS_KEY_SECRET=S1\n" in lines
            proc.send_signal(signum)
            assert proc.wait(timeout=5) == 0
            assert "stopped" in proc.stderr.read()
        finally:
            if proc.poll() is None:
                proc.kill()
