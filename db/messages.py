"""Queries on `message`."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any
from uuid import UUID

from sqlalchemy import Select, false, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from db.statements import Query, member, run_core
from db.tables import message
from domain.values import Message

PAYLOAD_TYPE = "MessagePayload"


def message_payload(text: str) -> dict[str, Any]:
    """The `payload` of a text message, the container Open-Assistant stores the text in."""
    return {"payload_type": PAYLOAD_TYPE, "payload": {"text": text}}


MESSAGE_TEXT = message.c.payload["payload"]["text"].as_string()
"""A message's text, read out of its payload container (`message_payload`)."""

MESSAGE_COLUMNS = (
    message.c.id,
    message.c.parent_id,
    message.c.message_tree_id,
    message.c.user_id,
    message.c.role,
    message.c.lang,
    MESSAGE_TEXT.label("text"),
    message.c.created_date,
    message.c.depth,
    message.c.deleted,
    message.c.review_count,
    message.c.review_result,
    message.c.rank,
    message.c.synthetic,
    message.c.model_name,
)


def to_message(row: Sequence[Any]) -> Message:
    """A row of `MESSAGE_COLUMNS` (SQLAlchemy's or asyncpg's, read by position)."""
    return Message._make(row)


_BY_ATTRIBUTE = {column.name: column for column in MESSAGE_COLUMNS}
assert tuple(_BY_ATTRIBUTE) == Message._fields, "MESSAGE_COLUMNS must follow Message's fields"


@lru_cache(maxsize=4)
def _roots(pg: bool) -> Select[Any]:
    return select(*MESSAGE_COLUMNS).where(member(message.c.id, "ids", pg=pg))


@lru_cache(maxsize=256)
def _root_columns(pg: bool, columns: tuple[str, ...]) -> Select[Any]:
    selected = [_BY_ATTRIBUTE[name] for name in columns]
    return select(message.c.id, *selected).where(member(message.c.id, "ids", pg=pg))


def root_messages_query(tree_ids: Sequence[UUID], *, pg: bool) -> Query:
    """The root message of each tree (the root's id is the tree's id)."""
    return Query(_roots(pg), {"ids": list(set(tree_ids))})


def root_columns_query(tree_ids: Sequence[UUID], columns: Sequence[str], *, pg: bool) -> Query:
    """The id and just the given attributes (`Message` field names) of each tree's root."""
    return Query(_root_columns(pg, tuple(columns)), {"ids": list(set(tree_ids))})


async def root_messages(conn: AsyncConnection, tree_ids: Sequence[UUID]) -> dict[UUID, Message]:
    """The root message of each tree (the root's id is the tree's id), in one statement."""
    if not tree_ids:
        return {}
    query = root_messages_query(tree_ids, pg=conn.dialect.name == "postgresql")
    return {row[0]: to_message(row) for row in await run_core(conn, query)}


async def root_message_columns(
    conn: AsyncConnection, tree_ids: Sequence[UUID], columns: Sequence[str]
) -> dict[UUID, tuple[Any, ...]]:
    """Just the given attributes (`Message` field names) of each tree's root message."""
    if not tree_ids:
        return {}
    query = root_columns_query(tree_ids, columns, pg=conn.dialect.name == "postgresql")
    return {row[0]: tuple(row[1:]) for row in await run_core(conn, query)}


async def message_counts(conn: AsyncConnection, tree_ids: Sequence[UUID]) -> dict[UUID, int]:
    """How many non-deleted messages each tree has, in one statement."""
    if not tree_ids:
        return {}
    query = (
        select(message.c.message_tree_id, func.count())
        .where(message.c.message_tree_id.in_(set(tree_ids)), message.c.deleted == false())
        .group_by(message.c.message_tree_id)
    )
    counts = {tree_id: int(n) for tree_id, n in await conn.execute(query)}
    return {tree_id: counts.get(tree_id, 0) for tree_id in tree_ids}
