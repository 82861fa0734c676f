"""The official Alibaba Cloud SDK, pointed at the emulator, gets the emulator's truth."""

from __future__ import annotations

import asyncio

import pytest
from alibabacloud_cams20200606 import models
from alibabacloud_cams20200606.client import Client
from alibabacloud_tea_openapi.exceptions import (
    ClientException,
    ServerException,
    ThrottlingException,
)
from alibabacloud_tea_openapi.models import Config

from enrich.emulator import (
    THROTTLE_RETRY_AFTER_MS,
    EmulatorServer,
    data_on_wire,
    no_profile_form,
    profile_for,
)

CANDIDATES = [f"8613{i:09d}" for i in range(100, 400)]


def _numbers() -> list[str]:
    """24 numbers covering every profile shape: no profile (null and {}), full, partial."""
    null = [n for n in CANDIDATES if no_profile_form(n) == "null"][:3]
    empty = [n for n in CANDIDATES if no_profile_form(n) == "empty"][:3]
    full, partial = [], []
    for number in CANDIDATES:
        profile = profile_for("space", number)
        if profile is None:
            continue
        is_full = len(profile) == 7 and all(profile.values())
        (full if is_full else partial).append(number)
    return null + empty + full[:9] + partial[:9]


NUMBERS = _numbers()


def sdk(
    server: EmulatorServer,
    *,
    key: str = "testAKID",
    secret: str = "testSecret",
    token: str | None = None,
    v1: bool = False,
) -> Client:
    config = Config(
        access_key_id=key,
        access_key_secret=secret,
        security_token=token,
        endpoint=f"127.0.0.1:{server.port}",
        protocol="http",
        read_timeout=5000,
        connect_timeout=2000,
    )
    if v1:
        config.signature_algorithm = "v2"  # the SDK's switch to the V1 RPC signature
    return Client(config)


def query(client: Client, cust: str, phone: str) -> models.QueryPhoneBusinessProfileResponse:
    return client.query_phone_business_profile(
        models.QueryPhoneBusinessProfileRequest(cust_space_id=cust, phone_number=phone)
    )


def sdk_data(response: models.QueryPhoneBusinessProfileResponse) -> dict[str, object] | None:
    data = response.body.data
    return None if data is None else data.to_map()


def test_numbers_cover_every_profile_shape() -> None:
    assert len(NUMBERS) == 24


@pytest.mark.parametrize("phone", NUMBERS)
def test_sdk_gets_the_true_profile(server: EmulatorServer, phone: str) -> None:
    response = query(sdk(server), "space-sdk", phone)
    assert response.status_code == 200
    assert response.body.code == "OK"
    assert response.body.success is True
    assert response.body.request_id == response.headers["x-acs-request-id"]
    assert sdk_data(response) == data_on_wire("space-sdk", phone)
    assert (sdk_data(response) or None) == profile_for("space-sdk", phone)
    assert server.stats.successes[("space-sdk", phone)] >= 1


def test_sdk_async_path(server: EmulatorServer) -> None:
    client = sdk(server)

    async def run() -> list[models.QueryPhoneBusinessProfileResponse]:
        return [
            await client.query_phone_business_profile_async(
                models.QueryPhoneBusinessProfileRequest(cust_space_id="space-async", phone_number=p)
            )
            for p in NUMBERS[:4]
        ]

    for phone, response in zip(NUMBERS[:4], asyncio.run(run()), strict=True):
        assert sdk_data(response) == data_on_wire("space-async", phone)


def test_sdk_with_sts_token(server: EmulatorServer) -> None:
    response = query(sdk(server, token="testSTSToken"), "space-sts", NUMBERS[10])
    assert sdk_data(response) == data_on_wire("space-sts", NUMBERS[10])


@pytest.mark.parametrize("token", [None, "testSTSToken"])
def test_sdk_with_the_v1_signature(server: EmulatorServer, token: str | None) -> None:
    response = query(sdk(server, token=token, v1=True), "space v1/+*", NUMBERS[11])
    assert sdk_data(response) == data_on_wire("space v1/+*", NUMBERS[11])


def test_sdk_special_characters(server: EmulatorServer) -> None:
    cust, phone = "a b+c/d~e*f:g 空间-é", "+86 138-0000_1234.5!'()"
    response = query(sdk(server), cust, phone)
    assert sdk_data(response) == data_on_wire(cust, phone)


@pytest.mark.parametrize(
    ("cust", "code"),
    [
        ("err-Product.Unsubscript", "Product.Unsubscript"),
        ("err-Ram.PermissionDeny", "Ram.PermissionDeny"),
        ("err-System.LimitControl", "System.LimitControl"),
        ("foreign-space", "Unknown.ResourceOwnerId"),
        ("err-Unknown.ResourceOwnerId", "Unknown.ResourceOwnerId"),
    ],
)
@pytest.mark.parametrize("phone", ["8613800001234", "8613800001237"])  # upper/lower-case keys
def test_documented_errors_reach_the_sdk(
    server: EmulatorServer, cust: str, code: str, phone: str
) -> None:
    with pytest.raises(ClientException) as caught:
        query(sdk(server), cust, phone)
    assert caught.value.code == code
    assert caught.value.status_code == 400
    assert caught.value.request_id not in (None, "None")


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("Product.Unsubscript", 400),
        ("Ram.PermissionDeny", 400),
        ("InvalidAccessKeyId.NotFound", 404),
    ],
)
def test_force_code_reaches_the_sdk(emulator, code: str, status: int) -> None:
    forced = emulator(force_code=code)
    with pytest.raises(ClientException) as caught:
        query(sdk(forced), "space", "8613800001234")
    assert (caught.value.code, caught.value.status_code) == (code, status)


def test_wrong_key_is_not_found(server: EmulatorServer) -> None:
    with pytest.raises(ClientException) as caught:
        query(sdk(server, key="wrongAKID"), "space", "8613800001234")
    assert caught.value.code == "InvalidAccessKeyId.NotFound"
    assert caught.value.status_code == 404


@pytest.mark.parametrize("v1", [False, True])
def test_wrong_secret_does_not_match(server: EmulatorServer, v1: bool) -> None:
    with pytest.raises(ClientException) as caught:
        query(sdk(server, secret="wrongSecret", v1=v1), "space", "8613800001234")
    assert caught.value.code == "SignatureDoesNotMatch"
    # the message carries the server's string to sign: V1's starts "POST&%2F&"
    assert ("POST&%2F&" in caught.value.message) is v1


def test_the_real_limit_reaches_the_sdk(emulator) -> None:
    client = sdk(emulator(rate_limit=2))
    query(client, "space", "8613800001234")
    query(client, "space", "8613800001234")
    with pytest.raises(ClientException) as caught:
        query(client, "space", "8613800001234")
    assert caught.value.code == "System.LimitControl"


def test_throttle_fault_is_a_throttling_exception(server: EmulatorServer) -> None:
    with pytest.raises(ThrottlingException) as caught:
        query(sdk(server), "fault-throttle-1", "8613800001234")
    assert caught.value.code == "System.LimitControl"
    assert caught.value.retry_after == THROTTLE_RETRY_AFTER_MS


@pytest.mark.parametrize("kind", ["xml_error", "http503_json"])
def test_server_errors_are_server_exceptions(server: EmulatorServer, kind: str) -> None:
    with pytest.raises(ServerException) as caught:
        query(sdk(server), f"fault-{kind}-1", "8613800001234")
    assert caught.value.code == "ServiceUnavailable"
    assert caught.value.status_code == 503
