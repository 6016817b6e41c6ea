"""Temporary test databases: an SQLite file, and a PostgreSQL database created for the run."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from db.engine import create_engine, normalize_url
from db.migrate import upgrade
from db.tables import metadata

DEFAULT_SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
START_HINT = (
    "start it with `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`, "
    "or point TREEGATE_TEST_DATABASE_URL at a PostgreSQL server you may create databases on"
)


def postgres_server_url() -> URL:
    return normalize_url(os.environ.get("TREEGATE_TEST_DATABASE_URL", DEFAULT_SERVER_URL))


class PostgresUnavailable(RuntimeError):
    pass


@asynccontextmanager
async def postgres_database(prefix: str = "treegate_test") -> AsyncIterator[URL]:
    """Create a fresh database on the test server; drop it afterwards."""
    server = postgres_server_url()
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(server, isolation_level="AUTOCOMMIT", pool_size=1)
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OSError as exc:
        await admin.dispose()
        raise PostgresUnavailable(
            f"PostgreSQL is not reachable at {server.render_as_string(hide_password=True)} "
            f"({exc}); {START_HINT}"
        ) from exc
    try:
        yield server.set(database=name)
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


@asynccontextmanager
async def migrated_engine(url: URL | str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(url)
    try:
        await upgrade(engine)
        yield engine
    finally:
        await engine.dispose()


def sqlite_url(path: Path) -> URL:
    return make_url(f"sqlite+aiosqlite:///{path}")


async def truncate_all(engine: AsyncEngine) -> None:
    """Empty every table (children first), keeping the schema."""
    async with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
            await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in reversed(metadata.sorted_tables):
                await conn.execute(table.delete())
