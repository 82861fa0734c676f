"""A real redis-server on 127.0.0.1 for the tests: a free port, no persistence, in tmp_path.

``.ci/run`` installs Debian's ``redis-server`` when it is missing. Elsewhere,
``apt-get install redis-server`` (Debian/Ubuntu; any redis-server ≥ 6.2 on PATH
will do), or point ``REDIS_SERVER`` at a binary. Without one the Redis tests
fail, saying so: they are never skipped silently.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

__all__ = ["INSTALL_HINT", "RedisServer", "find_redis_server"]

MIN_VERSION = (6, 2)
INSTALL_HINT = (
    "the Redis tests need a real redis-server >= 6.2: `apt-get install -y redis-server` "
    "(Debian/Ubuntu; .ci/run does it), or set REDIS_SERVER=/path/to/redis-server"
)


def find_redis_server() -> str:
    """The redis-server binary to use; raises ``RuntimeError`` with the install hint."""
    binary = os.environ.get("REDIS_SERVER") or shutil.which("redis-server")
    if not binary:
        raise RuntimeError(INSTALL_HINT)
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10,
                         check=False).stdout
    found = re.search(r"v=(\d+)\.(\d+)", out)
    if not found or tuple(map(int, found.groups())) < MIN_VERSION:
        raise RuntimeError(f"{binary} is not redis-server >= 6.2 ({out.strip()!r}); "
                           + INSTALL_HINT)
    return binary


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One redis-server process; ``start()``, ``kill()`` (SIGKILL), ``stop()``."""

    def __init__(self, folder: Path, *, password: str | None = None,
                 port: int | None = None) -> None:
        self.binary = find_redis_server()
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.password = password
        self.port = port or _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", str(self.folder),
                "--logfile", str(self.folder / "redis.log"), "--daemonize", "no"]
        if self.password:
            args += ["--requirepass", self.password]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log = (self.folder / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server exited at start: {log}")
            if self._answers():
                return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server did not answer on 127.0.0.1:{self.port}")

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                reply = sock.recv(64)
        except OSError:
            return False
        return reply.startswith((b"+PONG", b"-NOAUTH"))

    def kill(self) -> None:
        """SIGKILL, as a crash would: the clients see their connections drop."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None
