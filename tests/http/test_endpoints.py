"""HTTP behaviour around the GraphQL endpoint: probes, GraphiQL, request ids, masking."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from db.engine import create_engine
from db.migrate import upgrade
from domain.values import CountDimension, StateCount, TreeFilter
from gql.graphiql import EXAMPLE_QUERY, GraphiQLTemplateError, with_example_query
from gql.settings import Settings
from tests.graphql import client_for

UNREACHABLE = "postgresql://postgres@127.0.0.1:1/nope"
STATE_MACHINE_QUERY = "{stateMachine{states{value}}}"
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
HEX_ID = re.compile(r"^[0-9a-f]{32}$")


def _sqlite(tmp_path: Path, **fields: Any) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path / 'http.db'}", **fields)


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_names_the_database(client: httpx.AsyncClient, backend: str) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "database": backend}


async def test_readyz_is_not_ready_until_the_schema_is_migrated(tmp_path: Path) -> None:
    settings = _sqlite(tmp_path)
    async with client_for(settings) as client:
        before = await client.get("/readyz")
        engine = create_engine(settings.database_url)
        try:
            await upgrade(engine, "0002")
            older = await client.get("/readyz")
            await upgrade(engine)
        finally:
            await engine.dispose()
        after = await client.get("/readyz")
    assert before.status_code == 503
    assert before.headers["retry-after"] == "1"
    assert before.json() == {
        "status": "unavailable",
        "database": "sqlite",
        "reason": "not_migrated",
        "detail": "the database has no Treegate tables yet: run `treegate migrate`",
    }
    assert older.status_code == 503
    assert older.json()["reason"] == "older_schema"
    assert "is at schema revision 0002 and this Treegate needs" in older.json()["detail"]
    assert after.status_code == 200
    assert after.json() == {"status": "ready", "database": "sqlite"}


@pytest.mark.parametrize("down", ["refused", "hanging"])
async def test_readyz_answers_503_quickly_when_the_database_is_down(
    down: str, request: pytest.FixtureRequest
) -> None:
    url = UNREACHABLE if down == "refused" else request.getfixturevalue("silent_database")
    # The connect timeout far off: an answer well before it came from /readyz's own timeout.
    settings = Settings(database_url=url, ready_timeout=1, db_connect_timeout=30)
    async with client_for(settings) as client:
        started = time.monotonic()
        response = await client.get("/readyz")
        elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json() == {
        "status": "unavailable",
        "database": "postgresql",
        "reason": "unreachable",
    }
    assert elapsed < settings.db_connect_timeout / 3
    if down == "hanging":
        assert elapsed >= settings.ready_timeout  # it did wait, and then gave up
    assert HEX_ID.match(response.headers["x-request-id"])


async def test_graphiql_in_development(tmp_path: Path) -> None:
    async with client_for(_sqlite(tmp_path)) as client:
        response = await client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "graphiql" in response.text.lower()
    # The editor opens on Treegate's example, not on GraphiQL's welcome text.
    assert "treeStateCounts(groupBy: [STATE])" in response.text
    assert "Welcome to GraphiQL" not in response.text


async def test_graphiqls_example_query_answers(client: httpx.AsyncClient) -> None:
    response = await client.post("/graphql", json={"query": EXAMPLE_QUERY})
    body = response.json()
    assert "errors" not in body, body
    assert body["data"]["messageTreeStates"]["totalCount"] == 0  # an empty, migrated database


def test_a_template_without_the_example_is_refused() -> None:
    with pytest.raises(GraphiQLTemplateError, match="EXAMPLE_QUERY"):
        with_example_query("<script>const fetcher = 1;</script>")


@pytest.mark.parametrize(
    "fields", [{"graphiql": False}, {"env": "production"}], ids=["graphiql=false", "production"]
)
async def test_no_graphiql_when_disabled(tmp_path: Path, fields: dict[str, Any]) -> None:
    async with client_for(_sqlite(tmp_path, **fields)) as client:
        response = await client.get("/graphql", headers={"Accept": "text/html"})
        browser = await client.get("/graphql", headers={"Accept": BROWSER_ACCEPT})
        query = await client.get("/graphql", params={"query": STATE_MACHINE_QUERY})
    # No page: HTML alone is not acceptable; a browser (which also takes */*) gets JSON.
    assert response.status_code == 406
    assert "graphiql" not in response.text.lower()
    assert browser.headers["content-type"] == "application/json; charset=utf-8"
    assert "graphiql" not in browser.text.lower()
    if fields.get("env") == "production":
        # No anonymous access in production: queries need a key (tests/mutations/test_roles.py).
        assert query.status_code == 401
        return
    assert query.status_code == 200
    assert "errors" not in query.json()


async def test_graphiql_forced_on_in_production(tmp_path: Path) -> None:
    async with client_for(_sqlite(tmp_path, env="production", graphiql=True)) as client:
        response = await client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()


async def test_get_query(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", params={"query": STATE_MACHINE_QUERY})
    assert response.status_code == 200
    body = response.json()
    assert "errors" not in body
    values = [s["value"] for s in body["data"]["stateMachine"]["states"]]
    assert len(values) == 10
    assert values[0] == "INITIAL_PROMPT_REVIEW"
    assert "PROMPT_LOTTERY_WAITING" in values


async def test_index_redirects_to_graphql(client: httpx.AsyncClient) -> None:
    response = await client.get("/", follow_redirects=False)
    assert response.status_code in (302, 307)
    assert response.headers["location"] == "/graphql"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/"),
        ("GET", "/no-such-page"),
        ("GET", f"/graphql?query={STATE_MACHINE_QUERY}"),
        ("POST", "/graphql"),
    ],
)
async def test_every_response_has_a_request_id(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    body = {"query": "{ stateMachine { entryStates } }"} if method == "POST" else None
    response = await client.request(method, path, json=body)
    assert HEX_ID.match(response.headers["x-request-id"])
    again = await client.request(method, path, json=body)
    assert again.headers["x-request-id"] != response.headers["x-request-id"]


@pytest.mark.parametrize("incoming", ["abc-123", "req.2024_01-XYZ", "a" * 64, "7"])
async def test_sane_request_id_is_echoed(client: httpx.AsyncClient, incoming: str) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": incoming})
    assert response.headers["x-request-id"] == incoming
    assert response.headers.get_list("x-request-id") == [incoming]


@pytest.mark.parametrize(
    "incoming",
    ["a" * 65, "has space", "semi;colon", "<script>", "slash/id", "é-accent", ""],
    ids=["too-long", "space", "semicolon", "angle", "slash", "non-ascii", "empty"],
)
async def test_insane_request_id_is_replaced(client: httpx.AsyncClient, incoming: str) -> None:
    response = await client.get("/healthz", headers=[(b"X-Request-ID", incoming.encode())])
    request_id = response.headers["x-request-id"]
    assert request_id != incoming
    assert HEX_ID.match(request_id)


async def test_unexpected_errors_are_masked_and_logged(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def explode(
        conn: object, dimensions: Sequence[CountDimension], tree_filter: TreeFilter | None
    ) -> list[StateCount]:
        raise RuntimeError("secret SQL text /path/to/file")

    monkeypatch.setattr("db.reads.CoreReads.count_by", explode)
    monkeypatch.setattr("db.pg_reads.PgReads.count_by", explode)
    with caplog.at_level(logging.ERROR, logger="treegate"):
        response = await client.post("/graphql", json={"query": "{ treeStateCounts { count } }"})
    assert response.status_code == 200
    request_id = response.headers["x-request-id"]
    body = response.json()
    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id}
    assert request_id in error["message"]
    assert error["path"] == ["treeStateCounts"]
    for leak in ("secret", "SQL", "/path", "Traceback", "RuntimeError"):
        assert leak not in response.text
    logged = [r for r in caplog.records if r.exc_info and request_id in r.getMessage()]
    assert len(logged) == 1
    record = logged[0]
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError)
    assert str(record.exc_info[1]) == "secret SQL text /path/to/file"


async def test_masking_uses_the_clients_request_id(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def explode(*_args: object) -> list[StateCount]:
        raise RuntimeError("boom")

    monkeypatch.setattr("db.reads.CoreReads.count_by", explode)
    monkeypatch.setattr("db.pg_reads.PgReads.count_by", explode)
    with caplog.at_level(logging.ERROR, logger="treegate"):
        response = await client.post(
            "/graphql",
            json={"query": "{ treeStateCounts { count } }"},
            headers={"X-Request-ID": "client-chosen-42"},
        )
    assert response.headers["x-request-id"] == "client-chosen-42"
    [error] = response.json()["errors"]
    assert error["extensions"]["requestId"] == "client-chosen-42"
    assert any("client-chosen-42" in r.getMessage() for r in caplog.records)
