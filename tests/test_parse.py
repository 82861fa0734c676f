"""parse_response turns every body shape into an Answer or a classified CallError."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from enrich import report
from enrich.cache import Ledger
from enrich.client import Answer, Profile, parse_response, retry_after_seconds
from enrich.errors import CallError
from enrich.retry import classify
from enrich.types import KeyOutcome

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


@pytest.mark.parametrize("body", [
    {"RequestId": "R1", "Code": "OK", "Data": None},
    {"RequestId": "R1", "Code": "OK"},
    {"RequestId": "R1", "code": "OK", "data": None},
])
def test_no_profile_is_data_absent_or_null(body: dict[str, object]) -> None:
    ans = parse_response(200, json.dumps(body).encode())
    assert ans.profile is None
    assert ans.request_id == "R1"
    assert KeyOutcome.answered(ans, attempts=1).status == "no_profile"


EMPTY_DATA = [
    {},
    {"Address": "  \n", "Websites": []},
    {"Email": ""},
    {"About": "\n", "Address": " ", "Description": "\t", "Vertical": "", "Email": None,
     "ProfilePictureUrl": "  ", "Websites": [" ", "\n", ""]},
    {"Websites": "  "},
    {"websites": None, "about": ""},
]


@pytest.mark.parametrize("data", EMPTY_DATA)
def test_a_data_object_all_empty_is_an_empty_profile(data: dict[str, object]) -> None:
    # SPEC "Output file": the number has a business profile, an empty one → ok
    body = {"RequestId": "R1", "Code": "OK", "Data": data}
    ans = parse_response(200, json.dumps(body).encode())
    assert ans.profile == Profile()
    assert ans.request_id == "R1"
    assert KeyOutcome.answered(ans, attempts=1).status == "ok"


def test_an_empty_profile_round_trips_through_the_cache_as_ok() -> None:
    ans = parse_response(200, json.dumps({"RequestId": "R1", "Code": "OK", "Data": {}}).encode(),
                         now=1_700_000_000.0)
    with Ledger(None) as ledger:
        ledger.put_answer(("S", "861"), ans)
        ledger.put_answer(("S", "862"), Answer(None, "R2", 1_700_000_000.0))
        got = ledger.lookup([("S", "861"), ("S", "862")], not_before=0)
        frame = ledger.lookup_frame([("S", "861"), ("S", "862")], not_before=0)
    assert got[("S", "861")].status == "ok" and got[("S", "861")].profile == Profile()
    assert got[("S", "862")].status == "no_profile" and got[("S", "862")].profile is None
    results = report.results_frame(frame, {("S", "863"): KeyOutcome.answered(ans, attempts=1)})
    by_number = {r["number"]: r for r in results.iter_rows(named=True)}
    assert by_number["861"]["r_status"] == by_number["863"]["r_status"] == "ok"
    assert by_number["862"]["r_status"] == "no_profile"
    for number in ("861", "863"):
        row = by_number[number]
        assert row["bp_websites"] == []
        assert all(row[c] is None for c in ("bp_about", "bp_address", "bp_description",
                                            "bp_vertical", "bp_email", "bp_profile_picture_url"))


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


# -- end to end: the emulator's "Data": {} numbers, through a run and its cache ----------


def test_an_empty_data_object_is_ok_end_to_end_and_from_the_cache(
    emulator, creds, tmp_path
) -> None:
    import polars as pl
    from click.testing import CliRunner

    from enrich.cli import cli
    from enrich.emulator import data_on_wire, no_profile_form

    numbers = [f"86138{i:08d}" for i in range(200)]
    empty = next(n for n in numbers if no_profile_form(n) == "empty")
    null = next(n for n in numbers if no_profile_form(n) == "null")
    assert data_on_wire("S1", empty) == {} and data_on_wire("S1", null) is None
    src = tmp_path / "in.csv"
    src.write_text(f"phone\n+{empty}\n+{null}\n", encoding="utf-8")
    server = emulator()
    args = ["run", str(src), "-o", str(tmp_path / "out.parquet"), "--endpoint", server.url,
            "--summary", str(tmp_path / "run.json"), "--cust-space-id", "S1",
            "--cache", str(tmp_path / "ledger.sqlite3")]
    for calls in (2, 0):  # a cold run, then the same answers from the cache
        res = CliRunner().invoke(cli, args, catch_exceptions=False)
        assert res.exit_code == 0, res.stderr
        out = pl.read_parquet(tmp_path / "out.parquet")
        assert out["bp_status"].to_list() == ["ok", "no_profile"]
        first = out.row(0, named=True)
        assert first["bp_websites"] == [] and first["bp_request_id"]
        assert all(first[c] is None for c in ("bp_about", "bp_address", "bp_description",
                                              "bp_vertical", "bp_email",
                                              "bp_profile_picture_url", "bp_error_code"))
        summary = json.loads((tmp_path / "run.json").read_text())
        assert (summary["ok"], summary["no_profile"], summary["api_calls"]) == (1, 1, calls)
