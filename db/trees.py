"""Queries on `message_tree_state`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple
from uuid import UUID

from sqlalchemy import ColumnElement, Row, Select, and_, false, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from db.tables import message_tree_state as mts
from domain.errors import UnknownStateValue
from domain.states import State
from domain.values import CountDimension, SortKey, StateCount, TreeFilter, TreeOrder, TreeState


class TreeDefaults(NamedTuple):
    goal_tree_size: int
    max_depth: int
    max_children_count: int


TREE_DEFAULTS = TreeDefaults(goal_tree_size=12, max_depth=3, max_children_count=3)
"""Open-Assistant's defaults (`TreeManagerConfiguration`) for a new tree's state row."""

TREE_COLUMNS = (
    mts.c.message_tree_id,
    mts.c.goal_tree_size,
    mts.c.max_depth,
    mts.c.max_children_count,
    mts.c.state,
    mts.c.active,
    mts.c.origin,
    mts.c.won_prompt_lottery_date,
    mts.c.lang,
)


def parse_state(value: str) -> State:
    try:
        return State(value)
    except ValueError:
        raise UnknownStateValue(value) from None


def to_tree(row: Row[*tuple[Any, ...]]) -> TreeState:
    return TreeState(
        message_tree_id=row.message_tree_id,
        goal_tree_size=row.goal_tree_size,
        max_depth=row.max_depth,
        max_children_count=row.max_children_count,
        state=parse_state(row.state),
        active=row.active,
        origin=row.origin,
        won_prompt_lottery_date=row.won_prompt_lottery_date,
        lang=row.lang,
    )


def filter_clauses(tree_filter: TreeFilter | None) -> list[ColumnElement[bool]]:
    if tree_filter is None:
        return []
    clauses: list[ColumnElement[bool]] = []
    if tree_filter.states is not None:
        values = sorted({s.value for s in tree_filter.states})
        clauses.append(mts.c.state.in_(values) if values else false())
    if tree_filter.langs is not None:
        langs = sorted(set(tree_filter.langs))
        clauses.append(mts.c.lang.in_(langs) if langs else false())
    if tree_filter.active is not None:
        clauses.append(mts.c.active == tree_filter.active)
    if tree_filter.origin is not None:
        clauses.append(mts.c.origin == tree_filter.origin)
    if tree_filter.won_lottery_after is not None:
        clauses.append(mts.c.won_prompt_lottery_date > tree_filter.won_lottery_after)
    if tree_filter.won_lottery_before is not None:
        clauses.append(mts.c.won_prompt_lottery_date < tree_filter.won_lottery_before)
    return clauses


async def get_trees(conn: AsyncConnection, ids: Sequence[UUID]) -> dict[UUID, TreeState]:
    if not ids:
        return {}
    rows = await conn.execute(select(*TREE_COLUMNS).where(mts.c.message_tree_id.in_(set(ids))))
    return {row.message_tree_id: to_tree(row) for row in rows}


async def get_tree(conn: AsyncConnection, tree_id: UUID) -> TreeState | None:
    row = (
        await conn.execute(select(*TREE_COLUMNS).where(mts.c.message_tree_id == tree_id))
    ).first()
    return None if row is None else to_tree(row)


def _after(order: TreeOrder, key: SortKey) -> ColumnElement[bool]:
    """Rows strictly after `key` in `order` (dates sort with nulls last, ids break ties)."""
    tree_id, date = mts.c.message_tree_id, mts.c.won_prompt_lottery_date
    if order is TreeOrder.MESSAGE_TREE_ID_ASC:
        return tree_id > key.message_tree_id
    if order is TreeOrder.MESSAGE_TREE_ID_DESC:
        return tree_id < key.message_tree_id
    ascending = order is TreeOrder.WON_LOTTERY_DATE_ASC
    if key.won_prompt_lottery_date is None:
        beyond_id = tree_id > key.message_tree_id if ascending else tree_id < key.message_tree_id
        return and_(date.is_(None), beyond_id)
    cutoff = key.won_prompt_lottery_date
    if ascending:
        return or_(
            date > cutoff, and_(date == cutoff, tree_id > key.message_tree_id), date.is_(None)
        )
    return or_(date < cutoff, and_(date == cutoff, tree_id < key.message_tree_id), date.is_(None))


def _ordered(query: Select[Any], order: TreeOrder) -> Select[Any]:
    tree_id, date = mts.c.message_tree_id, mts.c.won_prompt_lottery_date
    if order is TreeOrder.MESSAGE_TREE_ID_ASC:
        return query.order_by(tree_id.asc())
    if order is TreeOrder.MESSAGE_TREE_ID_DESC:
        return query.order_by(tree_id.desc())
    if order is TreeOrder.WON_LOTTERY_DATE_ASC:
        return query.order_by(date.asc().nulls_last(), tree_id.asc())
    return query.order_by(date.desc().nulls_last(), tree_id.desc())


async def list_trees(
    conn: AsyncConnection,
    tree_filter: TreeFilter | None,
    order: TreeOrder,
    limit: int,
    after: SortKey | None = None,
) -> list[TreeState]:
    """Up to `limit` trees matching the filter, in `order`, strictly after `after`."""
    clauses = filter_clauses(tree_filter)
    if after is not None:
        clauses.append(_after(order, after))
    query = _ordered(select(*TREE_COLUMNS).where(*clauses), order).limit(limit)
    return [to_tree(row) for row in await conn.execute(query)]


async def count_trees(conn: AsyncConnection, tree_filter: TreeFilter | None) -> int:
    query = select(func.count()).select_from(mts).where(*filter_clauses(tree_filter))
    return int((await conn.execute(query)).scalar_one())


_DIMENSION_COLUMNS = {
    CountDimension.STATE: mts.c.state,
    CountDimension.LANG: mts.c.lang,
    CountDimension.ACTIVE: mts.c.active,
}


async def count_by(
    conn: AsyncConnection, dimensions: Iterable[CountDimension], tree_filter: TreeFilter | None
) -> list[StateCount]:
    """Tree counts grouped by any combination of dimensions, in one statement."""
    wanted = [d for d in CountDimension if d in set(dimensions)]
    columns = [_DIMENSION_COLUMNS[d].label(d.value) for d in wanted]
    query = (
        select(*columns, func.count().label("count"))
        .select_from(mts)
        .where(*filter_clauses(tree_filter))
    )
    if columns:
        query = query.group_by(*columns).order_by(*columns)
    result: list[StateCount] = []
    for row in await conn.execute(query):
        values = row._mapping
        count = int(values["count"])
        result.append(
            StateCount(
                state=parse_state(values["state"]) if CountDimension.STATE in wanted else None,
                lang=values["lang"] if CountDimension.LANG in wanted else None,
                active=bool(values["active"]) if CountDimension.ACTIVE in wanted else None,
                count=count,
            )
        )
    return result
