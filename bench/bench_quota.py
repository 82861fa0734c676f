"""The cost of a slot: how many slots per second one process takes from a quota store alone.

At ``--rate 10000`` (pace 9,750/s) the store, not the pace, is the limit, so the
figure is what a slot costs: one SQLite transaction in the member's thread, or one
Redis ``EVALSHA`` round trip to a redis-server on 127.0.0.1 (started here, from
``tests/redis_server.py``, unless ``--redis URL`` names one). Each store is measured
with one request waiting at a time (every slot is a transaction) and with
``--tasks`` waiting at once (as a run's workers do: the store may grant a short
batch per transaction). Targets (issue 12): >= 2,000/s on SQLite, >= 5,000/s on Redis.

    .venv/bin/python bench/bench_quota.py [--seconds 3] [--tasks 16] [--redis URL]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from enrich.quota import open_quota  # noqa: E402

RATE = 10_000.0
TARGETS = {"sqlite": 2_000, "redis": 5_000}


async def measure(spec: str, *, tasks: int, seconds: float) -> tuple[float, float]:
    """``(slots/s, mean µs a request waited)`` for ``tasks`` requests waiting at once."""
    quota = open_quota(spec, cache_dir=Path(tempfile.gettempdir()))
    assert quota is not None
    async with quota, quota.join("bench", rate=RATE, input="bench") as member:
        for _ in range(200):  # warm up: connection, script load, WAL
            await member.acquire()
        start = time.perf_counter()
        taken = member.granted

        async def worker() -> None:
            while time.perf_counter() - start < seconds:
                await member.acquire()

        await asyncio.gather(*(worker() for _ in range(tasks)))
        elapsed = time.perf_counter() - start
        slots = member.granted - taken
        return slots / elapsed, elapsed * tasks / slots * 1e6


def report(store: str, spec: str, *, tasks: int, seconds: float) -> None:
    for waiting in (1, tasks):
        rate, wait_us = asyncio.run(measure(spec, tasks=waiting, seconds=seconds))
        verdict = "met" if rate >= TARGETS[store] else "NOT met"
        print(f"{store:6} {waiting:3} waiting  {rate:8,.0f} slots/s  "
              f"({1e6 / rate:6.0f} µs a slot, {wait_us:7.0f} µs a request)  "
              f"target >= {TARGETS[store]:,}/s: {verdict}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--tasks", type=int, default=16)
    parser.add_argument("--redis", default=None, help="a running server (default: start one)")
    args = parser.parse_args()
    print(f"one process alone, --rate {RATE:,.0f} (pace {RATE * 0.975:,.0f}/s), "
          f"{args.seconds:g} s each, Python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory() as folder:
        report("sqlite", str(Path(folder) / "quota.sqlite3"), tasks=args.tasks,
               seconds=args.seconds)
        if args.redis:
            report("redis", args.redis, tasks=args.tasks, seconds=args.seconds)
            return
        from redis_server import RedisServer

        server = RedisServer(Path(folder) / "redis").start()
        try:
            report("redis", server.url, tasks=args.tasks, seconds=args.seconds)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
