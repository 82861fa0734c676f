"""Running the emulator: in a background thread (tests, ``--mock``) or in the foreground."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Final

from aiohttp import web

from enrich.emulator.app import STATS_KEY, make_app
from enrich.emulator.config import EmulatorConfig
from enrich.emulator.stats import EmulatorStats
from enrich.emulator.sts import CREDENTIALS_PATH

__all__ = ["EmulatorServer", "serve_forever"]

#: Backstop for aiohttp's wait on in-flight handlers at shutdown (hangs are released at once).
_SHUTDOWN_TIMEOUT_S: Final = 1.0
_START_TIMEOUT_S: Final = 10.0


async def _start(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=_SHUTDOWN_TIMEOUT_S)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound = runner.addresses[0][1]
    return runner, int(bound)


def _url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


class EmulatorServer:
    """The emulator serving in a background thread with its own event loop.

    ::

        with EmulatorServer(EmulatorConfig(rate_limit=0)) as emulator:
            call(emulator.url)            # "http://127.0.0.1:<port>"
            assert emulator.stats.successes[("space", "8613800001234")] == 1

    ``port=0`` picks a free port. :meth:`stop` returns within about a second
    even with ``hang`` faults in flight (they are closed unanswered).
    """

    def __init__(
        self, config: EmulatorConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.config = config if config is not None else EmulatorConfig()
        self.host = host
        self._port = port
        self._app = make_app(self.config)
        self.stats: EmulatorStats = self._app[STATS_KEY]
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def port(self) -> int:
        """The bound port (after :meth:`start`)."""
        return self._port

    @property
    def url(self) -> str:
        """``http://<host>:<port>``, the endpoint to give a client."""
        if self._thread is None:
            raise RuntimeError("EmulatorServer.url is known only after start()")
        return _url(self.host, self._port)

    def credentials_uri(self, **query: str | float) -> str:
        """Its credentials URI (STS keys): ``credentials_uri(lifetime=3, fault="revoked-1")``."""
        tail = "&".join(f"{name}={value}" for name, value in query.items())
        return f"{self.url}{CREDENTIALS_PATH}" + (f"?{tail}" if tail else "")

    def start(self) -> EmulatorServer:
        """Bind and serve in a daemon thread; returns once requests are accepted."""
        if self._thread is not None:
            raise RuntimeError("EmulatorServer can be started once")
        self._thread = threading.Thread(target=self._run, name="cams-emulator", daemon=True)
        self._thread.start()
        if not self._ready.wait(_START_TIMEOUT_S):
            raise RuntimeError("the CAMS emulator did not start within 10 s")
        if self._error is not None:
            self._thread.join()
            raise self._error
        return self

    def stop(self) -> None:
        """Stop serving, release hanging requests, and join the thread."""
        thread, loop, stop = self._thread, self._loop, self._stop
        if thread is None or loop is None or stop is None or not thread.is_alive():
            return
        loop.call_soon_threadsafe(stop.set)
        thread.join(_START_TIMEOUT_S)

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to start() when it happens early
            if not self._ready.is_set():
                self._error = exc
                self._ready.set()
            else:  # pragma: no cover - a crash after start has nowhere better to go
                raise

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        runner, self._port = await _start(self._app, self.host, self._port)
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await runner.cleanup()


async def serve_forever(
    config: EmulatorConfig,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    announce: Callable[[str], None] = print,
) -> None:
    """Serve the emulator on ``host:port`` until cancelled (the ``enrich emulator`` command).

    Once listening, calls ``announce`` once per line with the URL, the key
    pair(s) to export and an example ``enrich run`` line.
    """
    runner, bound = await _start(make_app(config), host, port)
    try:
        url = _url(host, bound)
        announce(f"CAMS emulator listening on {url}")
        for number, (access_key_id, secret) in enumerate(config.keys.items()):
            prefix = "" if number == 0 else f"# or key pair {number + 1}: "
            announce(f"{prefix}export ALIBABA_CLOUD_ACCESS_KEY_ID={access_key_id}")
            announce(f"{prefix}export ALIBABA_CLOUD_ACCESS_KEY_SECRET={secret}")
        announce(f"enrich run INPUT --endpoint {url} --cust-space-id demo-space")
        limit = "unlimited" if config.rate_limit == 0 else f"{config.rate_limit:g}/s per key"
        announce(
            f"limit {limit}; fault rate {config.fault_rate:g}"
            + (f"; every answer {config.force_code}" if config.force_code else "")
            + "; Ctrl-C to stop"
        )
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
