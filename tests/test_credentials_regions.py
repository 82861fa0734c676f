"""Regions outside the official SDK's endpoint map get a warning naming the endpoint used."""

from __future__ import annotations

import pytest
from alibabacloud_cams20200606.client import Client
from alibabacloud_tea_openapi.models import Config

from enrich.errors import UsageError
from enrich.regions import SDK_ENDPOINT_MAP, region_warning


def test_our_region_list_is_the_sdks_endpoint_map() -> None:
    client = Client(Config(access_key_id="a", access_key_secret="b", region_id="ap-southeast-1"))
    assert dict(SDK_ENDPOINT_MAP) == client._endpoint_map


@pytest.mark.parametrize("region", sorted(SDK_ENDPOINT_MAP))
def test_a_known_region_gets_no_warning(region: str) -> None:
    assert region_warning(region) is None


def test_an_unknown_region_is_a_warning_naming_the_endpoint() -> None:
    assert region_warning("cn-hangzhou") == (
        "--region-id cn-hangzhou is not in the official CAMS SDK's endpoint map "
        "(ap-southeast-1); using https://cams.cn-hangzhou.aliyuncs.com, which may not exist: "
        "check the region, or pass --endpoint"
    )


def test_the_sdk_uses_the_same_endpoint_for_an_unknown_region() -> None:
    client = Client(Config(access_key_id="a", access_key_secret="b", region_id="cn-hangzhou"))
    assert client._endpoint == "cams.cn-hangzhou.aliyuncs.com"
    warning = region_warning("cn-hangzhou")
    assert warning is not None and f"https://{client._endpoint}," in warning


def test_a_malformed_region_is_still_a_usage_error() -> None:
    with pytest.raises(UsageError):
        region_warning("Cn Hangzhou")
