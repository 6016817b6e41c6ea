"""Fresh, empty databases for the migration tests, and schema inspection helpers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, inspect
from sqlalchemy.ext.asyncio import AsyncEngine

from db.engine import create_engine
from tests.databases import PostgresUnavailable, postgres_database, sqlite_url


@asynccontextmanager
async def fresh_engine(backend: str, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """An engine on a brand-new, empty database (not the shared, migrated one)."""
    if backend == "sqlite":
        engine = create_engine(sqlite_url(tmp_path / "fresh.db"))
        try:
            yield engine
        finally:
            await engine.dispose()
        return
    async with fresh_postgres_engine("treegate_migrations") as engine:
        yield engine


@asynccontextmanager
async def fresh_postgres_engine(prefix: str) -> AsyncIterator[AsyncEngine]:
    """An engine on a brand-new, empty PostgreSQL database, dropped afterwards."""
    try:
        async with postgres_database(prefix) as url:
            engine = create_engine(url)
            try:
                yield engine
            finally:
                await engine.dispose()
    except PostgresUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


def _inspect(conn: Connection, table: str) -> dict[str, Any]:
    inspector = inspect(conn)
    return {
        "columns": {c["name"]: c for c in inspector.get_columns(table)},
        "pk": inspector.get_pk_constraint(table)["constrained_columns"],
        "fks": [
            (fk["constrained_columns"], fk["referred_table"], fk["referred_columns"])
            for fk in inspector.get_foreign_keys(table)
        ],
        "indexes": {i["name"]: list(i["column_names"]) for i in inspector.get_indexes(table)},
    }


async def describe(engine: AsyncEngine, table: str) -> dict[str, Any]:
    async with engine.connect() as conn:
        return await conn.run_sync(_inspect, table)


async def table_names(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
