"""Hermetic test fixtures: a clean environment, a private working folder, real emulators."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from enrich.emulator import EmulatorServer


@pytest.fixture(autouse=True)
def clean_environ(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No ALIBABA_CLOUD_* / CAMS_* variable leaks in; every test runs in tmp_path."""
    for name in list(os.environ):
        if name.startswith(("ALIBABA_CLOUD_", "CAMS_")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / ".cache"))
    # the credential chain looks in ~/.aliyun and ~/.alibabacloud, and would ask the ECS
    # metadata service (100.100.100.200): no test may reach anything but loopback
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
    monkeypatch.chdir(tmp_path)
    yield


@contextlib.contextmanager
def _emulators() -> Iterator[Callable[..., EmulatorServer]]:
    """``start(**config)`` starts a real emulator server on 127.0.0.1; all stop at the end."""
    from enrich.emulator import EmulatorConfig, EmulatorServer

    servers: list[EmulatorServer] = []

    def start(**config: Any) -> EmulatorServer:
        config.setdefault("rate_limit", 0)
        server = EmulatorServer(EmulatorConfig(**config)).start()
        servers.append(server)
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def emulator() -> Iterator[Callable[..., EmulatorServer]]:
    """Start real emulator servers on 127.0.0.1: ``emulator(rate_limit=10, ...)``.

    The limit is off unless the test asks for one: the rate is tested on its own.
    """
    with _emulators() as start:
        yield start


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    """One emulator with the default config and no limit, shared by a module's tests.

    For tests that only need its answers: its stats add up across the module, so a
    test that counts requests or sets a config starts its own with ``emulator``.
    """
    with _emulators() as start:
        yield start()


@pytest.fixture
def creds(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The emulator's default key pair in the environment."""
    env = {
        "ALIBABA_CLOUD_ACCESS_KEY_ID": "testAKID",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "testSecret",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env
