"""enrich's own client and the official SDK get the same answers from the emulator."""

from __future__ import annotations

import asyncio

import pytest
from alibabacloud_cams20200606 import models
from alibabacloud_cams20200606.client import Client
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_tea_openapi.models import Config

from enrich.client import CamsClient, Profile
from enrich.errors import CallError
from enrich.signing import Credentials

NUMBERS = [f"86139{i:08d}" for i in range(30)] + ["447911123457", "14155550107"]
ERRORS = ["Product.Unsubscript", "Ram.PermissionDeny", "System.LimitControl",
          "Unknown.ResourceOwnerId"]


def sdk_client(url_port: int) -> Client:
    return Client(Config(access_key_id="testAKID", access_key_secret="testSecret",
                         endpoint=f"127.0.0.1:{url_port}", protocol="http",
                         read_timeout=5000, connect_timeout=2000))


def sdk_profile(data: models.QueryPhoneBusinessProfileResponseBodyData | None) -> Profile | None:
    """The SDK's Data, cleaned by the rules SPEC.md gives for the bp_* columns.

    A Data model whose fields are all empty is an empty profile (``ok``), not None.
    """
    if data is None:
        return None
    m = data.to_map()

    def clean(v: object) -> str | None:
        return (v.strip() or None) if isinstance(v, str) else None

    sites = tuple(s.strip() for s in m.get("Websites") or [] if s and s.strip())
    fields = {a: clean(m.get(k)) for k, a in (
        ("About", "about"), ("Address", "address"), ("Description", "description"),
        ("Vertical", "vertical"), ("Email", "email"), ("ProfilePictureUrl", "profile_picture_url"))}
    return Profile(websites=sites, **fields)


async def ours(url: str, pairs: list[tuple[str, str]]) -> list[Profile | CallError | None]:
    out: list[Profile | CallError | None] = []
    async with CamsClient(endpoint=url, credentials=Credentials("testAKID", "testSecret")) as c:
        for space, number in pairs:
            try:
                out.append((await c.query(space, number)).profile)
            except CallError as err:
                out.append(err)
    return out


def test_same_data_for_every_number(emulator) -> None:
    server = emulator()
    client = sdk_client(server.port)
    theirs = []
    for number in NUMBERS:
        resp = client.query_phone_business_profile(models.QueryPhoneBusinessProfileRequest(
            cust_space_id="S1", phone_number=number))
        assert resp.body.code == "OK"
        theirs.append(sdk_profile(resp.body.data))
    mine = asyncio.run(ours(server.url, [("S1", n) for n in NUMBERS]))
    assert mine == theirs
    assert sum(p is None for p in mine) >= 1 and sum(p is not None for p in mine) >= 20
    assert Profile() in mine  # "Data": {} — an empty profile for both, not "no profile"


@pytest.mark.parametrize("code", ERRORS)
def test_same_error_codes(emulator, code: str) -> None:
    server = emulator()
    space = "foreign-1" if code == "Unknown.ResourceOwnerId" else f"err-{code}"
    with pytest.raises(ClientException) as sdk_err:
        sdk_client(server.port).query_phone_business_profile(
            models.QueryPhoneBusinessProfileRequest(cust_space_id=space,
                                                    phone_number="8613900000001"))
    (mine,) = asyncio.run(ours(server.url, [(space, "8613900000001")]))
    assert isinstance(mine, CallError)
    assert sdk_err.value.code == mine.code == code
    assert mine.http_status == 400
    assert mine.request_id
