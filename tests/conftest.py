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
