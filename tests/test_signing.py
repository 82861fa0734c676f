"""The signer reproduces every signature the official SDK produced."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import parse_qsl

import pytest

from enrich.errors import InputError
from enrich.signing import (
    Credentials,
    acs3_signature,
    canonical_query,
    canonical_request,
    credentials_from_env,
    sign_request,
    v1_signature,
)

DATA = Path(__file__).parent / "data"
GOLDEN = json.loads((DATA / "golden_vectors.json").read_text())["vectors"]
CAPTURED = json.loads((DATA / "captured_requests.json").read_text())
SECRET = CAPTURED["access_key_secret_used"]
AUTH_RE = re.compile(r"ACS3-HMAC-SHA256 Credential=([^,]+),SignedHeaders=([^,]+),Signature=(\w+)")


@pytest.mark.parametrize("vec", [v for v in GOLDEN if v["algorithm"] == "ACS3-HMAC-SHA256"],
                         ids=lambda v: v["name"])
def test_golden_acs3_canonical_request_and_authorization(vec: dict) -> None:
    text, _ = canonical_request(method=vec["method"], path=vec["path"], query=vec["query"],
                                headers=vec["signed_headers"],
                                payload_hash=vec["signed_headers"]["x-acs-content-sha256"])
    assert text == vec["canonical_request"]
    h = vec["signed_headers"]
    creds = Credentials(vec["access_key_id"], vec["secret"], h.get("x-acs-security-token"))
    extra = {k: v for k, v in h.items() if k.startswith("x-acs-retry")}
    signed = sign_request(creds, host=h["host"], query=vec["query"], now=1704164645.0,
                          nonce=h["x-acs-signature-nonce"], user_agent=h["user-agent"],
                          extra_headers=extra)
    assert signed.headers["x-acs-date"] == h["x-acs-date"]
    assert signed.headers["Authorization"] == vec["authorization"]


@pytest.mark.parametrize("vec", [v for v in GOLDEN if v["algorithm"] == "V1-HMAC-SHA1"],
                         ids=lambda v: v["name"])
def test_golden_v1_signature(vec: dict) -> None:
    assert v1_signature(vec["secret"], vec["params"], method=vec["method"]) == vec["signature"]


def _captured(kind: str) -> list[dict]:
    out = []
    for r in CAPTURED["requests"]:
        is_v1 = "Signature=" in r["raw_query"] and "Action=" in r["raw_query"]
        if (kind == "v1") == is_v1:
            out.append(r)
    return out


@pytest.mark.parametrize("req", _captured("acs3"), ids=lambda r: f"{r['index']}-{r['label']}")
def test_every_captured_acs3_request_is_reproduced(req: dict) -> None:
    headers = {k.lower(): v for k, v in req["headers"]}
    ak, signed_names, signature = AUTH_RE.fullmatch(headers["authorization"]).groups()
    assert ak == CAPTURED["access_key_id"]
    query = dict(parse_qsl(req["raw_query"], keep_blank_values=True))
    signed_headers = {n: headers[n] for n in signed_names.split(";")}
    text, names = canonical_request(method=req["method"], path="/", query=query,
                                    headers=signed_headers,
                                    payload_hash=headers["x-acs-content-sha256"])
    assert names == signed_names
    assert acs3_signature(SECRET, text) == signature
    # and through the full signer, from the same inputs
    token = headers.get("x-acs-security-token")
    extra = {k: v for k, v in signed_headers.items() if k.startswith("x-acs-retry")}
    import calendar
    import time
    now = calendar.timegm(time.strptime(headers["x-acs-date"], "%Y-%m-%dT%H:%M:%SZ"))
    full = sign_request(Credentials(ak, SECRET, token), host=headers["host"], query=query,
                        now=now, nonce=headers["x-acs-signature-nonce"],
                        user_agent=headers["user-agent"], extra_headers=extra)
    assert full.headers["Authorization"] == headers["authorization"]


@pytest.mark.parametrize("req", _captured("v1"), ids=lambda r: f"{r['index']}-{r['label']}")
def test_every_captured_v1_request_is_reproduced(req: dict) -> None:
    params = dict(parse_qsl(req["raw_query"], keep_blank_values=True))
    expected = params.pop("Signature")
    assert v1_signature(SECRET, params, method=req["method"]) == expected


def test_all_41_captures_are_covered() -> None:
    assert len(_captured("acs3")) + len(_captured("v1")) == 41


def test_a_wrong_secret_changes_the_signature() -> None:
    vec = GOLDEN[0]
    text = vec["canonical_request"]
    assert acs3_signature("testSecret", text) != acs3_signature("testSecreT", text)


def test_control_characters_are_percent_encoded() -> None:
    q = canonical_query({"PhoneNumber": "86\r\n138", "CustSpaceId": "a\tb"})
    assert q == "CustSpaceId=a%09b&PhoneNumber=86%0D%0A138"


def test_credentials_from_env_names_what_is_missing_and_hides_the_secret() -> None:
    with pytest.raises(InputError) as err:
        credentials_from_env({"ALIBABA_CLOUD_ACCESS_KEY_ID": "AK"})
    assert str(err.value) == (
        "missing credentials: set ALIBABA_CLOUD_ACCESS_KEY_SECRET in the environment "
        "(or use --mock to try the local emulator)"
    )
    creds = credentials_from_env({"ALIBABA_CLOUD_ACCESS_KEY_ID": "AK",
                                  "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "s3cr3t-value"})
    assert "s3cr3t-value" not in repr(creds)
