"""The migrations build Open-Assistant's schema and match `db.tables`, on both backends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

from db import search
from db.migrate import VERSION_TABLE, current_revision, head_revision, upgrade
from db.tables import OPEN_ASSISTANT_TABLES, metadata
from tests.db.fresh import describe, fresh_engine, table_names

# docs/open-assistant.md: column -> (PostgreSQL type, nullable).
TREE_STATE_COLUMNS = {
    "message_tree_id": ("uuid", False),
    "goal_tree_size": ("integer", False),
    "max_depth": ("integer", False),
    "max_children_count": ("integer", False),
    "state": ("character varying(128)", False),
    "active": ("boolean", False),
    "origin": ("character varying(1024)", True),
    "won_prompt_lottery_date": ("timestamp with time zone", True),
    "lang": ("character varying(32)", False),
}
MESSAGE_COLUMNS = {
    "id": ("uuid", False),
    "parent_id": ("uuid", True),
    "message_tree_id": ("uuid", False),
    "user_id": ("uuid", True),
    "role": ("character varying(128)", False),
    "created_date": ("timestamp with time zone", False),
    "payload_type": ("character varying(200)", False),
    "payload": ("jsonb", True),
    "lang": ("character varying(32)", False),
    "depth": ("integer", False),
    "children_count": ("integer", False),
    "deleted": ("boolean", False),
    "review_count": ("integer", False),
    "review_result": ("boolean", True),
    "ranking_count": ("integer", False),
    "rank": ("integer", True),
    "synthetic": ("boolean", False),
    "edited": ("boolean", False),
    "model_name": ("character varying(1024)", True),
    "emojis": ("jsonb", True),
}


# How SQLite declares the same types.
_SQLITE_TYPES = {
    "uuid": "CHAR(32)",
    "integer": "INTEGER",
    "boolean": "BOOLEAN",
    "timestamp with time zone": "DATETIME",
    "jsonb": "JSON",
}


def _sqlite_type(pg_type: str) -> str:
    if pg_type.startswith("character varying("):
        return "VARCHAR" + pg_type.removeprefix("character varying")
    return _SQLITE_TYPES[pg_type]


@pytest.fixture(params=["sqlite", "postgresql"])
async def empty_engine(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[AsyncEngine]:
    """An engine on a brand-new, empty database (not the shared, migrated one)."""
    async with fresh_engine(request.param, tmp_path) as engine:
        yield engine


@pytest.fixture
async def empty_pg_engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    async with fresh_engine("postgresql", tmp_path) as engine:
        yield engine


async def _pg_types(engine: AsyncEngine, table: str) -> dict[str, tuple[str, bool]]:
    """Each column's type as PostgreSQL names it, and whether it is nullable."""
    query = text(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull "
        "FROM pg_attribute a WHERE a.attrelid = CAST(:table AS regclass) "
        "AND a.attnum > 0 AND NOT a.attisdropped"
    )
    async with engine.connect() as conn:
        rows = await conn.execute(query, {"table": f'"{table}"'})
        return {name: (type_name, nullable) for name, type_name, nullable in rows}


async def _check_columns(
    engine: AsyncEngine, table: str, expected: dict[str, tuple[str, bool]]
) -> None:
    described = await describe(engine, table)
    columns = described["columns"]
    assert set(columns) == set(expected)
    assert {n: c["nullable"] for n, c in columns.items()} == {n: e[1] for n, e in expected.items()}
    if engine.dialect.name == "postgresql":
        assert await _pg_types(engine, table) == expected
    else:
        assert {n: str(c["type"]) for n, c in columns.items()} == {
            n: _sqlite_type(e[0]) for n, e in expected.items()
        }


async def test_message_tree_state_has_open_assistants_columns(empty_engine: AsyncEngine) -> None:
    await upgrade(empty_engine)
    await _check_columns(empty_engine, "message_tree_state", TREE_STATE_COLUMNS)
    described = await describe(empty_engine, "message_tree_state")
    assert described["pk"] == ["message_tree_id"]
    assert described["fks"] == [(["message_tree_id"], "message", ["id"])]
    assert described["indexes"] == {
        "ix_message_tree_state_active": ["active"],
        "ix_message_tree_state__lang__state": ["state", "lang"],
    }


async def test_native_uuid_on_postgresql(empty_pg_engine: AsyncEngine) -> None:
    await upgrade(empty_pg_engine)
    async with empty_pg_engine.connect() as conn:
        data_type = await conn.scalar(
            text(
                "SELECT data_type FROM information_schema.columns "
                "WHERE table_name = 'message_tree_state' AND column_name = 'message_tree_id'"
            )
        )
    assert data_type == "uuid"


async def test_message_table(empty_engine: AsyncEngine) -> None:
    await upgrade(empty_engine)
    expected = dict(MESSAGE_COLUMNS)
    if empty_engine.dialect.name == "postgresql":
        # Search's generated column, typed as Open-Assistant's (SQLite has FTS5 tables instead).
        expected[search.SEARCH_VECTOR] = ("tsvector", True)
    await _check_columns(empty_engine, "message", expected)
    described = await describe(empty_engine, "message")
    assert described["pk"] == ["id"]
    assert described["fks"] == [(["user_id"], "user", ["id"])]
    assert described["indexes"]["ix_message_message_tree_id"] == ["message_tree_id"]


async def test_user_and_user_stats_exist(empty_engine: AsyncEngine) -> None:
    await upgrade(empty_engine)
    user = await describe(empty_engine, "user")
    assert {"id", "username", "auth_method", "display_name", "enabled", "deleted"} <= set(
        user["columns"]
    )
    assert user["pk"] == ["id"]
    stats = await describe(empty_engine, "user_stats")
    assert {"user_id", "time_frame", "reply_ranked_1"} <= set(stats["columns"])
    assert sorted(stats["pk"]) == ["time_frame", "user_id"]
    assert stats["fks"] == [(["user_id"], "user", ["id"])]


async def test_version_table_and_revision(empty_engine: AsyncEngine) -> None:
    assert await current_revision(empty_engine) is None
    await upgrade(empty_engine)
    names = await table_names(empty_engine)
    assert VERSION_TABLE == "treegate_alembic_version"
    assert VERSION_TABLE in names
    assert "alembic_version" not in names
    assert set(OPEN_ASSISTANT_TABLES) <= names
    assert all(n in OPEN_ASSISTANT_TABLES or n.startswith("treegate_") for n in names), names
    head = head_revision()
    assert head is not None
    assert await current_revision(empty_engine) == head
    async with empty_engine.connect() as conn:
        versions = (await conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))).all()
    assert [v for (v,) in versions] == [head]


async def test_upgrade_twice_is_a_no_op(empty_engine: AsyncEngine) -> None:
    await upgrade(empty_engine)
    async with empty_engine.begin() as conn:
        await conn.execute(
            text(
                'INSERT INTO "user" (id, username, display_name) '
                "VALUES ('0b7c3c1e8a0e4d5c9f3b2a1d0c9e8f7a', 'kept', 'Kept')"
            )
        )
    before = {t: await describe(empty_engine, t) for t in sorted(await table_names(empty_engine))}
    await upgrade(empty_engine)
    after = {t: await describe(empty_engine, t) for t in sorted(await table_names(empty_engine))}
    assert {t: str(v) for t, v in after.items()} == {t: str(v) for t, v in before.items()}
    assert await current_revision(empty_engine) == head_revision()
    async with empty_engine.connect() as conn:
        assert await conn.scalar(text('SELECT username FROM "user"')) == "kept"
        assert await conn.scalar(text(f"SELECT count(*) FROM {VERSION_TABLE}")) == 1


def _diff(conn: Connection) -> list[Any]:
    context = MigrationContext.configure(
        conn,
        opts={
            "version_table": VERSION_TABLE,
            "compare_type": True,
            "compare_server_default": True,
            # Search's column (PostgreSQL) and FTS5 tables (SQLite) are not in `db.tables`.
            "include_object": search.include_object,
        },
    )
    return list(compare_metadata(context, metadata))


async def test_migrated_schema_matches_the_tables(empty_engine: AsyncEngine) -> None:
    await upgrade(empty_engine)
    async with empty_engine.connect() as conn:
        diff = await conn.run_sync(_diff)
    assert diff == []


async def test_diff_detects_a_difference(empty_engine: AsyncEngine) -> None:
    # The comparison is live: an index the tables declare but the database lacks shows up.
    await upgrade(empty_engine)
    async with empty_engine.begin() as conn:
        await conn.execute(text("DROP INDEX ix_message_tree_state_active"))
        diff = await conn.run_sync(_diff)
    assert [(d[0], d[1].name) for d in diff] == [("add_index", "ix_message_tree_state_active")]


async def test_0005_adds_the_bulk_operation_id_and_keeps_the_log(empty_engine: AsyncEngine) -> None:
    """Log rows written before 0005 stay, with no bulk operation; the column is nullable."""
    await upgrade(empty_engine, "0004")
    async with empty_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO treegate_transition (sequence, message_tree_id, from_state, "
                "to_state, operation, at) VALUES (1, '0b7c3c1e8a0e4d5c9f3b2a1d0c9e8f7a', "
                "'growing', 'ranking', 'transitionTree', CURRENT_TIMESTAMP)"
            )
        )
    assert (
        "bulk_operation_id" not in (await describe(empty_engine, "treegate_transition"))["columns"]
    )
    await upgrade(empty_engine)
    columns = (await describe(empty_engine, "treegate_transition"))["columns"]
    assert columns["bulk_operation_id"]["nullable"] is True
    async with empty_engine.connect() as conn:
        rows = (
            await conn.execute(text("SELECT sequence, bulk_operation_id FROM treegate_transition"))
        ).all()
    assert [tuple(r) for r in rows] == [(1, None)]


async def test_0006_adds_a_keys_own_rate_limit_and_keeps_the_keys(
    empty_engine: AsyncEngine,
) -> None:
    """Keys made before 0006 stay, with their role's rate (no rate of their own)."""
    await upgrade(empty_engine, "0005")
    async with empty_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO treegate_api_key (name, role, key_hash, prefix, created_at) "
                "VALUES ('ops', 'OPERATOR', 'abc', 'tg_abc', CURRENT_TIMESTAMP)"
            )
        )
    assert "rate_limit" not in (await describe(empty_engine, "treegate_api_key"))["columns"]
    await upgrade(empty_engine)
    columns = (await describe(empty_engine, "treegate_api_key"))["columns"]
    assert columns["rate_limit"]["nullable"] is True
    async with empty_engine.connect() as conn:
        rows = (await conn.execute(text("SELECT name, rate_limit FROM treegate_api_key"))).all()
    assert [tuple(r) for r in rows] == [("ops", None)]
