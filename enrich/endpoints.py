"""Endpoints: the public one of a region, and which URLs are allowed (pure, no aiohttp).

``enrich check`` needs these (a loopback endpoint picks its own cache) without
importing the HTTP client.
"""

from __future__ import annotations

import ipaddress
import re

from yarl import URL

from enrich.errors import UsageError

__all__ = ["endpoint_for_region", "is_loopback", "validate_endpoint"]


def is_loopback(host: str | None) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1."""
    if not host:
        return False
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def endpoint_for_region(region_id: str) -> str:
    """The public endpoint of a region: ``https://cams.<region>.aliyuncs.com``."""
    if not re.fullmatch(r"[a-z0-9-]+", region_id):
        raise UsageError(f"--region-id {region_id!r} is not a region id such as ap-southeast-1")
    return f"https://cams.{region_id}.aliyuncs.com"


def validate_endpoint(endpoint: str) -> URL:
    """Parse ``--endpoint``; plain http is refused unless the host is loopback."""
    url = URL(endpoint.strip())
    if url.scheme not in ("http", "https") or not url.host:
        raise UsageError(
            f"--endpoint {endpoint!r} is not an http(s) URL such as https://cams.ap-southeast-1.aliyuncs.com"
        )
    if url.scheme == "http" and not is_loopback(url.host):
        raise UsageError(
            f"--endpoint {endpoint!r} uses plain http to a non-loopback host; use https "
            "(http is allowed only for 127.0.0.1/localhost)"
        )
    return url.with_path("/").with_query(None).with_fragment(None)
