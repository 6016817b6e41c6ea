"""End to end: the real `treegate` commands, as `make run` runs them, and HTTP over a socket."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import SEEDED_TREES, migrate_and_seed, run_cli, serving

pytestmark = pytest.mark.e2e


@pytest.fixture
def server(server_env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    """Migrate, seed when empty and serve, exactly as `make run` does; yield the base URL."""
    migrate_and_seed(server_env, SEEDED_TREES)
    again = run_cli(server_env, "seed", "--trees", str(SEEDED_TREES), "--if-empty")
    assert again.returncode == 0
    assert "not seeding" in again.stdout
    with serving(server_env, tmp_path / "server.log") as base:
        yield base


def test_real_server_answers_queries(server: str) -> None:
    with httpx.Client(base_url=server, timeout=10) as client:
        assert client.get("/healthz").json() == {"status": "ok"}

        counts = client.post(
            "/graphql", json={"query": "{ treeStateCounts(groupBy: [STATE]) { state count } }"}
        ).json()["data"]["treeStateCounts"]
        assert sum(c["count"] for c in counts) == SEEDED_TREES
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
            assert connection["totalCount"] == SEEDED_TREES
            for node in connection["nodes"]:
                assert node["rootMessage"]["role"] == "prompter"
                assert node["rootMessage"]["text"]
                seen.append(node["messageTreeId"])
            if not connection["pageInfo"]["hasNextPage"]:
                break
            after = connection["pageInfo"]["endCursor"]
        assert len(seen) == len(set(seen)) == SEEDED_TREES
        assert seen == sorted(seen)

        get = client.get("/graphql", params={"query": "{ stateMachine { states { value } } }"})
        assert get.status_code == 200
        assert len(get.json()["data"]["stateMachine"]["states"]) == 10

        graphiql = client.get("/graphql", headers={"Accept": "text/html"})
        assert graphiql.status_code == 200
        assert "graphiql" in graphiql.text.lower()
        assert "/graphql/static/graphiql/" in graphiql.text  # vendored, not from a CDN
        assert "unpkg.com" not in graphiql.text
