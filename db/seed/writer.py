"""Writing the demo data: `seed` inserts `generate`'s batches; `count_trees` checks for data."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from db import tables
from db.seed.batches import iter_batches
from db.seed.plan import BATCH_TREES, INSERT_CHUNK
from domain.lottery import MAX_ACTIVE_TREES


@dataclass(frozen=True)
class SeedReport:
    trees: int
    messages: int
    users: int


async def seed(
    engine: AsyncEngine,
    trees: int,
    seed: int = 0,
    *,
    batch_trees: int = BATCH_TREES,
    max_active_trees: int = MAX_ACTIVE_TREES,
) -> SeedReport:
    """Write `generate(trees, seed)` to the database in one transaction.

    The next batch is generated in a worker thread while the current one is being written, so
    generating overlaps with waiting for the database.
    """
    batches = iter_batches(
        trees, seed, now=None, batch_trees=batch_trees, max_active_trees=max_active_trees
    )
    n_trees = n_messages = n_users = 0
    async with engine.begin() as conn:
        batch = await asyncio.to_thread(next, batches, None)
        while batch is not None:
            following = asyncio.ensure_future(asyncio.to_thread(next, batches, None))
            try:
                for table, rows in (
                    (tables.user, batch.users),
                    (tables.user_stats, batch.user_stats),
                    (tables.message, batch.messages),
                    (tables.message_tree_state, batch.trees),
                ):
                    for start in range(0, len(rows), INSERT_CHUNK):
                        await conn.execute(table.insert(), rows[start : start + INSERT_CHUNK])
            finally:
                # Never leave the generator running in its thread behind a failed write.
                await asyncio.wait([following])
            n_users += len(batch.users)
            n_messages += len(batch.messages)
            n_trees += len(batch.trees)
            batch = following.result()
    return SeedReport(trees=n_trees, messages=n_messages, users=n_users)


async def count_trees(engine: AsyncEngine) -> int:
    """Rows in `message_tree_state`."""
    async with engine.connect() as conn:
        count = await conn.scalar(select(func.count()).select_from(tables.message_tree_state))
    return int(count or 0)
