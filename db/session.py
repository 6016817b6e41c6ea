"""One database connection per request, shared safely by concurrently resolved fields."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


class RequestConnection:
    """Opens a connection on first use and lends it to one task at a time.

    GraphQL resolves sibling fields concurrently, and a connection must never be used by
    two tasks at once: the lock serializes them. `close()` ends the request's work.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._connection: AsyncConnection | None = None
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def use(self) -> AsyncIterator[AsyncConnection]:
        async with self._lock:
            if self._connection is None:
                connection = await self._engine.connect()
                # Reads run statement by statement: no BEGIN/ROLLBACK round trips around them.
                await connection.execution_options(isolation_level="AUTOCOMMIT")
                self._connection = connection
            yield self._connection

    async def close(self) -> None:
        async with self._lock:
            if self._connection is not None:
                connection, self._connection = self._connection, None
                await connection.close()
