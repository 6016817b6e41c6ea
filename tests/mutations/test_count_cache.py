"""Counts are shared for a window, and a write through this server clears them at once."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.states import State
from gql.settings import Settings
from tests.factories import TreeSpec, add_tree
from tests.graphql import client_for
from tests.mutations.conftest import ApiKeys

COUNTS = "{ treeStateCounts(groupBy: [STATE]) { state count } }"
TOTAL = "{ messageTreeStates(filter: {states: [GROWING]}, first: 1) { totalCount } }"
HALT = "mutation($id: UUID!) { haltTree(input: {messageTreeId: $id}) { __typename } }"


@pytest.fixture
async def cached(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    long_window = Settings(database_url=settings.database_url, count_cache_s=600)
    async with client_for(long_window) as c:
        yield c


async def counts(client: httpx.AsyncClient) -> tuple[dict[str, int], int]:
    by_state = (await client.post("/graphql", json={"query": COUNTS})).json()["data"]
    total = (await client.post("/graphql", json={"query": TOTAL})).json()["data"]
    states = {c["state"]: c["count"] for c in by_state["treeStateCounts"]}
    return states, total["messageTreeStates"]["totalCount"]


async def test_a_write_through_the_server_clears_the_counts(
    cached: httpx.AsyncClient, engine: AsyncEngine, api_keys: ApiKeys
) -> None:
    async with engine.begin() as conn:
        growing = [await add_tree(conn, TreeSpec(state=State.GROWING)) for _ in range(3)]
    assert await counts(cached) == ({"GROWING": 3}, 3)

    # Written behind the server's back: the counts stay as they were for the window.
    async with engine.begin() as conn:
        await add_tree(conn, TreeSpec(state=State.GROWING))
    assert await counts(cached) == ({"GROWING": 3}, 3)

    # Written through the server: the next counts are fresh (and include the other write).
    halted = await cached.post(
        "/graphql",
        json={"query": HALT, "variables": {"id": str(growing[0])}},
        headers={"Authorization": f"Bearer {api_keys.moderator}"},
    )
    assert halted.json()["data"]["haltTree"]["__typename"] == "TransitionApplied"
    assert await counts(cached) == ({"GROWING": 3, "HALTED_BY_MODERATOR": 1}, 3)
