"""What the benchmark ran on: the machine and the versions of everything that matters."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = (
    "strawberry-graphql",
    "graphql-core",
    "sqlalchemy",
    "asyncpg",
    "uvicorn",
    "uvloop",
    "httptools",
    "starlette",
    "orjson",
)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _memory_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return 0.0


def _cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def cpu_busy(seconds: float = 1.0) -> float:
    """The share of the machine's CPU time (all cores) spent busy over the next `seconds`."""
    try:
        busy0, total0 = _cpu_times()
        time.sleep(seconds)
        busy1, total1 = _cpu_times()
    except (OSError, ValueError, IndexError):
        return 0.0
    return (busy1 - busy0) / (total1 - total0) if total1 > total0 else 0.0


def busy_processes(limit: int = 3) -> list[str]:
    """The processes using the most CPU (averaged over their lifetime, as ps gives it) outside
    the harness, a hint when the machine is busy: "<pid> <cpu%> <command>"."""
    done = subprocess.run(
        ["ps", "-eo", "pid=,pcpu=,args=", "--sort=-pcpu"],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    own = os.getpid()
    lines = []
    for line in done.stdout.splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3 and parts[0] != str(own) and float(parts[1]) >= 20:
            lines.append(f"{parts[0]} {parts[1]}% {parts[2][:100]}")
    return lines[:limit]


def describe() -> dict[str, Any]:
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count() or 0,
        "memory_gib": round(_memory_gib(), 1),
        "kernel": f"{platform.system()} {platform.release()}",
    }


def versions(postgresql: str, wrk: str) -> dict[str, str]:
    found = {"python": platform.python_version(), "postgresql": postgresql, "wrk": wrk}
    for package in PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "missing"
    return found
