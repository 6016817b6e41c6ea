"""`viewer { role }`: what the caller may do, from its key, or the anonymous role without one;
answered per role even when GET answers are cached."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from db import keys
from domain.transitions import Role
from gql.settings import Settings
from tests.graphql import client_for

QUERY = "{ viewer { role } }"


async def test_viewer_role_follows_the_key(database_url: URL, engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        for name, role in (("screen", Role.READER), ("mod", Role.MODERATOR)):
            await keys.insert(conn, name, role, f"tg_{name}-key", datetime.now(UTC))
    # Caches on, as served: one role's cached answer must never reach another role.
    settings = Settings(
        database_url=database_url.render_as_string(hide_password=False), response_cache_s=30
    )
    async with client_for(settings) as client:

        async def role_of(headers: dict[str, str]) -> object:
            response = await client.get("/graphql", params={"query": QUERY}, headers=headers)
            assert response.status_code == 200, response.text
            return response.json()["data"]["viewer"]["role"]

        assert await role_of({}) == "READER"  # development: anonymous callers read
        assert await role_of({"X-API-Key": "tg_mod-key"}) == "MODERATOR"
        assert await role_of({"Authorization": "Bearer tg_screen-key"}) == "READER"
        assert await role_of({"X-API-Key": "tg_mod-key"}) == "MODERATOR"


async def test_without_access_there_is_no_viewer(database_url: URL, engine: AsyncEngine) -> None:
    settings = Settings(
        database_url=database_url.render_as_string(hide_password=False), env="production"
    )
    async with client_for(settings) as client:
        response = await client.post("/graphql", json={"query": QUERY})
    assert response.status_code == 401
