"""Queries on `message`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, NamedTuple
from uuid import UUID

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Integer,
    Select,
    TextClause,
    and_,
    bindparam,
    false,
    func,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from db import search
from db.statements import Query, member, run_core
from db.tables import message
from domain.search import text_search_configs
from domain.values import Message, MessageFilter, MessageKey, MessageOrder

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


# --- messages by id, by parent, by tree ------------------------------------------------------


@lru_cache(maxsize=4)
def _by_ids(pg: bool) -> Select[Any]:
    return select(*MESSAGE_COLUMNS).where(member(message.c.id, "ids", pg=pg))


def messages_query(ids: Sequence[UUID], *, pg: bool) -> Query:
    """The messages with these ids."""
    return Query(_by_ids(pg), {"ids": list(set(ids))})


@lru_cache(maxsize=4)
def _children(pg: bool) -> Select[Any]:
    return select(*MESSAGE_COLUMNS).where(member(message.c.parent_id, "ids", pg=pg))


def children_query(parent_ids: Sequence[UUID], *, pg: bool) -> Query:
    """Every child of these messages, deleted ones too (the caller orders and filters)."""
    return Query(_children(pg), {"ids": list(set(parent_ids))})


@lru_cache(maxsize=4)
def _children_counts(pg: bool) -> Select[Any]:
    return (
        select(message.c.parent_id, func.count())
        .where(member(message.c.parent_id, "ids", pg=pg), message.c.deleted == false())
        .group_by(message.c.parent_id)
    )


def children_counts_query(parent_ids: Sequence[UUID], *, pg: bool) -> Query:
    """How many non-deleted children each of these messages has (absent: none)."""
    return Query(_children_counts(pg), {"ids": list(set(parent_ids))})


@lru_cache(maxsize=4)
def _emojis(pg: bool) -> Select[Any]:
    return select(message.c.id, message.c.emojis).where(member(message.c.id, "ids", pg=pg))


def emojis_query(ids: Sequence[UUID], *, pg: bool) -> Query:
    """The `emojis` column (counts by emoji name) of these messages."""
    return Query(_emojis(pg), {"ids": list(set(ids))})


def to_emojis(value: Any) -> dict[str, int]:
    """The `emojis` column as read: a dict (SQLAlchemy), JSON text (asyncpg) or null."""
    if isinstance(value, str):
        value = json.loads(value)
    if not isinstance(value, dict):
        return {}
    return {str(k): int(v) for k, v in value.items() if isinstance(v, int) and v > 0}


@lru_cache(maxsize=4)
def _tree_messages_capped(pg: bool) -> Select[Any]:
    numbered = (
        select(
            *MESSAGE_COLUMNS,
            func.row_number()
            .over(
                partition_by=message.c.message_tree_id,
                order_by=(message.c.created_date, message.c.id),
            )
            .label("n"),
        )
        .where(member(message.c.message_tree_id, "ids", pg=pg))
        .subquery("numbered")
    )
    return select(*(numbered.c[name] for name in Message._fields)).where(
        numbered.c.n <= bindparam("most", type_=Integer())
    )


def tree_messages_query(tree_ids: Sequence[UUID], most: int, *, pg: bool) -> Query:
    """Every message of these trees (deleted ones too), at most `most` per tree (the oldest):
    a tree that returns `most` rows may have more."""
    return Query(_tree_messages_capped(pg), {"ids": list(set(tree_ids)), "most": most})


# --- pages of messages -----------------------------------------------------------------------


class _Shape(NamedTuple):
    """Which conditions a message filter sets: what its statement depends on."""

    tree: bool
    user: bool
    langs: bool
    role: bool
    created_after: bool
    created_before: bool
    only_roots: bool
    include_deleted: bool
    search_configs: tuple[str, ...] | None


def _shape_and_params(f: MessageFilter, *, pg: bool) -> tuple[_Shape, dict[str, Any]]:
    values = {
        "tree_id": f.message_tree_id,
        "user_id": f.user_id,
        "langs": None if f.langs is None else list(f.langs),
        "role": f.role,
        "created_after": f.created_after,
        "created_before": f.created_before,
    }
    params = {name: value for name, value in values.items() if value is not None}
    configs = None
    if f.search is not None:
        configs = text_search_configs(f.langs)
        params["search"] = search.search_parameter(f.search, pg=pg)
    tree, user, langs, role, after, before = (value is not None for value in values.values())
    shape = _Shape(tree, user, langs, role, after, before, f.only_roots, f.include_deleted, configs)
    return shape, params


def _conditions(shape: _Shape, *, pg: bool) -> list[ColumnElement[bool] | TextClause]:
    conditions: list[ColumnElement[bool] | TextClause] = []
    if shape.tree:
        conditions.append(message.c.message_tree_id == bindparam("tree_id"))
    if shape.user:
        conditions.append(message.c.user_id == bindparam("user_id"))
    if shape.langs:
        conditions.append(member(message.c.lang, "langs", pg=pg))
    if shape.role:
        conditions.append(message.c.role == bindparam("role"))
    if shape.created_after:
        conditions.append(message.c.created_date >= bindparam("created_after"))
    if shape.created_before:
        conditions.append(message.c.created_date < bindparam("created_before"))
    if shape.only_roots:
        conditions.append(message.c.parent_id.is_(None))
    if not shape.include_deleted:
        conditions.append(message.c.deleted == false())
    if shape.search_configs is not None:
        conditions.append(search.condition(shape.search_configs, pg=pg))
    return conditions


@lru_cache(maxsize=256)
def _page(shape: _Shape, descending: bool, after: bool, pg: bool) -> Select[Any]:
    conditions = _conditions(shape, pg=pg)
    if after:
        date: BindParameter[Any] = bindparam("after_date")
        ident: BindParameter[Any] = bindparam("after_id")
        created, key = message.c.created_date, message.c.id
        if descending:
            conditions.append(or_(created < date, and_(created == date, key < ident)))
        else:
            conditions.append(or_(created > date, and_(created == date, key > ident)))
    keys = (message.c.created_date, message.c.id)
    return (
        select(*MESSAGE_COLUMNS)
        .where(*conditions)
        .order_by(*(k.desc() if descending else k.asc() for k in keys))
        .limit(bindparam("limit", type_=Integer()))
    )


def page_query(
    message_filter: MessageFilter,
    order: MessageOrder,
    limit: int,
    after: MessageKey | None,
    *,
    pg: bool,
) -> Query:
    """Up to `limit` messages matching the filter, in `order`, strictly after `after`."""
    shape, params = _shape_and_params(message_filter, pg=pg)
    params["limit"] = limit
    if after is not None:
        params.update(after_date=after.created_date, after_id=after.id)
    descending = order is MessageOrder.CREATED_DATE_DESC
    return Query(_page(shape, descending, after is not None, pg), params)


@lru_cache(maxsize=256)
def _count(shape: _Shape, pg: bool) -> Select[Any]:
    return select(func.count()).select_from(message).where(*_conditions(shape, pg=pg))


def count_query(message_filter: MessageFilter, *, pg: bool) -> Query:
    """How many messages match the filter."""
    shape, params = _shape_and_params(message_filter, pg=pg)
    return Query(_count(shape, pg), params)
