"""Attached to an existing Open-Assistant database, the migrations leave its tables alone."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from db.migrate import VERSION_TABLE, current_revision, head_revision, upgrade
from db.tables import OPEN_ASSISTANT_TABLES
from tests.db.fresh import describe, fresh_engine, table_names


@pytest.fixture
async def empty_pg_engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    async with fresh_engine("postgresql", tmp_path) as engine:
        yield engine


EXISTING_DDL = [
    'CREATE TABLE "user" (id uuid PRIMARY KEY, username varchar(128) NOT NULL, '
    "auth_method varchar(128) NOT NULL, display_name varchar(256) NOT NULL, "
    "enabled boolean NOT NULL, deleted boolean NOT NULL, oa_notes text)",
    'CREATE TABLE user_stats (user_id uuid NOT NULL REFERENCES "user" (id), '
    "time_frame varchar(32) NOT NULL, reply_ranked_1 integer NOT NULL, "
    "oa_leader_score integer, PRIMARY KEY (user_id, time_frame))",
    "CREATE TABLE message (id uuid PRIMARY KEY, parent_id uuid, message_tree_id uuid NOT NULL, "
    'user_id uuid REFERENCES "user" (id), role varchar(128) NOT NULL, '
    "payload_type varchar(200) NOT NULL, lang varchar(32) NOT NULL, oa_extra text)",
    "CREATE TABLE message_tree_state (message_tree_id uuid PRIMARY KEY REFERENCES message (id), "
    "goal_tree_size integer NOT NULL, max_depth integer NOT NULL, "
    "max_children_count integer NOT NULL, state varchar(128) NOT NULL, active boolean NOT NULL, "
    "origin varchar(1024), won_prompt_lottery_date timestamp with time zone, "
    "lang varchar(32) NOT NULL, oa_extra text)",
]
EXTRA_COLUMNS = {
    "user": "oa_notes",
    "user_stats": "oa_leader_score",
    "message": "oa_extra",
    "message_tree_state": "oa_extra",
}


async def test_existing_open_assistant_tables_are_left_alone(
    empty_pg_engine: AsyncEngine,
) -> None:
    empty_engine = empty_pg_engine
    tree_id = "5f0f5c5e-2b1a-4c1d-9e8f-7a6b5c4d3e2f"
    async with empty_engine.begin() as conn:
        for ddl in EXISTING_DDL:
            await conn.execute(text(ddl))
        await conn.execute(
            text(
                "INSERT INTO message (id, message_tree_id, role, payload_type, lang) "
                "VALUES (:id, :id, 'prompter', 'MessagePayload', 'en')"
            ),
            {"id": tree_id},
        )
        await conn.execute(
            text(
                "INSERT INTO message_tree_state VALUES "
                "(:id, 12, 5, 3, 'growing', true, NULL, NULL, 'en', 'kept')"
            ),
            {"id": tree_id},
        )
    before = {t: await describe(empty_engine, t) for t in OPEN_ASSISTANT_TABLES}

    await upgrade(empty_engine)

    for table, extra in EXTRA_COLUMNS.items():
        after = await describe(empty_engine, table)
        assert extra in after["columns"], table
        assert str(after) == str(before[table]), table
    # No index was added to a table that existed: the migration did not touch it.
    assert (await describe(empty_engine, "message_tree_state"))["indexes"] == {}
    async with empty_engine.connect() as conn:
        kept = await conn.scalar(text("SELECT oa_extra FROM message_tree_state"))
    assert kept == "kept"
    assert await current_revision(empty_engine) == head_revision()
    assert VERSION_TABLE in await table_names(empty_engine)
