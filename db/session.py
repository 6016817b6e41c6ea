"""One database connection per request, shared safely by concurrently resolved fields."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.util import greenlet_spawn

from db.engine import drop_connections_opened_before_now, gate
from db.faults import fault_of, is_connectivity
from db.pg_reads import PgReads
from db.reads import CoreReads, Reads

T = TypeVar("T")


class RequestFinished(RuntimeError):
    """The request's connection was asked for after the request ended."""


class RequestConnection:
    """Opens a connection on first use and lends it to one task at a time.

    GraphQL resolves sibling fields concurrently, and a connection must never be used by
    two tasks at once: the lock serializes them. `close()` ends the request's work.

    Reads run statement by statement (autocommit), each with its own snapshot, so which pooled
    connection serves which statement does not matter. On PostgreSQL `reads()` lends asyncpg
    itself, on a connection taken from the pool without SQLAlchemy's connection object around
    it; a later `use()` gives that one back and opens an ordinary one.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._postgresql = engine.dialect.name == "postgresql"
        self._connection: AsyncConnection | None = None
        self._raw: PoolProxiedConnection | None = None
        self._lock = asyncio.Lock()
        self._closed = False
        self._gate = gate(engine)

    def _check_open(self) -> None:
        if self._closed:
            # A resolver still running after its request was answered (graphql-core stops
            # waiting for siblings once a non-null field fails): it gets no connection, so
            # none is left open behind the request.
            raise RequestFinished("the request is finished; its connection is closed")

    @asynccontextmanager
    async def reads(self) -> AsyncIterator[Reads]:
        """The request's reads (`db.reads.Reads`), on the request's connection."""
        if not self._postgresql:
            async with self.use() as conn:
                yield CoreReads(conn)
            return
        async with self._lock:
            self._check_open()
            driver: Any
            if self._connection is not None:
                driver = (await self._connection.get_raw_connection()).driver_connection
            else:
                if self._raw is None:
                    self._raw = await self._checkout(self._engine.raw_connection)
                driver = self._raw.driver_connection
            try:
                yield PgReads(driver)
            except Exception as exc:
                if is_connectivity(fault_of(exc)):
                    await self._drop_broken(exc)
                raise

    async def _drop_broken(self, exc: Exception) -> None:
        """The connection broke under asyncpg, out of SQLAlchemy's sight. As SQLAlchemy does on
        a disconnect, every connection of the pool opened before now is dropped (the database
        most likely restarted), this one at once; the next use opens a new one."""
        drop_connections_opened_before_now(self._engine)
        if self._raw is not None:
            raw, self._raw = self._raw, None
            self._gate.leave()
            raw.invalidate(exc)  # closed, and its place in the pool given back
        elif self._connection is not None:
            connection, self._connection = self._connection, None
            self._gate.leave()
            await connection.invalidate(exc)
            await connection.close()

    @asynccontextmanager
    async def use(self) -> AsyncIterator[AsyncConnection]:
        async with self._lock:
            self._check_open()
            if self._raw is not None:
                await self._release_raw()
            if self._connection is None:
                # Kept at once, so that close() releases it even if this task is cancelled
                # while the options are set.
                self._connection = await self._checkout(self._engine.connect)
                # Reads run statement by statement: no BEGIN/ROLLBACK round trips around them.
                await self._connection.execution_options(isolation_level="AUTOCOMMIT")
            yield self._connection

    async def _checkout(self, connect: Callable[[], Awaitable[T]]) -> T:
        """A connection from the pool, once admitted by the engine's gate (`db.engine.Gate`);
        `_release` and `_drop_broken` let the next request in."""
        await self._gate.enter()
        try:
            return await connect()
        except BaseException:
            self._gate.leave()
            raise

    async def reset(self) -> None:
        """Give the connection back; the next use opens a fresh one (a new snapshot)."""
        async with self._lock:
            await self._release()

    async def close(self) -> None:
        """End the request's work: give the connection back and lend no other."""
        async with self._lock:
            self._closed = True
            await self._release()

    async def _release(self) -> None:
        await self._release_raw()
        if self._connection is not None:
            connection, self._connection = self._connection, None
            try:
                await connection.close()
            finally:
                self._gate.leave()

    async def _release_raw(self) -> None:
        if self._raw is not None:
            raw, self._raw = self._raw, None
            try:
                await greenlet_spawn(raw.close)
            finally:
                self._gate.leave()
