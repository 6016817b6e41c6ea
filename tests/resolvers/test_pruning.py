"""Expired idempotency keys are deleted: by `prune_expired` in batches, by a running server on its
own, and by `treegate prune`; live keys stay. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from db import idempotency as repo
from db.tables import idempotency
from gql.app import create_app
from gql.settings import Settings
from resolvers.maintenance import prune_expired

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


async def add_keys(engine: AsyncEngine, prefix: str, n: int, expires_at: datetime) -> None:
    rows = [
        {
            "scope": "ops",
            "key": f"{prefix}-{i}",
            "operation": "haltTree",
            "request_hash": "0" * 64,
            "created_at": expires_at - timedelta(hours=24),
            "expires_at": expires_at,
        }
        for i in range(n)
    ]
    async with engine.begin() as conn:
        await conn.execute(insert(idempotency), rows)


async def keys_left(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(idempotency.c.key))
        left: dict[str, int] = {}
        for (key,) in rows:
            prefix = key.split("-")[0]
            left[prefix] = left.get(prefix, 0) + 1
        return left


async def test_expired_keys_are_deleted_in_batches_and_live_ones_kept(engine: AsyncEngine) -> None:
    await add_keys(engine, "old", repo.PRUNE_BATCH * 2 + 7, NOW - timedelta(seconds=1))
    await add_keys(engine, "edge", 3, NOW)  # expiring exactly now counts as expired
    await add_keys(engine, "live", 5, NOW + timedelta(seconds=1))
    assert await prune_expired(engine, NOW) == repo.PRUNE_BATCH * 2 + 10
    assert await keys_left(engine) == {"live": 5}
    assert await prune_expired(engine, NOW) == 0


async def test_a_running_server_prunes_on_its_own(engine: AsyncEngine, settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"prune_interval_s": 0.05}))
    async with app.router.lifespan_context(app):
        await add_keys(engine, "old", 20, datetime.now(UTC) - timedelta(hours=1))
        await add_keys(engine, "live", 2, datetime.now(UTC) + timedelta(hours=1))
        assert app.state.pruner.running
        async with asyncio.timeout(30):  # waits for rounds that delete, not for a duration
            while await app.state.pruner.next_round() == 0:
                pass
        assert await keys_left(engine) == {"live": 2}
        assert app.state.pruner.deleted == 20


async def test_no_pruning_when_turned_off(engine: AsyncEngine, settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"prune_interval_s": 0}))
    async with app.router.lifespan_context(app):
        assert not app.state.pruner.running
    async with engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(idempotency))).scalar() == 0
