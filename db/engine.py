"""Engines for PostgreSQL (asyncpg) and SQLite (aiosqlite), from one URL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

_DRIVERS = {
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
}


def normalize_url(url: str | URL) -> URL:
    """Accept plain `postgresql://` and `sqlite:///` URLs and pick the async driver."""
    parsed = make_url(url)
    if parsed.drivername in _DRIVERS:
        parsed = parsed.set(drivername=_DRIVERS[parsed.drivername])
    if parsed.drivername not in _DRIVERS.values():
        raise ValueError(
            f"unsupported database URL scheme {parsed.drivername!r}: "
            "use postgresql://... or sqlite:///path"
        )
    return parsed


@dataclass(frozen=True, slots=True)
class PoolOptions:
    size: int = 10
    max_overflow: int = 10
    timeout: float = 5.0
    statement_timeout_ms: int = 15_000


def create_engine(url: str | URL, pool: PoolOptions | None = None) -> AsyncEngine:
    """An async engine with settings that suit the backend."""
    pool = pool or PoolOptions()
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_async_engine(
            parsed,
            pool_size=pool.size,
            max_overflow=pool.max_overflow,
            pool_timeout=pool.timeout,
            connect_args={"timeout": pool.timeout},
        )
        event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
        event.listen(engine.sync_engine, "begin", _sqlite_on_begin)
        return engine
    return create_async_engine(
        parsed,
        pool_size=pool.size,
        max_overflow=pool.max_overflow,
        pool_timeout=pool.timeout,
        pool_pre_ping=True,
        connect_args={
            "timeout": pool.timeout,
            "server_settings": {
                "application_name": "treegate",
                "statement_timeout": str(pool.statement_timeout_ms),
            },
        },
    )


WRITE_OPTION = "treegate_write"
"""Execution option marking a connection whose transaction will write (see `write_connection`)."""


def _sqlite_on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # The driver's own implicit BEGIN is turned off so that SQLAlchemy's "begin" event below
    # decides how each transaction starts.
    dbapi_connection.isolation_level = None
    # WAL lets readers run beside a writer; foreign keys are off by default in SQLite.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_on_begin(connection: Connection) -> None:
    # A write transaction takes SQLite's write lock when it begins, so that what it reads
    # cannot change before it writes, across connections and processes alike (busy_timeout
    # makes the others wait). Read transactions stay deferred and never block writers (WAL).
    write = connection.get_execution_options().get(WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


@asynccontextmanager
async def write_transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection in a transaction meant to write: committed on success, rolled back on error.

    On SQLite it holds the database's write lock from the start; on PostgreSQL it is an
    ordinary READ COMMITTED transaction (writes there rely on compare-and-set and locks).
    """
    async with engine.connect() as conn:
        await conn.execution_options(**{WRITE_OPTION: True})
        async with conn.begin():
            yield conn
