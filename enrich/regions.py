"""The regions the official CAMS SDK knows, and a warning for a ``--region-id`` it does not.

The SDK (``alibabacloud-cams20200606``, a test dependency only) keeps an endpoint
map in its ``Client`` (``_endpoint_map``); any other region gets the regional rule
``cams.<region>.aliyuncs.com``, which may or may not exist. The map is copied
here as data; ``tests/test_credentials_regions.py`` checks it against the SDK's.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from enrich.endpoints import endpoint_for_region

__all__ = ["SDK_ENDPOINT_MAP", "region_warning"]

#: ``alibabacloud_cams20200606.client.Client._endpoint_map`` (5.3.1): region → host.
SDK_ENDPOINT_MAP: Final[Mapping[str, str]] = MappingProxyType(
    {
        "ap-southeast-1": "cams.ap-southeast-1.aliyuncs.com",
    }
)


def region_warning(region_id: str) -> str | None:
    """None for a region in the SDK's endpoint map, else one line naming the endpoint used.

    A malformed id raises ``UsageError``, as :func:`enrich.endpoints.endpoint_for_region` does.
    """
    endpoint = endpoint_for_region(region_id)
    if region_id in SDK_ENDPOINT_MAP:
        return None
    known = ", ".join(sorted(SDK_ENDPOINT_MAP))
    return (
        f"--region-id {region_id} is not in the official CAMS SDK's endpoint map ({known}); "
        f"using {endpoint}, which may not exist: check the region, or pass --endpoint"
    )
