"""The pool checks a PostgreSQL connection before lending it when it sat idle, and only then."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

from db.engine import PoolOptions, create_engine
from db.faults import fault_of
from db.session import RequestConnection


@asynccontextmanager
async def pool_of_one(
    database_url: URL, ping_idle_s: float, size: int = 1
) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(
        database_url, PoolOptions(size=size, max_overflow=0, ping_idle_s=ping_idle_s)
    )
    try:
        yield engine
    finally:
        await engine.dispose()


async def kill_pooled_connection(engine: AsyncEngine, admin: AsyncEngine) -> None:
    """Terminate the backend of the pool's only connection, behind the pool's back."""
    async with engine.connect() as conn:
        pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    await terminate(admin, pid)


async def terminate(admin: AsyncEngine, pid: int) -> None:
    """Terminate a backend and wait until it has exited (PostgreSQL waits up to the timeout)."""
    async with admin.connect() as conn:
        gone = await conn.execute(text("SELECT pg_terminate_backend(:pid, 10000)"), {"pid": pid})
        assert gone.scalar_one(), f"backend {pid} still there after 10 s"


async def read_one_tree_count(engine: AsyncEngine) -> int:
    db = RequestConnection(engine)
    try:
        async with db.reads() as reads:
            return await reads.count_trees(None)
    finally:
        await db.close()


# Pinging is PostgreSQL's concern: SQLite's connections are files.
pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


async def test_a_connection_idle_past_the_window_is_pinged_and_replaced(
    database_url: URL, engine: AsyncEngine
) -> None:
    async with pool_of_one(database_url, ping_idle_s=0.05) as pooled:
        await kill_pooled_connection(pooled, engine)
        await asyncio.sleep(0.1)  # idle past the 50 ms window (a lower bound: the clock only waits)
        assert await read_one_tree_count(pooled) >= 0  # a fresh connection served it


async def test_a_connection_back_a_moment_ago_is_not_pinged(
    database_url: URL, engine: AsyncEngine
) -> None:
    # The same dead connection, lent within the window: nothing checks it, the read fails
    # (which is what makes the test above prove the ping), and the pool drops it.
    async with pool_of_one(database_url, ping_idle_s=60) as pooled:
        await kill_pooled_connection(pooled, engine)
        with pytest.raises(
            (OSError, DBAPIError, asyncpg.PostgresError, asyncpg.InterfaceError)
        ) as raised:
            await read_one_tree_count(pooled)
        assert "connection" in str(raised.value).lower()
        assert await read_one_tree_count(pooled) >= 0  # the broken one was not pooled again


async def test_a_connection_that_breaks_under_reads_on_an_open_connection_is_dropped(
    database_url: URL, engine: AsyncEngine
) -> None:
    """The request already holds an SQLAlchemy connection (it wrote, or used the full path) and
    its reads go to the driver under it: a break there is out of SQLAlchemy's sight, so the
    request drops the connection itself and the next use opens a new one."""
    async with pool_of_one(database_url, ping_idle_s=60) as pooled:
        db = RequestConnection(pooled)
        try:
            async with db.use() as conn:
                pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            await terminate(engine, pid)
            with pytest.raises((OSError, asyncpg.PostgresError, asyncpg.InterfaceError)) as raised:
                async with db.reads() as reads:
                    await reads.count_trees(None)
            assert fault_of(raised.value) is not None
            async with db.use() as conn:
                fresh = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            assert fresh != pid
        finally:
            await db.close()
        pool = pooled.pool
        assert isinstance(pool, QueuePool)
        assert pool.checkedout() == 0


async def test_a_connection_found_broken_under_reads_drops_every_one_opened_before_it(
    database_url: URL, engine: AsyncEngine
) -> None:
    """After a restart every pooled connection is dead: the first request to find out (under
    asyncpg, out of SQLAlchemy's sight) fails, and the next one gets a new connection, not the
    next dead one (both were handed back a moment ago, so no ping would catch it)."""
    async with pool_of_one(database_url, ping_idle_s=60, size=2) as pooled:
        held = [RequestConnection(pooled), RequestConnection(pooled)]
        pids = []
        for db in held:  # two connections open at once, then both back in the pool
            async with db.use() as conn:
                pids.append((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())
        for db in held:
            await db.close()
        for pid in pids:
            await terminate(engine, pid)
        with pytest.raises((OSError, asyncpg.PostgresError, asyncpg.InterfaceError)):
            await read_one_tree_count(pooled)
        assert await read_one_tree_count(pooled) >= 0
        pool = pooled.pool
        assert isinstance(pool, QueuePool)
        assert pool.checkedout() == 0
