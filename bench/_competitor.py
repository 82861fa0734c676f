"""A second process spending RATE requests/s of the same AccessKey (bench/run.py).

Starts one request every 1/RATE s on a fixed schedule (no catching up, no burst),
whatever the latency, until SIGTERM/SIGINT or --max-s; throttled answers are not
retried (the schedule simply goes on). Prints one JSON line with its counts.

    python bench/_competitor.py --endpoint URL [--rate 5] [--max-s 300]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from collections import Counter

from enrich.client import CamsClient
from enrich.errors import CallError
from enrich.signing import Credentials


async def main_async(endpoint: str, rate: float, max_s: float, ak: str, secret: str) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    outcome: Counter[str] = Counter()
    tasks: set[asyncio.Task[None]] = set()
    async with CamsClient(endpoint=endpoint, credentials=Credentials(ak, secret)) as client:

        async def one(i: int) -> None:
            try:
                await client.query("bench-competitor", f"86139{i:08d}")
                outcome["OK"] += 1
            except CallError as exc:
                outcome[exc.code] += 1

        started = loop.time()
        i = 0
        while not stop.is_set() and loop.time() - started < max_s:
            task = asyncio.ensure_future(one(i))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            i += 1
            with_delay = started + i / rate - loop.time()
            if with_delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), with_delay)
        elapsed = loop.time() - started
        if tasks:
            await asyncio.wait(tasks, timeout=15)
    print(
        json.dumps(
            {"sent": i, "elapsed_s": elapsed, "rate": i / elapsed, "outcome": dict(outcome)}
        ),
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--rate", type=float, default=5.0)
    parser.add_argument("--max-s", type=float, default=300.0)
    parser.add_argument("--ak", default="testAKID")
    parser.add_argument("--secret", default="testSecret")
    args = parser.parse_args()
    asyncio.run(main_async(args.endpoint, args.rate, args.max_s, args.ak, args.secret))
    return 0


if __name__ == "__main__":
    sys.exit(main())
