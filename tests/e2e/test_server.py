"""End to end: the real `treegate` commands, as `make run` runs them, and HTTP over a socket."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import URL

from tests.databases import PostgresUnavailable, postgres_database

pytestmark = pytest.mark.e2e

TREEGATE = str(Path(sys.executable).with_name("treegate"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TREEGATE, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture(params=["sqlite", "postgresql"])
async def server_env(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TREEGATE_")}
    if request.param == "sqlite":
        env["TREEGATE_DATABASE_URL"] = f"sqlite:///{tmp_path / 'treegate.db'}"
        yield env
        return
    try:
        async with postgres_database("treegate_e2e") as url:
            env["TREEGATE_DATABASE_URL"] = URL.render_as_string(url, hide_password=False)
            yield env
    except PostgresUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def server(server_env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    """Migrate, seed when empty and serve, exactly as `make run` does; yield the base URL."""
    migrated = run_cli(server_env, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    seeded = run_cli(server_env, "seed", "--trees", "200", "--if-empty")
    assert seeded.returncode == 0, seeded.stderr
    assert "seeded 200 trees" in seeded.stdout
    again = run_cli(server_env, "seed", "--trees", "200", "--if-empty")
    assert again.returncode == 0
    assert "not seeding" in again.stdout

    port = free_port()
    log = (tmp_path / "server.log").open("w")
    process = subprocess.Popen(
        [TREEGATE, "serve", "--port", str(port)], env=server_env, stdout=log, stderr=log
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (tmp_path / "server.log").read_text()
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not become ready in 30 s"
            time.sleep(0.2)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            # uvicorn shuts down gracefully, then re-raises the signal it caught.
            assert process.wait(timeout=15) in (0, -signal.SIGTERM)
            assert "Application shutdown complete" in (tmp_path / "server.log").read_text()
        finally:
            if process.poll() is None:
                process.kill()
            log.close()


def test_real_server_answers_queries(server: str) -> None:
    with httpx.Client(base_url=server, timeout=10) as client:
        assert client.get("/healthz").json() == {"status": "ok"}

        counts = client.post(
            "/graphql", json={"query": "{ treeStateCounts(groupBy: [STATE]) { state count } }"}
        ).json()["data"]["treeStateCounts"]
        assert sum(c["count"] for c in counts) == 200
        assert {c["state"] for c in counts} >= {"PROMPT_LOTTERY_WAITING", "READY_FOR_EXPORT"}

        query = (
            "query($after: String) { messageTreeStates(first: 100, after: $after) "
            "{ totalCount pageInfo { hasNextPage endCursor } nodes { messageTreeId "
            "rootMessage { text role } } } }"
        )
        seen: list[str] = []
        after = None
        while True:
            page = client.post("/graphql", json={"query": query, "variables": {"after": after}})
            assert page.status_code == 200
            connection = page.json()["data"]["messageTreeStates"]
            assert connection["totalCount"] == 200
            for node in connection["nodes"]:
                assert node["rootMessage"]["role"] == "prompter"
                assert node["rootMessage"]["text"]
                seen.append(node["messageTreeId"])
            if not connection["pageInfo"]["hasNextPage"]:
                break
            after = connection["pageInfo"]["endCursor"]
        assert len(seen) == len(set(seen)) == 200
        assert seen == sorted(seen)

        get = client.get("/graphql", params={"query": "{ stateMachine { states { value } } }"})
        assert get.status_code == 200
        assert len(get.json()["data"]["stateMachine"]["states"]) == 10

        graphiql = client.get("/graphql", headers={"Accept": "text/html"})
        assert graphiql.status_code == 200
        assert "graphiql" in graphiql.text.lower()
