"""CORS: preflights, the allow headers on every kind of answer from an allowed origin (the
compiled path and the full one, errors, 401, 503, 304, the probes), none for other origins, and
nothing at all when no origin is configured."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from db import keys
from domain.states import State
from domain.transitions import Role
from gql.cors import ALLOW_HEADERS
from gql.fast_lane import CorsApp, TreegateApp
from gql.settings import Settings
from tests.conftest import SilentServer
from tests.factories import TreeSpec, add_tree
from tests.graphql import app_client
from tests.pg_locks import locked, waiting_backends

ALLOWED = "http://localhost:3000"
OTHER = "http://evil.example"
COUNTS = {"query": "{ treeStateCounts { state count } }"}
HALT = "mutation($id: UUID!) { haltTree(input: {messageTreeId: $id}) { __typename } }"
MODERATOR_KEY = "cors-moderator-key"
EXPOSED = "ETag, Retry-After, X-Request-Id"


def cors_settings(settings: Settings, **fields: Any) -> Settings:
    return settings.model_copy(update={"cors_origins": ALLOWED, **fields})


def allowed_answer(response: httpx.Response, origin: str = ALLOWED) -> None:
    assert response.headers["access-control-allow-origin"] == origin
    assert response.headers["access-control-expose-headers"] == EXPOSED
    assert "access-control-allow-credentials" not in response.headers
    assert "origin" in [v.strip().lower() for v in response.headers["vary"].split(",")]
    assert response.headers["x-request-id"]


def no_allow_headers(response: httpx.Response) -> None:
    assert not [name for name in response.headers if name.startswith("access-control-")]


def preflight(client: httpx.AsyncClient, origin: str, path: str = "/graphql") -> Any:
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, x-api-key",
        },
    )


async def test_without_origins_nothing_changes(settings: Settings) -> None:
    async with app_client(settings) as (app, client):
        refused = await preflight(client, ALLOWED)
        answer = await client.post("/graphql", json=COUNTS, headers={"Origin": ALLOWED})
    assert type(app) is TreegateApp  # the plain app: no CORS layer at all
    assert refused.status_code == 405
    assert answer.status_code == 200
    no_allow_headers(refused)
    no_allow_headers(answer)
    assert "vary" not in answer.headers


async def test_a_preflight_from_an_allowed_origin(settings: Settings) -> None:
    async with app_client(cors_settings(settings)) as (app, client):
        answer = await preflight(client, ALLOWED)
        probe = await preflight(client, ALLOWED, "/healthz")
    assert isinstance(app, CorsApp)
    for response in (answer, probe):
        assert response.status_code == 204
        assert response.content == b""
        assert "content-length" not in response.headers
        assert response.headers["access-control-allow-origin"] == ALLOWED
        assert response.headers["access-control-allow-methods"] == "GET, POST, OPTIONS"
        assert response.headers["access-control-allow-headers"] == ALLOW_HEADERS
        assert response.headers["access-control-max-age"] == "600"
        assert response.headers["vary"] == "Origin"
    assert [h.strip() for h in ALLOW_HEADERS.split(",")] == [
        "Content-Type",
        "Authorization",
        "X-API-Key",
        "If-None-Match",
        "X-Request-Id",
        "X-Treegate-Read",
    ]


async def test_a_disallowed_origin_gets_no_allow_headers(settings: Settings) -> None:
    async with app_client(cors_settings(settings)) as (_app, client):
        refused = await preflight(client, OTHER)
        answer = await client.post("/graphql", json=COUNTS, headers={"Origin": OTHER})
        probe = await client.get("/healthz", headers={"Origin": OTHER})
    assert refused.status_code == 204
    assert answer.status_code == 200
    assert probe.status_code == 200
    for response in (refused, answer, probe):
        no_allow_headers(response)
        assert "Origin" in response.headers["vary"]


async def test_answers_vary_on_origin_merged_with_their_own_vary(settings: Settings) -> None:
    async with app_client(cors_settings(settings)) as (_app, client):
        post = await client.post("/graphql", json=COUNTS, headers={"Origin": ALLOWED})
        get = await client.get("/graphql", params=COUNTS, headers={"Origin": ALLOWED})
        same_origin = await client.get("/graphql", params=COUNTS)
    for response in (post, get):
        allowed_answer(response)
    assert get.headers["vary"] == "Accept, Authorization, X-API-Key, Origin"
    assert get.headers.get_list("vary") == [get.headers["vary"]]  # one header, merged
    # A request without Origin (same origin) still says that the answer depends on it.
    assert same_origin.headers["vary"] == "Accept, Authorization, X-API-Key, Origin"
    no_allow_headers(same_origin)


async def test_the_compiled_path_and_the_full_one(
    settings: Settings, engine: AsyncEngine, served: list[int]
) -> None:
    runs = served  # plans the compiled path ran
    async with engine.begin() as conn:
        await add_tree(conn, TreeSpec(state=State.GROWING))
    async with app_client(cors_settings(settings)) as (app, client):
        fast = await client.post("/graphql", json=COUNTS, headers={"Origin": ALLOWED})
        compiled_runs = len(runs)
        app.state.schema.fast_path_enabled = False
        full = await client.post("/graphql", json=COUNTS, headers={"Origin": ALLOWED})
        error = await client.post(
            "/graphql", json={"query": "{ nope }"}, headers={"Origin": ALLOWED}
        )
    assert compiled_runs == 1
    assert len(runs) == 1  # the second one ran through the full path
    assert fast.content == full.content
    assert error.status_code == 200
    assert error.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    for response in (fast, full, error):
        allowed_answer(response)


async def test_a_mutation_with_a_key_and_401(settings: Settings, engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        tree = str(await add_tree(conn, TreeSpec(state=State.GROWING)))
        await keys.insert(conn, "cors-moderator", Role.MODERATOR, MODERATOR_KEY, datetime.now(UTC))
    mutation = {"query": HALT, "variables": {"id": tree}}
    async with app_client(cors_settings(settings)) as (_app, client):
        done = await client.post(
            "/graphql", json=mutation, headers={"Origin": ALLOWED, "X-API-Key": MODERATOR_KEY}
        )
        unknown = await client.post(
            "/graphql", json=mutation, headers={"Origin": ALLOWED, "X-API-Key": "tg_unknown"}
        )
    assert done.status_code == 200, done.text
    assert done.json() == {"data": {"haltTree": {"__typename": "TransitionApplied"}}}
    assert unknown.status_code == 401
    assert unknown.headers["www-authenticate"] == "Bearer"
    for response in (done, unknown):
        allowed_answer(response)


async def test_a_poll_answered_304_and_a_shared_answer_per_origin(settings: Settings) -> None:
    """The shared GET answer holds no origin: each origin gets its own Allow-Origin, or none."""
    other = "https://app.example.org"
    fields = {"cors_origins": f"{ALLOWED},{other}", "response_cache_s": 60}
    async with app_client(settings.model_copy(update=fields)) as (_app, client):
        first = await client.get("/graphql", params=COUNTS, headers={"Origin": ALLOWED})
        etag = first.headers["etag"]
        second = await client.get("/graphql", params=COUNTS, headers={"Origin": other})
        evil = await client.get("/graphql", params=COUNTS, headers={"Origin": OTHER})
        unchanged = await client.get(
            "/graphql", params=COUNTS, headers={"Origin": other, "If-None-Match": etag}
        )
    assert second.content == first.content
    assert second.headers["etag"] == etag
    allowed_answer(first)
    allowed_answer(second, other)
    no_allow_headers(evil)
    assert evil.headers["etag"] == etag
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert unchanged.headers["etag"] == etag
    allowed_answer(unchanged, other)


async def test_the_probes_and_metrics(settings: Settings) -> None:
    async with app_client(cors_settings(settings)) as (_app, client):
        answers = [
            await client.get(path, headers={"Origin": ALLOWED})
            for path in ("/healthz", "/readyz", "/metrics")
        ]
    assert [a.status_code for a in answers] == [200, 200, 200]
    for response in answers:
        allowed_answer(response)


async def test_503_while_the_database_is_down(silent_server: SilentServer) -> None:
    settings = Settings(
        database_url=silent_server.url,
        db_connect_timeout=0.5,
        db_probe_interval_s=30,
        count_cache_s=0,
        response_cache_s=0,
        ready_timeout=1,
        cors_origins=ALLOWED,
    )
    async with app_client(settings) as (_app, client):
        down = await client.post("/graphql", json=COUNTS, headers={"Origin": ALLOWED})
        keyed = await client.post(
            "/graphql", json=COUNTS, headers={"Origin": ALLOWED, "X-API-Key": "tg_whatever"}
        )
        ready = await client.get("/readyz", headers={"Origin": ALLOWED})
    for response in (down, keyed, ready):
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "1"
        allowed_answer(response)
    assert down.json()["errors"][0]["extensions"]["code"] == "DATABASE_UNAVAILABLE"


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_503_when_overloaded(database_url: URL, settings: Settings) -> None:
    url = database_url.set(drivername="postgresql").render_as_string(hide_password=False)
    count = "query Count($n: Int) { messageTreeStates(first: $n) { totalCount } }"
    fields = {"max_concurrent_requests": 1, "db_lock_timeout_ms": 20_000}
    async with app_client(cors_settings(settings, **fields)) as (_app, client):
        async with locked(url):
            slow = asyncio.create_task(
                client.post("/graphql", json={"query": count, "variables": {"n": 1}})
            )
            await waiting_backends(url, 1)
            refused = await client.post(
                "/graphql",
                json={"query": count, "variables": {"n": 2}},
                headers={"Origin": ALLOWED},
            )
        assert (await slow).status_code == 200
    assert refused.status_code == 503
    assert refused.json()["errors"][0]["extensions"]["code"] == "SERVER_OVERLOADED"
    allowed_answer(refused)


async def test_any_origin_without_credentials(settings: Settings) -> None:
    async with app_client(settings.model_copy(update={"cors_origins": "*"})) as (_app, client):
        answer = await client.post("/graphql", json=COUNTS, headers={"Origin": OTHER})
        checked = await preflight(client, OTHER)
    assert answer.headers["access-control-allow-origin"] == "*"
    assert checked.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in answer.headers


async def test_credentials_for_named_origins(settings: Settings) -> None:
    fields = {"cors_allow_credentials": True}
    async with app_client(cors_settings(settings, **fields)) as (_app, client):
        answer = await client.post("/graphql", json=COUNTS, headers={"Origin": ALLOWED})
        checked = await preflight(client, ALLOWED)
    for response in (answer, checked):
        assert response.headers["access-control-allow-origin"] == ALLOWED
        assert response.headers["access-control-allow-credentials"] == "true"
