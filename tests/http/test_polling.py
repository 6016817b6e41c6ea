"""Polling over GET: strong ETags and 304s, and one execution shared by identical requests."""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from db import keys
from domain.states import State
from domain.transitions import Role
from gql.settings import Settings
from resolvers.context import Context
from tests.factories import TreeSpec, add_tree
from tests.graphql import app_client

COUNTS = {"query": "{ treeStateCounts { state count } }"}
HALT = "mutation($id: UUID!) { haltTree(input: {messageTreeId: $id}) { __typename } }"
MODERATOR_KEY = "polling-moderator-key"


def serving(
    settings: Settings, **fields: Any
) -> AbstractAsyncContextManager[tuple[Starlette, httpx.AsyncClient]]:
    return app_client(Settings(database_url=settings.database_url, **fields))


@pytest.fixture
def executions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """One entry per operation run: each gets a fresh context (the compiled lane's too)."""
    seen: list[str] = []
    original = Context.create.__func__  # type: ignore[attr-defined]

    def counting(cls: type[Context], *args: Any, **kwargs: Any) -> Context:
        seen.append(args[2] if len(args) > 2 else "-")
        return original(cls, *args, **kwargs)  # type: ignore[no-any-return]

    monkeypatch.setattr(Context, "create", classmethod(counting))
    return seen


async def growing_trees(engine: AsyncEngine, n: int) -> list[str]:
    async with engine.begin() as conn:
        return [str(await add_tree(conn, TreeSpec(state=State.GROWING))) for _ in range(n)]


async def test_etag_and_304(settings: Settings, engine: AsyncEngine) -> None:
    await growing_trees(engine, 2)
    async with serving(settings, response_cache_s=0, count_cache_s=0) as (_app, client):
        first = await client.get("/graphql", params=COUNTS)
        etag = first.headers["etag"]
        assert etag.startswith('"')
        assert etag.endswith('"')
        assert len(etag) == 34
        assert first.headers["cache-control"] == "no-cache"
        assert first.headers["vary"] == "Accept, Authorization, X-API-Key"

        again = await client.get("/graphql", params=COUNTS, headers={"If-None-Match": etag})
        assert again.status_code == 304
        assert again.content == b""
        assert again.headers["etag"] == etag
        listed = await client.get(
            "/graphql", params=COUNTS, headers={"If-None-Match": f'"other", W/{etag}'}
        )
        assert listed.status_code == 304

        await growing_trees(engine, 1)  # the answer changes: a new tag, a full answer
        changed = await client.get("/graphql", params=COUNTS, headers={"If-None-Match": etag})
        assert changed.status_code == 200
        assert changed.headers["etag"] != etag
        assert changed.json() == {"data": {"treeStateCounts": [{"state": "GROWING", "count": 3}]}}
        # Errors carry no tag: nothing to revalidate.
        bad = await client.get("/graphql", params={"query": "{ nope }"})
        assert "etag" not in bad.headers


async def test_identical_gets_share_one_execution(
    settings: Settings, engine: AsyncEngine, executions: list[str]
) -> None:
    await growing_trees(engine, 3)
    async with serving(settings, response_cache_s=60) as (_app, client):
        answers = await asyncio.gather(*(client.get("/graphql", params=COUNTS) for _ in range(50)))
        assert {a.content for a in answers} == {answers[0].content}
        assert len(executions) == 1
        other = {"query": "{ treeStateCounts(groupBy: [LANG]) { lang count } }"}
        await client.get("/graphql", params=other)
        assert len(executions) == 2
        # POST is never served from the cache.
        await client.post("/graphql", json=COUNTS)
        assert len(executions) == 3


async def test_a_mutation_clears_the_shared_answers(
    settings: Settings, engine: AsyncEngine
) -> None:
    ids = await growing_trees(engine, 2)
    async with engine.begin() as conn:
        await keys.insert(
            conn, "polling-moderator", Role.MODERATOR, MODERATOR_KEY, datetime.now(UTC)
        )
    async with serving(settings, response_cache_s=600, count_cache_s=600) as (_app, client):
        before = (await client.get("/graphql", params=COUNTS)).json()
        assert before == {"data": {"treeStateCounts": [{"state": "GROWING", "count": 2}]}}
        await growing_trees(engine, 1)  # behind the server's back: not seen for the window
        assert (await client.get("/graphql", params=COUNTS)).json() == before
        halted = await client.post(
            "/graphql",
            json={"query": HALT, "variables": {"id": ids[0]}},
            headers={"Authorization": f"Bearer {MODERATOR_KEY}"},
        )
        assert halted.json()["data"]["haltTree"]["__typename"] == "TransitionApplied"
        after = (await client.get("/graphql", params=COUNTS)).json()
        assert after == {
            "data": {
                "treeStateCounts": [
                    {"state": "GROWING", "count": 2},
                    {"state": "HALTED_BY_MODERATOR", "count": 1},
                ]
            }
        }


async def test_answers_are_kept_apart_by_role_and_never_skip_the_key_check(
    settings: Settings, engine: AsyncEngine, executions: list[str]
) -> None:
    await growing_trees(engine, 1)
    async with engine.begin() as conn:
        await keys.insert(
            conn, "polling-moderator", Role.MODERATOR, MODERATOR_KEY, datetime.now(UTC)
        )
    async with serving(settings, response_cache_s=600, env="production") as (app, client):
        moderator = {"Authorization": f"Bearer {MODERATOR_KEY}"}
        assert (await client.get("/graphql", params=COUNTS, headers=moderator)).status_code == 200
        # The same URL, cached for the moderator role: no key gets 401, a wrong key 401.
        assert (await client.get("/graphql", params=COUNTS)).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert (await client.get("/graphql", params=COUNTS, headers=wrong)).status_code == 401
        assert len(executions) == 1
        responses = app.state.endpoint.caches.responses
        assert (responses.hits, responses.misses) == (0, 1)
    async with engine.begin() as conn:
        await keys.insert(
            conn, "polling-reader", Role.READER, "polling-reader-key", datetime.now(UTC)
        )
    async with serving(settings, response_cache_s=600, env="production") as (app, client):
        for key in (MODERATOR_KEY, "polling-reader-key", MODERATOR_KEY):
            ok = await client.get(
                "/graphql", params=COUNTS, headers={"Authorization": f"Bearer {key}"}
            )
            assert ok.status_code == 200
        responses = app.state.endpoint.caches.responses
        assert (responses.hits, responses.misses) == (1, 2)  # one entry per role
