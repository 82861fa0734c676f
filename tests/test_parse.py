"""parse_response turns every body shape into an Answer or a classified CallError."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from enrich.client import Profile, parse_response, retry_after_seconds
from enrich.errors import CallError
from enrich.retry import classify

OK_BODY = {
    "RequestId": "90E63D28-E31D-1EB2-8939-A94866411B2O",
    "Code": "OK",
    "Message": "None",
    "Data": {
        "About": "  We sell tea \n",
        "Address": "Changsha\n",
        "Description": "Description\n",
        "Vertical": "Retail\n",
        "Email": "aa@aliyun.com",
        "ProfilePictureUrl": "https://x.example/a.img",
        "Websites": ["https://alibaba.com", " ", "https://b.example\n"],
    },
}


def test_success_body_is_stripped_and_about_kept() -> None:
    ans = parse_response(200, json.dumps(OK_BODY).encode(), now=5.0)
    assert ans.request_id == "90E63D28-E31D-1EB2-8939-A94866411B2O"
    assert ans.fetched_at == 5.0
    assert ans.profile == Profile(
        about="We sell tea", address="Changsha", description="Description", vertical="Retail",
        email="aa@aliyun.com", profile_picture_url="https://x.example/a.img",
        websites=("https://alibaba.com", "https://b.example"),
    )


@pytest.mark.parametrize("data", [None, {}, {"Address": "  \n", "Websites": []}, {"Email": ""}])
def test_no_profile_shapes(data: object) -> None:
    body = {"RequestId": "R1", "Code": "OK", "Data": data}
    ans = parse_response(200, json.dumps(body).encode())
    assert ans.profile is None
    assert ans.request_id == "R1"


CASES = [
    # status, content type, body, code, retry decision
    (400, "application/json", b'{"RequestId":"R","Code":"System.LimitControl","Message":"flow"}',
     "System.LimitControl", "retry"),
    (400, "application/json", b'{"requestId":"R","code":"Ram.PermissionDeny","message":"no"}',
     "Ram.PermissionDeny", "fatal"),
    (400, "application/json", b'{"RequestId":"R","Code":"Product.Unsubscript","Message":"x"}',
     "Product.Unsubscript", "fatal"),
    (400, "application/json", b'{"RequestId":"R","Code":"Unknown.ResourceOwnerId","Message":"x"}',
     "Unknown.ResourceOwnerId", "fatal_space"),
    (404, "application/json", b'{"Code":"InvalidAccessKeyId.NotFound","Message":"x"}',
     "InvalidAccessKeyId.NotFound", "fatal"),
    (400, "text/xml;charset=utf-8",
     b"<?xml version='1.0'?><Error><RequestId>R</RequestId><Code>SignatureDoesNotMatch</Code>"
     b"<Message>bad</Message></Error>", "SignatureDoesNotMatch", "fatal"),
    (500, "text/html", b"<html><body><h1>500 Internal Server Error</h1></body></html>",
     "Client.HTTP500", "retry"),
    (503, "application/json", b'{"RequestId":"R","Code":"ServiceUnavailable","Message":"busy"}',
     "ServiceUnavailable", "retry"),
    (502, "text/plain", b"", "Client.HTTP502", "retry"),
    (429, "text/plain", b"slow down", "Client.HTTP429", "retry"),
    (403, "text/html", b"<html>forbidden</html>", "Client.HTTP403", None),
    (200, "application/json", b'{"RequestId":"R","Code":"InternalError","Message":"x"}',
     "InternalError", "retry"),
    (200, "application/json", b'{"RequestId":"R","Code":"Some.Other","Message":"x"}',
     "Some.Other", None),
    (200, "application/json", b'{"RequestId":"R","Code":"OK","Da', "Client.BadResponse", "retry"),
    (200, "application/json", b"", "Client.BadResponse", "retry"),
    (200, "application/json", b"\x00\xff garbage", "Client.BadResponse", "retry"),
    (200, "application/json", b"[1,2]", "Client.BadResponse", "retry"),
    (200, "application/json", b'{"Code":"OK","Data":"nope"}', "Client.BadResponse", "retry"),
]


@pytest.mark.parametrize(("status", "ctype", "body", "code", "decision"), CASES)
def test_error_shapes(
    status: int, ctype: str, body: bytes, code: str, decision: str | None
) -> None:
    with pytest.raises(CallError) as err:
        parse_response(status, body, headers={"Content-Type": ctype})
    assert err.value.code == code
    assert err.value.http_status == status
    rule = classify(err.value)
    assert (rule.decision if rule else None) == decision


def test_request_id_from_header_when_body_has_none() -> None:
    with pytest.raises(CallError) as err:
        parse_response(500, b"<html/>", headers={"x-acs-request-id": "HDR-1"})
    assert err.value.request_id == "HDR-1"


def test_retry_after_headers() -> None:
    assert retry_after_seconds({"x-acs-retry-after": "1500"}, now=0) == 1.5
    assert retry_after_seconds({"Retry-After": "3"}, now=0) == 3.0
    assert retry_after_seconds({"x-acs-retry-after": "0"}, now=0) is None
    assert retry_after_seconds({"Retry-After": "soon"}, now=0) is None
    with pytest.raises(CallError) as err:
        parse_response(400, b'{"Code":"System.LimitControl","Message":"m"}',
                       headers={"x-acs-retry-after": "250"})
    assert err.value.retry_after_s == 0.25


@settings(max_examples=300, deadline=None)
@given(status=st.integers(100, 599), body=st.binary(max_size=300))
def test_parser_never_raises_anything_else_on_bytes(status: int, body: bytes) -> None:
    try:
        parse_response(status, body, headers={"Content-Type": "text/xml"})
    except CallError as err:
        assert err.code
        assert err.http_status == status


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(data=json_values, code=st.sampled_from(["OK", "ok", None, "X.Y", 5]))
def test_parser_never_raises_anything_else_on_json(data: object, code: object) -> None:
    body: dict[str, object] = {"RequestId": "R", "Data": data}
    if code is not None:
        body["Code"] = code
    try:
        ans = parse_response(200, json.dumps(body).encode())
    except CallError as err:
        assert err.code
    else:
        assert ans.profile is None or isinstance(ans.profile, Profile)
