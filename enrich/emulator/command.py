"""``enrich emulator``: the local CAMS emulator as a foreground server.

The main CLI registers it with ``cli.add_command(emulator_command, "emulator")``.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal

import click

from enrich.emulator.config import ALL_FAULTS, EmulatorConfig
from enrich.emulator.server import serve_forever

__all__ = ["emulator_command", "parse_keys"]

_HELP = """Run the local CAMS emulator (QueryPhoneBusinessProfile) until Ctrl-C / SIGTERM.

It verifies signatures like the real service (ACS3-HMAC-SHA256 and V1,
STS tokens too), limits each AccessKeyId to --rate-limit requests in any
sliding second (System.LimitControl beyond), gives every number a
deterministic profile (about 17% with none), and prints its URL and the
key pair(s) to export on start.

\b
Errors on demand, by CustSpaceId:
  foreign...           Unknown.ResourceOwnerId   e.g. --cust-space-id foreign-1
  err-<Code>           that error, always        e.g. err-Ram.PermissionDeny,
                                                 err-Product.Unsubscript,
                                                 err-System.LimitControl
  fault-<kind>-<n>     the first n requests per number get that fault,
                       then success              e.g. fault-http503_json-2
  anything else        a normal answer
or for everything: --force-code CODE (e.g. --force-code Product.Unsubscript).

\b
Fault kinds (--faults, at --fault-rate, reproducible with --seed):
  http500_html     500 with an HTML gateway page
  http503_json     503 ServiceUnavailable (JSON)
  http429          429 Throttling.User (JSON)
  throttle         400 System.LimitControl with x-acs-retry-after: 200 (ms)
  truncated_json   200, JSON body cut in the middle
  garbage          200, bytes that are not JSON
  code_not_ok      200, JSON with Code InternalError
  xml_error        503, text/xml <Error> body
  drop             connection closed without an answer
  hang             answer only after --hang-s seconds (default 60)

\b
Examples:
  enrich emulator --port 8765
  enrich emulator --port 8765 --fault-rate 0.1 --faults http503_json,drop --seed 7
  enrich emulator --keys AK1:secret1,AK2:secret2 --rate-limit 5 --latency-ms 80 --jitter-ms 20
then, in another shell, with the printed exports:
  enrich run phones.csv --endpoint http://127.0.0.1:8765 --cust-space-id demo
"""


def parse_keys(text: str) -> dict[str, str]:
    """``"AK:SECRET[,AK2:SECRET2]"`` → ``{AK: SECRET, ...}``; ``ValueError`` when malformed."""
    keys: dict[str, str] = {}
    for item in text.split(","):
        access_key_id, sep, secret = item.strip().partition(":")
        if not sep or not access_key_id or not secret:
            raise ValueError(f"expected AK:SECRET, got {item.strip()!r}")
        keys[access_key_id] = secret
    return keys


def _parse_faults(text: str) -> tuple[str, ...]:
    kinds = tuple(kind.strip() for kind in text.split(",") if kind.strip())
    unknown = [kind for kind in kinds if kind not in ALL_FAULTS]
    if unknown:
        raise ValueError(
            f"unknown fault kind(s) {', '.join(unknown)}; known: {', '.join(ALL_FAULTS)}"
        )
    return kinds


async def _serve(config: EmulatorConfig, host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await serve_forever(config, host=host, port=port, announce=click.echo)


@click.command("emulator", help=_HELP)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8765,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0: any free port).",
)
@click.option(
    "--keys",
    "keys_text",
    default="testAKID:testSecret",
    show_default=True,
    metavar="AK:SECRET[,...]",
    help="Accepted AccessKey pairs.",
)
@click.option(
    "--rate-limit",
    default=10.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Requests per second per AccessKeyId (sliding window); 0 = unlimited.",
)
@click.option(
    "--latency-ms",
    default=0.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Delay before every answer.",
)
@click.option(
    "--jitter-ms",
    default=0.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="± uniform jitter on the delay.",
)
@click.option(
    "--fault-rate",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Share of ordinary requests answered with a fault.",
)
@click.option(
    "--faults",
    "faults_text",
    default=",".join(ALL_FAULTS),
    metavar="KIND[,KIND...]",
    help="Fault kinds to draw from (default: all).",
)
@click.option(
    "--force-code", default=None, metavar="CODE", help="Answer every request with this error code."
)
@click.option(
    "--hang-s",
    default=60.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="How long a 'hang' fault holds its answer.",
)
@click.option(
    "--seed", default=0, show_default=True, type=int, help="Seed of the fault and jitter RNGs."
)
def emulator_command(
    *,
    host: str,
    port: int,
    keys_text: str,
    rate_limit: float,
    latency_ms: float,
    jitter_ms: float,
    fault_rate: float,
    faults_text: str,
    force_code: str | None,
    hang_s: float,
    seed: int,
) -> None:
    try:
        keys = parse_keys(keys_text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--keys") from None
    try:
        faults = _parse_faults(faults_text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--faults") from None
    try:
        config = EmulatorConfig(
            keys=keys,
            rate_limit=rate_limit,
            latency_s=latency_ms / 1000,
            jitter_s=jitter_ms / 1000,
            fault_rate=fault_rate,
            faults=faults,
            force_code=force_code or None,
            hang_s=hang_s,
            seed=seed,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        asyncio.run(_serve(config, host, port))
    except OSError as exc:
        raise click.ClickException(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}"
        ) from None
    click.echo("CAMS emulator stopped.", err=True)
