"""The probes GraphQL scanners (graphql-cop, InQL, clairvoyance) send, one test each, against the
real app in production mode (with a reader key): each is refused or harmless.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from graphql import get_introspection_query
from sqlalchemy.ext.asyncio import AsyncEngine

from db import keys
from db.engine import create_engine
from db.migrate import upgrade
from domain.transitions import Role
from gql.app import create_app
from gql.settings import Settings

KEY = "probe-reader-key"
GRAPHQL_RESPONSE = "application/graphql-response+json"


@pytest.fixture
async def db_url(tmp_path: Path) -> AsyncIterator[str]:
    url = f"sqlite:///{tmp_path / 'probes.db'}"
    engine: AsyncEngine = create_engine(url)
    try:
        await upgrade(engine)
        async with engine.begin() as conn:
            await keys.insert(conn, "probe-reader", Role.READER, KEY, datetime.now(UTC))
    finally:
        await engine.dispose()
    yield url  # noqa: PT022 (an async generator fixture, kept uniform with the clients)


async def client_for(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://treegate.test",
            headers={"Authorization": f"Bearer {KEY}"},
        ) as c:
            yield c


@pytest.fixture
async def production(db_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async for client in client_for(Settings(database_url=db_url, env="production")):
        yield client


@pytest.fixture
async def development(db_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async for client in client_for(Settings(database_url=db_url)):
        yield client


def codes(response: httpx.Response) -> list[str]:
    return [e["extensions"]["code"] for e in response.json()["errors"]]


async def test_alias_overloading(production: httpx.AsyncClient) -> None:
    query = "{ " + " ".join(f"a{i}: treeStateCounts {{ count }}" for i in range(101)) + " }"
    response = await production.post("/graphql", json={"query": query})
    assert codes(response) == ["ALIAS_LIMIT_EXCEEDED"]


async def test_batch_of_ten_operations(production: httpx.AsyncClient) -> None:
    response = await production.post("/graphql", json=[{"query": "{ __typename }"}] * 10)
    assert response.status_code == 400
    assert codes(response) == ["BATCH_LIMIT_EXCEEDED"]


async def test_typename_repeated_500_times(production: httpx.AsyncClient) -> None:
    # Harmless: the fields merge into one, and the answer is one key.
    response = await production.post("/graphql", json={"query": "{ " + "__typename " * 500 + "}"})
    assert response.status_code == 200
    assert response.json() == {"data": {"__typename": "Query"}}


async def test_directive_overloading(production: httpx.AsyncClient) -> None:
    query = "{ __typename " + " ".join(f"@aa{i}" for i in range(10)) + " }"
    response = await production.post("/graphql", json={"query": query})
    assert set(codes(response)) == {"GRAPHQL_VALIDATION_FAILED"}  # unknown directives
    flood = "{ __typename " + "@include(if: true) " * 50 + "}"
    over = await production.post("/graphql", json={"query": flood})
    assert codes(over) == ["DIRECTIVE_LIMIT_EXCEEDED"]


CIRCULAR_INTROSPECTION = (
    "{ __schema { types { fields { type { fields { type { fields { type { fields { type "
    "{ fields { type { name } } } } } } } } } } } } }"
)


async def test_circular_introspection(
    production: httpx.AsyncClient, development: httpx.AsyncClient
) -> None:
    # Production has no introspection at all; development bounds its nesting.
    refused = await production.post("/graphql", json={"query": CIRCULAR_INTROSPECTION})
    assert "GRAPHQL_VALIDATION_FAILED" in codes(refused)
    assert "introspection has been disabled" in refused.text
    response = await development.post("/graphql", json={"query": CIRCULAR_INTROSPECTION})
    assert set(codes(response)) == {"INTROSPECTION_DEPTH_EXCEEDED"}
    # The standard introspection query of tools (11 levels deep) is answered.
    standard = await development.post("/graphql", json={"query": get_introspection_query()})
    assert standard.json()["data"]["__schema"]["queryType"]["name"] == "Query"


async def test_field_suggestions_in_production(
    production: httpx.AsyncClient, development: httpx.AsyncClient
) -> None:
    query = {"query": "{ messageTreeStats { totalCount } }"}
    hidden = await production.post("/graphql", json=query)
    shown = await development.post("/graphql", json=query)
    assert codes(hidden) == ["GRAPHQL_VALIDATION_FAILED"]
    assert "Cannot query field 'messageTreeStats'" in hidden.text  # still readable
    assert "Did you mean" not in hidden.text
    assert "Did you mean" in shown.text  # the defence is what hides it
    enum = {"query": "{ messageTreeStates(filter: {states: [GROWIN]}) { totalCount } }"}
    assert "Did you mean" not in (await production.post("/graphql", json=enum)).text


async def test_get_mutation(production: httpx.AsyncClient) -> None:
    mutation = (
        'mutation { haltTree(input: {messageTreeId: "00000000-0000-4000-8000-000000000000"}) '
        "{ __typename } }"
    )
    response = await production.get("/graphql", params={"query": mutation})
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert codes(response) == ["METHOD_NOT_ALLOWED"]


@pytest.mark.parametrize(
    ("content_type", "content"),
    [
        ("text/plain", json.dumps({"query": "{ __typename }"})),
        ("application/x-www-form-urlencoded", "query=%7B+__typename+%7D"),
        (
            "multipart/form-data; boundary=x",
            '--x\r\nContent-Disposition: form-data; name="query"'
            "\r\n\r\n{ __typename }\r\n--x--\r\n",
        ),
    ],
)
async def test_csrf_content_types(
    production: httpx.AsyncClient, content_type: str, content: str
) -> None:
    response = await production.post(
        "/graphql", content=content, headers={"Content-Type": content_type}
    )
    assert response.status_code == 415
    assert codes(response) == ["UNSUPPORTED_MEDIA_TYPE"]


async def test_introspection_in_production(production: httpx.AsyncClient, db_url: str) -> None:
    query = {"query": "{ __schema { queryType { name } } }"}
    refused = await production.post("/graphql", json=query, headers={"Accept": GRAPHQL_RESPONSE})
    assert refused.status_code == 400
    assert set(codes(refused)) == {"GRAPHQL_VALIDATION_FAILED"}
    assert "introspection" in refused.text.lower()
    type_probe = await production.post(
        "/graphql", json={"query": '{ __type(name: "State") { name } }'}
    )
    assert set(codes(type_probe)) == {"GRAPHQL_VALIDATION_FAILED"}
    # The setting turns it back on.
    settings = Settings(database_url=db_url, env="production", introspection=True)
    async for client in client_for(settings):
        allowed = await client.post("/graphql", json=query)
        assert allowed.json() == {"data": {"__schema": {"queryType": {"name": "Query"}}}}


async def test_graphiql_in_production(production: httpx.AsyncClient) -> None:
    browser = "text/html,application/xhtml+xml,*/*;q=0.8"
    page = await production.get("/graphql", headers={"Accept": browser})
    assert "graphiql" not in page.text.lower()
    assert page.headers["content-type"].startswith("application/json")
    assets = await production.get("/graphql/static/graphiql/graphiql@3.8.3/graphiql.min.js")
    assert assets.status_code in (404, 406) or "graphiql" not in assets.text.lower()


async def test_unexpected_errors_leak_nothing_in_production(
    production: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def explode(*_args: object) -> None:
        raise RuntimeError('SELECT secret FROM "/srv/treegate/db/trees.py" line 42')

    monkeypatch.setattr("db.reads.CoreReads.count_by", explode)
    with caplog.at_level(logging.ERROR):
        response = await production.post(
            "/graphql", json={"query": "{ treeStateCounts { count } }"}
        )
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    request_id = error["extensions"]["requestId"]
    assert request_id == response.headers["x-request-id"]
    for leak in ("SELECT", "secret", "/srv", ".py", "Traceback", "RuntimeError"):
        assert leak not in response.text
    assert request_id in caplog.text  # the log has it, with the exception
    assert "RuntimeError" in caplog.text
