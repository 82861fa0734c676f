"""The scripts a user would write with the official SDK instead of enrich (bench/run.py).

``seq``: one ``query_phone_business_profile`` after another.
``async``: ``asyncio.gather`` over every number, each call behind
``aiolimiter.AsyncLimiter(10, 1)``, via ``query_phone_business_profile_with_options_async``.
Neither retries: a throttled or failed call is a lost row, as in the plain script.
Prints one JSON line: counts and the calling time (imports excluded).

    python bench/_sdk_client.py --port PORT --mode seq|async --numbers-file F [--cust ID]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from pathlib import Path

from aiolimiter import AsyncLimiter
from alibabacloud_cams20200606 import models
from alibabacloud_cams20200606.client import Client
from alibabacloud_tea_openapi.models import Config
from darabonba.runtime import RuntimeOptions


def _client(port: int, ak: str, secret: str) -> Client:
    return Client(
        Config(
            access_key_id=ak,
            access_key_secret=secret,
            endpoint=f"127.0.0.1:{port}",
            protocol="http",
            read_timeout=10_000,
            connect_timeout=2_000,
        )
    )


def _code(exc: BaseException) -> str:
    return str(getattr(exc, "code", None) or type(exc).__name__)


def run_seq(client: Client, cust: str, phones: list[str], outcome: Counter[str]) -> None:
    for phone in phones:
        try:
            client.query_phone_business_profile(
                models.QueryPhoneBusinessProfileRequest(cust_space_id=cust, phone_number=phone)
            )
            outcome["OK"] += 1
        except Exception as exc:  # the user's script records the failure and carries on
            outcome[_code(exc)] += 1


async def run_async(client: Client, cust: str, phones: list[str], outcome: Counter[str]) -> None:
    limiter = AsyncLimiter(10, 1)
    runtime = RuntimeOptions(read_timeout=10_000, connect_timeout=2_000)

    async def one(phone: str) -> None:
        async with limiter:
            try:
                await client.query_phone_business_profile_with_options_async(
                    models.QueryPhoneBusinessProfileRequest(cust_space_id=cust, phone_number=phone),
                    runtime,
                )
                outcome["OK"] += 1
            except Exception as exc:
                outcome[_code(exc)] += 1

    await asyncio.gather(*(one(p) for p in phones))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mode", choices=["seq", "async"], required=True)
    parser.add_argument("--numbers-file", type=Path, required=True)
    parser.add_argument("--cust", default="bench-sdk")
    parser.add_argument("--ak", default="testAKID")
    parser.add_argument("--secret", default="testSecret")
    args = parser.parse_args()
    phones = args.numbers_file.read_text().split()
    client = _client(args.port, args.ak, args.secret)
    outcome: Counter[str] = Counter()
    started = time.monotonic()
    if args.mode == "seq":
        run_seq(client, args.cust, phones, outcome)
    else:
        asyncio.run(run_async(client, args.cust, phones, outcome))
    elapsed = time.monotonic() - started
    print(json.dumps({"numbers": len(phones), "elapsed_s": elapsed, "outcome": dict(outcome)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
