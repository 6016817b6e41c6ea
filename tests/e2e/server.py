"""The real `treegate` commands, as `make run` runs them: shared by the end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

TREEGATE = str(Path(sys.executable).with_name("treegate"))
SEEDED_TREES = 200


def client_limits(connections: int) -> httpx.Limits:
    """Connection limits for a test's load client of a real server.

    Idle connections are dropped after 2 s, below uvicorn's 5 s keep-alive timeout (which
    `treegate serve` keeps): at equal timeouts a client may send a request on a connection in
    the very moment the server closes it, and read no answer (httpx's ReadError), which is
    neither side's fault and no answer of the server's.
    """
    return httpx.Limits(
        max_connections=connections, max_keepalive_connections=connections, keepalive_expiry=2.0
    )


def clean_env() -> dict[str, str]:
    """This process's environment without any `TREEGATE_*` setting."""
    return {k: v for k, v in os.environ.items() if not k.startswith("TREEGATE_")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TREEGATE, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def migrate_and_seed(env: dict[str, str], trees: int = SEEDED_TREES) -> None:
    """`treegate migrate`, then `treegate seed --if-empty`, on an empty database."""
    migrated = run_cli(env, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    seeded = run_cli(env, "seed", "--trees", str(trees), "--if-empty")
    assert seeded.returncode == 0, seeded.stderr
    assert f"seeded {trees} trees" in seeded.stdout


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base: str
    log_path: Path


@contextmanager
def server_process(
    env: dict[str, str],
    log_path: Path,
    port: int | None = None,
    command: Sequence[str] | None = None,
) -> Iterator[Server]:
    """`treegate serve` until ready, on `port` (a free one by default, so that a server can come
    back on the same); yields it, then stops it with SIGTERM (unless the test did) and checks
    that it shut down cleanly: exit status 0, pool closed. `command` replaces `treegate serve`
    (it must then serve on TREEGATE_PORT, which is set to `port`)."""
    port = port or free_port()
    log = log_path.open("a")
    process = subprocess.Popen(
        command or [TREEGATE, "serve", "--port", str(port)],
        env=env | {"TREEGATE_PORT": str(port)},
        stdout=log,
        stderr=log,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log_path.read_text()
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not become ready in 30 s"
            time.sleep(0.2)
        yield Server(process, base, log_path)
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, log_path.read_text()[-3000:]
        if env.get("TREEGATE_LOG_LEVEL", "info") in ("info", "debug"):
            text = log_path.read_text()
            assert "Application shutdown complete" in text
            assert "database connections closed" in text
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()


@contextmanager
def serving(env: dict[str, str], log_path: Path, port: int | None = None) -> Iterator[str]:
    """`server_process`, yielding the base URL."""
    with server_process(env, log_path, port) as server:
        yield server.base
