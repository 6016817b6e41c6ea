"""Queries on `message`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import Row, false, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

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


def to_message(row: Row[*tuple[Any, ...]]) -> Message:
    return Message(
        id=row.id,
        parent_id=row.parent_id,
        message_tree_id=row.message_tree_id,
        user_id=row.user_id,
        role=row.role,
        lang=row.lang,
        text=row.text,
        created_date=row.created_date,
        depth=row.depth,
        deleted=row.deleted,
        review_count=row.review_count,
        review_result=row.review_result,
        rank=row.rank,
        synthetic=row.synthetic,
        model_name=row.model_name,
    )


async def root_messages(conn: AsyncConnection, tree_ids: Sequence[UUID]) -> dict[UUID, Message]:
    """The root message of each tree (the root's id is the tree's id), in one statement."""
    if not tree_ids:
        return {}
    rows = await conn.execute(select(*MESSAGE_COLUMNS).where(message.c.id.in_(set(tree_ids))))
    return {row.id: to_message(row) for row in rows}


_BY_ATTRIBUTE = {column.name: column for column in MESSAGE_COLUMNS}


async def root_message_columns(
    conn: AsyncConnection, tree_ids: Sequence[UUID], columns: Sequence[str]
) -> dict[UUID, tuple[Any, ...]]:
    """Just the given attributes (`Message` field names) of each tree's root message."""
    if not tree_ids:
        return {}
    selected = [_BY_ATTRIBUTE[name] for name in columns]
    query = select(message.c.id, *selected).where(message.c.id.in_(set(tree_ids)))
    return {row[0]: tuple(row[1:]) for row in await conn.execute(query)}


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
