"""One database connection per request, shared safely by concurrently resolved fields."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


class RequestFinished(RuntimeError):
    """The request's connection was asked for after the request ended."""


class RequestConnection:
    """Opens a connection on first use and lends it to one task at a time.

    GraphQL resolves sibling fields concurrently, and a connection must never be used by
    two tasks at once: the lock serializes them. `close()` ends the request's work.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._connection: AsyncConnection | None = None
        self._lock = asyncio.Lock()
        self._closed = False

    @asynccontextmanager
    async def use(self) -> AsyncIterator[AsyncConnection]:
        async with self._lock:
            if self._closed:
                # A resolver still running after its request was answered (graphql-core stops
                # waiting for siblings once a non-null field fails): it gets no connection, so
                # none is left open behind the request.
                raise RequestFinished("the request is finished; its connection is closed")
            if self._connection is None:
                # Kept at once, so that close() releases it even if this task is cancelled
                # while the options are set.
                self._connection = await self._engine.connect()
                # Reads run statement by statement: no BEGIN/ROLLBACK round trips around them.
                await self._connection.execution_options(isolation_level="AUTOCOMMIT")
            yield self._connection

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
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await connection.close()
