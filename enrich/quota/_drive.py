"""A tiny member for tests and benchmarks: take slots from a store, print when each came.

::

    python -m enrich.quota._drive --store quota.sqlite3 --budget AK --rate 10 \\
        --tasks 4 --start-at 1733150000.5 --duration 3

prints ``ready <member id>`` once joined (with ``--start-at stdin`` it then reads
the epoch time to begin from its standard input, so a test starts every member
together whatever their start-up took), then one line per slot, the
``time.time()`` at which a request would have been sent (flushed at once, so a
``kill -9`` loses none), then ``done <slots> <seconds waited>``. A lost store
prints ``error <line>`` and exits 1; an unreachable one at the start prints the
line on stderr and exits 1.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from enrich.errors import EnrichError
from enrich.quota import Member, QuotaEvent, QuotaLostError, QuotaParams, open_quota


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m enrich.quota._drive")
    parser.add_argument("--store", required=True, help="--quota STORE")
    parser.add_argument("--cache-dir", type=Path, default=Path("."))
    parser.add_argument("--budget", required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--tasks", type=int, default=4, help="requests waiting at once")
    parser.add_argument("--start-at", default="0", help="epoch time to begin, or stdin")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds of asking")
    parser.add_argument("--count", type=int, default=0, help="stop after this many slots")
    parser.add_argument("--host", default=None)
    parser.add_argument("--input", default="drive")
    parser.add_argument("--lost-timeout", type=float, default=None)
    return parser


def _event(event: QuotaEvent) -> None:
    print(f"event {event.kind} {event.message}", file=sys.stderr, flush=True)


async def _worker(member: Member, *, stop_at: float, left: list[int]) -> None:
    while time.time() < stop_at and left[0] != 0:
        left[0] -= 1
        await member.acquire()
        print(f"{time.time():.6f}", flush=True)


async def _main(args: argparse.Namespace) -> int:
    params = QuotaParams()
    if args.lost_timeout is not None:
        params = QuotaParams(lost_timeout_s=args.lost_timeout)
    quota = open_quota(args.store, cache_dir=args.cache_dir, params=params, on_event=_event)
    if quota is None:
        print("the store is off", file=sys.stderr)
        return 2
    async with quota, quota.join(args.budget, rate=args.rate, host=args.host,
                                 input=args.input) as member:
        print(f"ready {member.id}", flush=True)
        start_at = args.start_at
        if start_at == "stdin":  # in a thread: the heartbeat goes on meanwhile
            start_at = await asyncio.to_thread(sys.stdin.readline)
        if float(start_at) > time.time():
            await asyncio.sleep(float(start_at) - time.time())
        stop_at = time.time() + args.duration
        left = [args.count or -1]
        try:
            await asyncio.gather(*(_worker(member, stop_at=stop_at, left=left)
                                   for _ in range(args.tasks)))
        except QuotaLostError as err:
            print(f"error {err}", flush=True)
            return 1
        print(f"done {member.granted} {member.waited_s:.3f}", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return asyncio.run(_main(args))
    except EnrichError as err:
        print(str(err), file=sys.stderr)
        return err.exit_code


if __name__ == "__main__":
    sys.exit(main())
