"""Load with wrk (Debian's package): install it if missing, run it, read its JSON line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

LUA_DIR = Path(__file__).resolve().parent / "lua"
READS_SCRIPT = LUA_DIR / "graphql.lua"
POLL_SCRIPT = LUA_DIR / "poll.lua"
MUTATIONS_SCRIPT = LUA_DIR / "mutations.lua"
MARKER = "WRK_JSON "
TIMEOUT_S = 30
"""wrk's per-request timeout: above the servers' 15 s statement timeout, so that slow answers
(Q3 on a million trees) are measured rather than dropped."""


@dataclass(frozen=True, slots=True)
class WrkResult:
    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    socket_errors: int
    status_errors: int
    timeouts: int
    counters: dict[str, int] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def errors(self) -> int:
        return self.socket_errors + self.status_errors + self.timeouts


def ensure_wrk(log: Callable[[str], None]) -> str:
    """The path of wrk, installed with apt-get (through sudo unless root) when missing."""
    found = shutil.which("wrk")
    if found:
        return found
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    log("wrk is missing: apt-get install -y wrk")
    install = [*sudo, "apt-get", "install", "-y", "--no-install-recommends", "wrk"]
    if subprocess.run(install, env=env, check=False, timeout=600).returncode != 0:
        subprocess.run([*sudo, "apt-get", "update"], env=env, check=True, timeout=600)
        subprocess.run(install, env=env, check=True, timeout=600)
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk is still missing after apt-get install wrk")
    return found


def wrk_version(wrk: str) -> str:
    done = subprocess.run([wrk, "-v"], capture_output=True, text=True, timeout=10, check=False)
    first = (done.stdout or done.stderr).splitlines()
    return first[0].split(" [")[0].removeprefix("wrk ") if first else "unknown"


def run_wrk(
    wrk: str,
    url: str,
    script: Path,
    script_args: Sequence[str],
    *,
    threads: int,
    connections: int,
    seconds: int,
) -> WrkResult:
    """One run of wrk against `url` (loopback only); its summary, from the script's done()."""
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError("the benchmark loads servers on 127.0.0.1 only")
    command = [
        wrk,
        "-t",
        str(threads),
        "-c",
        str(connections),
        "-d",
        f"{seconds}s",
        "--timeout",
        f"{TIMEOUT_S}s",
        "--latency",
        "-s",
        str(script),
        url,
        "--",
        *script_args,
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    line = next((x for x in done.stdout.splitlines() if x.startswith(MARKER)), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    data = json.loads(line.removeprefix(MARKER))
    base = {
        "requests",
        "duration_us",
        "bytes",
        "connect_errors",
        "read_errors",
        "write_errors",
        "status_errors",
        "timeouts",
        "mean_us",
        "max_us",
        "p50_us",
        "p90_us",
        "p99_us",
    }
    return WrkResult(
        requests=int(data["requests"]),
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
        socket_errors=int(data["connect_errors"] + data["read_errors"] + data["write_errors"]),
        status_errors=int(data["status_errors"]),
        timeouts=int(data["timeouts"]),
        counters={k: int(v) for k, v in data.items() if k not in base},
    )
