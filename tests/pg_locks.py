"""PostgreSQL locks for tests that need Treegate's requests to wait: hold a lock in a transaction of
the test's own, and wait until Treegate's backends queue behind it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

LOCK_TABLE = "LOCK TABLE message_tree_state IN ACCESS EXCLUSIVE MODE"
"""Every read and write of the trees waits while it is held."""


@asynccontextmanager
async def locked(
    url: str, sql: str = LOCK_TABLE, *args: object
) -> AsyncIterator[asyncpg.Connection]:
    """A transaction holding the locks `sql` takes, until the block ends."""
    connection = await asyncpg.connect(url)
    try:
        transaction = connection.transaction()
        await transaction.start()
        await connection.execute(sql, *args)
        try:
            yield connection
        finally:
            await transaction.rollback()
    finally:
        await connection.close()


async def waiting_backends(url: str, at_least: int) -> list[int]:
    """Pids of Treegate's backends waiting for a lock, once there are `at_least` (at most 10 s)."""
    connection = await asyncpg.connect(url)
    try:
        async with asyncio.timeout(10):
            while True:
                pids = await connection.fetch(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = 'treegate'"
                    " AND wait_event_type = 'Lock' AND datname = current_database()"
                )
                if len(pids) >= at_least:
                    return [r["pid"] for r in pids]
                await asyncio.sleep(0.02)
    finally:
        await connection.close()
