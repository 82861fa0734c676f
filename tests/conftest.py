"""Hermetic test fixtures: a clean environment and a private working folder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def clean_environ(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No ALIBABA_CLOUD_* / CAMS_* variable leaks in; every test runs in tmp_path."""
    for name in list(os.environ):
        if name.startswith(("ALIBABA_CLOUD_", "CAMS_")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / ".cache"))
    monkeypatch.chdir(tmp_path)
    yield


@pytest.fixture
def emulator() -> Iterator[object]:
    """Start real emulator servers on 127.0.0.1: ``emulator(rate_limit=10, ...)``.

    The limit is off unless the test asks for one: the rate is tested on its own.
    """
    from enrich.emulator import EmulatorConfig, EmulatorServer

    servers: list[EmulatorServer] = []

    def start(**config: object) -> EmulatorServer:
        config.setdefault("rate_limit", 0)
        server = EmulatorServer(EmulatorConfig(**config)).start()  # type: ignore[arg-type]
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


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
