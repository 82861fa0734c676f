"""Shared pieces of the benchmarks: the emulator as a separate process, measured
subprocesses (wall time, CPU time and peak RSS of exactly that child, via wait4),
inputs, and figures from the emulator's arrival log.

Everything here is bounded: every subprocess has a deadline and is killed past it.
"""

from __future__ import annotations

import json
import os
import platform
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from enrich.emulator.stats import max_in_window

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
AK, SECRET = "testAKID", "testSecret"
CRED_ENV = {"ALIBABA_CLOUD_ACCESS_KEY_ID": AK, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET}


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a child: ours without ALIBABA_CLOUD_*/CAMS_*, plus the test keys."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALIBABA_CLOUD_", "CAMS_"))}
    env.update(CRED_ENV)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def numbers(n: int, *, offset: int = 0) -> list[str]:
    """``n`` distinct valid Chinese mobile numbers (country code first, digits only)."""
    return [f"86138{offset + i:08d}" for i in range(n)]


def write_phone_csv(path: Path, phones: Sequence[str]) -> Path:
    """A one-column CSV (``phone``) with the given numbers."""
    path.write_text("phone\n" + "".join(f"{p}\n" for p in phones))
    return path


# -- measured subprocesses ---------------------------------------------------------


@dataclass
class Measured:
    """What one child process cost."""

    returncode: int
    wall_s: float
    user_s: float
    sys_s: float
    maxrss_kb: int
    stdout: str
    stderr: str

    @property
    def cpu_s(self) -> float:
        return self.user_s + self.sys_s


def run_measured(
    cmd: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    timeout_s: float,
    cwd: Path | None = None,
) -> Measured:
    """Run ``cmd`` to the end (killed after ``timeout_s``); its own rusage via ``wait4``."""
    out_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-{os.getpid()}-{time.time_ns()}"
    with open(f"{out_path}.out", "w+") as out, open(f"{out_path}.err", "w+") as err:
        started = time.monotonic()
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=err)
        deadline = started + timeout_s
        status, usage = 0, None
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid == proc.pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
        wall = time.monotonic() - started
        proc.returncode = os.waitstatus_to_exitcode(status)  # Popen must not reap it again
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    for suffix in (".out", ".err"):
        Path(f"{out_path}{suffix}").unlink(missing_ok=True)
    assert usage is not None
    return Measured(
        proc.returncode, wall, usage.ru_utime, usage.ru_stime, usage.ru_maxrss, stdout, stderr
    )


# -- the emulator as a separate process ----------------------------------------------


class Emulator:
    """``python -m enrich emulator --port 0 ...`` in its own process (own GIL, own core)."""

    def __init__(
        self,
        *,
        latency_ms: float = 0.0,
        rate_limit: float = 10.0,
        extra: Sequence[str] = (),
    ) -> None:
        self.args = [
            PY,
            "-m",
            "enrich",
            "emulator",
            "--port",
            "0",
            "--latency-ms",
            str(latency_ms),
            "--rate-limit",
            str(rate_limit),
            *extra,
        ]
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    def __enter__(self) -> Emulator:
        self.proc = subprocess.Popen(
            self.args,
            env=clean_env(),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            found = re.search(r"listening on (http://\S+)", line)
            if found:
                self.url = found.group(1)
                return self
        self.__exit__()
        raise RuntimeError("the emulator did not start")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def cpu_s(self) -> float:
        """CPU time (user + system) the emulator process has used so far, from /proc."""
        assert self.proc is not None
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def reset(self) -> None:
        req = urllib.request.Request(f"{self.url}/_emulator/reset", method="POST")
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/_emulator/stats", timeout=30) as resp:
            return json.loads(resp.read())


def arrival_figures(stats: dict[str, Any]) -> dict[str, Any]:
    """Arrivals, their rate (first to last) and the busiest sliding second."""
    times = sorted(t for t, _ in stats.get("arrivals", []))
    n = len(times)
    span = times[-1] - times[0] if n > 1 else 0.0
    codes = stats.get("codes", {})
    return {
        "arrivals": n,
        "arrival_rate": (n - 1) / span if span > 0 else 0.0,
        "max_1s": max_in_window(times),
        "throttled": int(codes.get("System.LimitControl", 0)),
        "ok": int(codes.get("OK", 0)),
        "codes": codes,
    }


# -- enrich run ----------------------------------------------------------------------


def enrich_run(
    input_path: Path,
    *,
    endpoint: str,
    out_dir: Path,
    rate: float = 10,
    cust_space_id: str = "bench",
    extra: Sequence[str] = (),
    timeout_s: float = 600,
) -> tuple[Measured, dict[str, Any]]:
    """``python -m enrich run`` as a measured subprocess; (cost, run summary)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = out_dir / "summary.json"
    cmd = [
        PY,
        "-m",
        "enrich",
        "run",
        str(input_path),
        "-o",
        str(out_dir / f"out{input_path.suffix}"),
        "--errors",
        str(out_dir / "errors.csv"),
        "--summary",
        str(summary),
        "--endpoint",
        endpoint,
        "--rate",
        str(rate),
        "--cust-space-id",
        cust_space_id,
        "--no-progress",
        "--log-format",
        "json",
        *extra,
    ]
    if "--cache" not in extra:
        cmd.append("--no-cache")
    measured = run_measured(cmd, env=clean_env(), timeout_s=timeout_s, cwd=ROOT)
    data = json.loads(summary.read_text()) if summary.exists() else {}
    if measured.returncode != 0:
        tail = measured.stderr.strip().splitlines()[-3:]
        print(f"  ! enrich exited {measured.returncode}: {' | '.join(tail)}", file=sys.stderr)
    return measured, data


def effective_rate(summary: dict[str, Any]) -> float:
    """Numbers answered per second of calling (api_calls / requests_per_s is that time)."""
    calls, rps = summary.get("api_calls", 0), summary.get("requests_per_s", 0.0)
    if not calls or not rps:
        return 0.0
    answered = summary.get("ok", 0) + summary.get("no_profile", 0)
    return answered / (calls / rps)


def machine() -> str:
    """``nproc``, CPU model and Python version, for the figures' caption."""
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({model}), Python {platform.python_version()}"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
