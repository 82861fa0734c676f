"""Throughput of the CAMS emulator: correctly signed requests per second.

The emulator serves in this process (a background thread, no latency, no
limit, no faults); an aiohttp load client in a separate process sends a
bounded number of ACS3-signed requests (distinct nonces) with a fixed
concurrency, then both report. Prints requests/s as the client saw them.

    .venv/bin/python bench/bench_emulator.py [--requests 20000] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import multiprocessing
import os
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from enrich.emulator import EmulatorConfig, EmulatorServer

AK, SECRET = "testAKID", "testSecret"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
SIGNED = "host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version"


def _signed_request(host: str, phone: str) -> tuple[str, dict[str, str]]:
    """The query and headers of one ACS3-signed call (digits-only values need no escaping)."""
    query = f"CustSpaceId=bench&PhoneNumber={phone}"
    date = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    nonce = os.urandom(16).hex()
    headers = {
        "host": host,
        "x-acs-action": "QueryPhoneBusinessProfile",
        "x-acs-content-sha256": EMPTY_SHA256,
        "x-acs-date": date,
        "x-acs-signature-nonce": nonce,
        "x-acs-version": "2020-06-06",
    }
    canonical = (
        f"POST\n/\n{query}\n"
        + "".join(f"{name}:{headers[name]}\n" for name in SIGNED.split(";"))
        + f"\n{SIGNED}\n{EMPTY_SHA256}"
    )
    to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()
    signature = hmac.new(SECRET.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = (
        f"ACS3-HMAC-SHA256 Credential={AK},SignedHeaders={SIGNED},Signature={signature}"
    )
    return query, headers


async def _load(url: str, total: int, concurrency: int, deadline_s: float) -> dict[str, object]:
    import aiohttp
    from yarl import URL

    host = url.removeprefix("http://")
    statuses: Counter[int] = Counter()
    issued = 0
    stop_at = time.monotonic() + deadline_s

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal issued
        while issued < total and time.monotonic() < stop_at:
            issued += 1
            query, headers = _signed_request(host, f"8613{issued:09d}")
            async with session.post(URL(f"{url}/?{query}", encoded=True), headers=headers) as resp:
                await resp.read()
                statuses[resp.status] += 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    done = sum(statuses.values())
    return {"requests": done, "elapsed_s": elapsed, "statuses": dict(statuses)}


def _client_process(url: str, total: int, concurrency: int, deadline_s: float, out: object) -> None:
    result = asyncio.run(_load(url, total, concurrency, deadline_s))
    out.put(result)  # type: ignore[attr-defined]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--deadline-s", type=float, default=60.0)
    args = parser.parse_args()

    context = multiprocessing.get_context("spawn")
    with EmulatorServer(EmulatorConfig(rate_limit=0)) as emulator:
        queue = context.Queue()
        client = context.Process(
            target=_client_process,
            args=(emulator.url, args.requests, args.concurrency, args.deadline_s, queue),
        )
        client.start()
        result = queue.get(timeout=args.deadline_s + 30)
        client.join(10)
        codes = emulator.stats.codes
    rate = result["requests"] / result["elapsed_s"]
    print(
        f"emulator: {result['requests']} signed requests in {result['elapsed_s']:.2f} s "
        f"= {rate:,.0f} requests/s (concurrency {args.concurrency}); "
        f"HTTP statuses {result['statuses']}; emulator codes {dict(codes)}"
    )
    return 0 if set(codes) == {"OK"} else 1


if __name__ == "__main__":
    raise SystemExit(main())
