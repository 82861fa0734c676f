"""Real `enrich run` processes on the official credential chain, against the emulator.

A run outlives several short STS tokens minted by the emulator's credentials URI with
no failed row; runs take their keys from a credentials.ini profile, an aliyun CLI
profile and ALIBABA_CLOUD_PROFILE; JSON logs stay JSON (the library prints nothing).
No test reaches anything but loopback: the ECS metadata service is disabled.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any


def run(tmp_path: Path, url: str, n: int, *extra: str, **env: str) -> tuple[int, str, dict]:
    src = tmp_path / "in.csv"
    src.write_text("phone\n" + "".join(f"+86139{i:08d}\n" for i in range(n)), "utf-8")
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("ALIBABA_CLOUD_", "CAMS_"))}
    environ.update(HOME=str(tmp_path / "home"), XDG_CACHE_HOME=str(tmp_path / "cache"),
                   ALIBABA_CLOUD_ECS_METADATA_DISABLED="true", **env)  # fmt: skip
    res = subprocess.run(
        [sys.executable, "-m", "enrich", "run", str(src), "--endpoint", url,
         "--cust-space-id", "c1", "--no-progress", "--quota", "off", *extra],
        env=environ, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    summary_path = tmp_path / "in.summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    return res.returncode, res.stderr, summary


def test_a_run_outlives_several_short_tokens_with_no_failed_row(emulator: Any,
                                                                tmp_path: Path) -> None:
    server = emulator(sts_lifetime_s=2)
    code, err, summary = run(tmp_path, server.url, 40, "--rate", "8", "--log-format", "json",
                             ALIBABA_CLOUD_CREDENTIALS_URI=server.credentials_uri())  # fmt: skip
    assert code == 0, err
    assert summary["credentials"] == "credentials_uri"
    assert summary["error_rows"] == 0 and summary["ok"] + summary["no_profile"] == 40
    keys = {key for _, key in server.stats.arrivals}
    assert len(keys) >= 3 and all(k.startswith("STS.") for k in keys)  # ~5 s of 2 s tokens
    # every stderr line is JSON: the library's own log handlers print nothing
    events = [json.loads(line) for line in err.splitlines()]
    assert events[0]["event"] == "start" and events[0]["credentials"] == "credentials_uri"
    assert events[-1]["event"] == "end"
    assert "testSecret" not in err


def test_a_run_from_a_credentials_ini_profile(emulator: Any, tmp_path: Path) -> None:
    server = emulator()
    ini = tmp_path / "home" / ".alibabacloud" / "credentials.ini"
    ini.parent.mkdir(parents=True)
    ini.write_text("[default]\ntype = access_key\naccess_key_id = nope\naccess_key_secret = x\n"
                   "[night]\ntype = access_key\naccess_key_id = testAKID\n"
                   "access_key_secret = testSecret\n")  # fmt: skip
    code, err, summary = run(tmp_path, server.url, 3, ALIBABA_CLOUD_PROFILE="night")
    assert code == 0, err
    assert summary["credentials"] == "credentials_file:night"
    assert "(credentials: credentials_file:night)" in err.splitlines()[0]


def test_a_run_from_the_aliyun_cli_profile(emulator: Any, tmp_path: Path) -> None:
    server = emulator()
    cfg = tmp_path / "home" / ".aliyun" / "config.json"
    cfg.parent.mkdir(parents=True)
    profile = {"mode": "AK", "access_key_id": "testAKID", "access_key_secret": "testSecret"}
    cfg.write_text(json.dumps({"current": "work", "profiles": [
        {"name": "work", **profile}, {"name": "broken", **profile, "access_key_id": "nope"}]}))
    code, err, summary = run(tmp_path, server.url, 3)
    assert code == 0, err
    assert summary["credentials"] == "cli_profile:work"
    # ALIBABA_CLOUD_PROFILE picks another profile: its unknown key is the account's error
    code, err, _ = run(tmp_path, server.url, 3, "--no-cache", ALIBABA_CLOUD_PROFILE="broken")
    assert code == 3, err
    assert "InvalidAccessKeyId.NotFound" in err.splitlines()[-1]
