"""Queries on `message_tree_state`: the statements of every tree read, in SQLAlchemy Core.

The statements are built once per shape (`db.statements`); `db.reads` runs them through
SQLAlchemy (`CoreReads`) or, on PostgreSQL, on asyncpg itself (`db.pg_reads.PgReads`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any, NamedTuple
from uuid import UUID

from sqlalchemy import ColumnElement, Select, and_, bindparam, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from db.statements import Query, member, run_core
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

TREE_COLUMNS = tuple(mts.c[name] for name in TreeState._fields)
"""The columns a `TreeState` holds, in its order (its fields are named as the columns)."""

_STATE_AT = TreeState._fields.index("state")
_STATES = {s.value: s for s in State}


def parse_state(value: str) -> State:
    state = _STATES.get(value)
    if state is None:
        raise UnknownStateValue(value)
    return state


def to_tree(row: Sequence[Any]) -> TreeState:
    """A row of `TREE_COLUMNS` (SQLAlchemy's or asyncpg's, read by position)."""
    at = _STATE_AT
    return TreeState._make((*row[:at], parse_state(row[at]), *row[at + 1 :]))


# --- filters ----------------------------------------------------------------------------------


def filter_params(tree_filter: TreeFilter | None) -> dict[str, Any]:
    """The filter's parameters; which keys are present is the statement's shape."""
    params: dict[str, Any] = {}
    if tree_filter is None:
        return params
    if tree_filter.states is not None:
        params["states"] = sorted({s.value for s in tree_filter.states})
    if tree_filter.langs is not None:
        params["langs"] = sorted(set(tree_filter.langs))
    if tree_filter.active is not None:
        params["active"] = tree_filter.active
    if tree_filter.origin is not None:
        params["origin"] = tree_filter.origin
    if tree_filter.won_lottery_after is not None:
        params["won_after"] = tree_filter.won_lottery_after
    if tree_filter.won_lottery_before is not None:
        params["won_before"] = tree_filter.won_lottery_before
    return params


def _filter_clauses(names: Iterable[str], pg: bool) -> list[ColumnElement[bool]]:
    date = mts.c.won_prompt_lottery_date
    clauses: list[ColumnElement[bool]] = []
    for name in names:
        if name == "states":
            clauses.append(member(mts.c.state, name, pg=pg))
        elif name == "langs":
            clauses.append(member(mts.c.lang, name, pg=pg))
        elif name == "active":
            clauses.append(mts.c.active == bindparam(name))
        elif name == "origin":
            clauses.append(mts.c.origin == bindparam(name))
        elif name == "won_after":
            clauses.append(date > bindparam(name))
        elif name == "won_before":
            clauses.append(date < bindparam(name))
        elif name not in _NOT_FILTERS:
            raise ValueError(f"unknown tree parameter {name!r}")
    return clauses


_NOT_FILTERS = frozenset({"after_id", "after_date", "limit", "id", "ids"})


# --- one tree, trees by id ----------------------------------------------------------------------


@lru_cache(maxsize=4)
def _by_id(pg: bool) -> Select[Any]:
    return select(*TREE_COLUMNS).where(mts.c.message_tree_id == bindparam("id"))


@lru_cache(maxsize=4)
def _by_ids(pg: bool) -> Select[Any]:
    return select(*TREE_COLUMNS).where(member(mts.c.message_tree_id, "ids", pg=pg))


def tree_query(tree_id: UUID, *, pg: bool) -> Query:
    return Query(_by_id(pg), {"id": tree_id})


def trees_query(ids: Sequence[UUID], *, pg: bool) -> Query:
    return Query(_by_ids(pg), {"ids": list(set(ids))})


# --- pages --------------------------------------------------------------------------------------


def _after(order: TreeOrder, dated: bool) -> ColumnElement[bool]:
    """Rows strictly after the cursor's position in `order` (dates sort with nulls last, ids
    break ties). `dated`: the position has a date (else it is among the nulls, at the end)."""
    tree_id, date = mts.c.message_tree_id, mts.c.won_prompt_lottery_date
    after_id = bindparam("after_id", type_=tree_id.type)
    after_date = bindparam("after_date", type_=date.type)
    if order is TreeOrder.MESSAGE_TREE_ID_ASC:
        return tree_id > after_id
    if order is TreeOrder.MESSAGE_TREE_ID_DESC:
        return tree_id < after_id
    ascending = order is TreeOrder.WON_LOTTERY_DATE_ASC
    beyond_id = tree_id > after_id if ascending else tree_id < after_id
    if not dated:
        return and_(date.is_(None), beyond_id)
    beyond_date = date > after_date if ascending else date < after_date
    return or_(beyond_date, and_(date == after_date, beyond_id), date.is_(None))


def _ordered(query: Select[Any], order: TreeOrder) -> Select[Any]:
    tree_id, date = mts.c.message_tree_id, mts.c.won_prompt_lottery_date
    if order is TreeOrder.MESSAGE_TREE_ID_ASC:
        return query.order_by(tree_id.asc())
    if order is TreeOrder.MESSAGE_TREE_ID_DESC:
        return query.order_by(tree_id.desc())
    if order is TreeOrder.WON_LOTTERY_DATE_ASC:
        return query.order_by(date.asc().nulls_last(), tree_id.asc())
    return query.order_by(date.desc().nulls_last(), tree_id.desc())


@lru_cache(maxsize=512)
def _page(pg: bool, names: tuple[str, ...], order: TreeOrder, after: bool | None) -> Select[Any]:
    clauses = _filter_clauses(names, pg)
    if after is not None:
        clauses.append(_after(order, after))
    return _ordered(select(*TREE_COLUMNS).where(*clauses), order).limit(bindparam("limit"))


def page_query(
    tree_filter: TreeFilter | None,
    order: TreeOrder,
    limit: int,
    after: SortKey | None = None,
    *,
    pg: bool,
) -> Query:
    """Up to `limit` trees matching the filter, in `order`, strictly after `after`."""
    params = filter_params(tree_filter)
    names = tuple(params)
    dated: bool | None = None
    if after is not None:
        params["after_id"] = after.message_tree_id
        dated = after.won_prompt_lottery_date is not None
        if dated:
            params["after_date"] = after.won_prompt_lottery_date
    params["limit"] = limit
    return Query(_page(pg, names, order, dated), params)


# --- counts -------------------------------------------------------------------------------------

_DIMENSION_COLUMNS = {
    CountDimension.STATE: mts.c.state,
    CountDimension.LANG: mts.c.lang,
    CountDimension.ACTIVE: mts.c.active,
}


@lru_cache(maxsize=512)
def _count(pg: bool, names: tuple[str, ...]) -> Select[Any]:
    return select(func.count()).select_from(mts).where(*_filter_clauses(names, pg))


@lru_cache(maxsize=512)
def _count_by(
    pg: bool, dimensions: tuple[CountDimension, ...], names: tuple[str, ...]
) -> Select[Any]:
    columns = [_DIMENSION_COLUMNS[d] for d in dimensions]
    query = select(*columns, func.count()).select_from(mts).where(*_filter_clauses(names, pg))
    if columns:
        query = query.group_by(*columns).order_by(*columns)
    return query


def count_query(tree_filter: TreeFilter | None, *, pg: bool) -> Query:
    params = filter_params(tree_filter)
    return Query(_count(pg, tuple(params)), params)


def count_by_query(
    dimensions: Iterable[CountDimension], tree_filter: TreeFilter | None, *, pg: bool
) -> tuple[tuple[CountDimension, ...], Query]:
    """The grouped count, and its dimensions in the order of the row's columns."""
    wanted = set(dimensions)
    ordered = tuple(d for d in CountDimension if d in wanted)
    params = filter_params(tree_filter)
    return ordered, Query(_count_by(pg, ordered, tuple(params)), params)


def to_counts(dimensions: tuple[CountDimension, ...], rows: Iterable[Any]) -> list[StateCount]:
    """Rows of `count_by_query` (dimension values, then the count) as `StateCount`s."""
    result: list[StateCount] = []
    for row in rows:
        values = dict(zip(dimensions, row, strict=False))
        state = values.get(CountDimension.STATE)
        active = values.get(CountDimension.ACTIVE)
        result.append(
            StateCount(
                state=None if state is None else parse_state(state),
                lang=values.get(CountDimension.LANG),
                active=None if active is None else bool(active),
                count=int(row[len(dimensions)]),
            )
        )
    return result


# --- through SQLAlchemy (the write side, and every read on SQLite) ------------------------------


def _pg(conn: AsyncConnection) -> bool:
    return conn.dialect.name == "postgresql"


async def get_tree(conn: AsyncConnection, tree_id: UUID) -> TreeState | None:
    row = (await run_core(conn, tree_query(tree_id, pg=_pg(conn)))).first()
    return None if row is None else to_tree(row)


async def get_trees(conn: AsyncConnection, ids: Sequence[UUID]) -> dict[UUID, TreeState]:
    if not ids:
        return {}
    rows = await run_core(conn, trees_query(ids, pg=_pg(conn)))
    return {tree.message_tree_id: tree for tree in map(to_tree, rows)}


async def list_trees(
    conn: AsyncConnection,
    tree_filter: TreeFilter | None,
    order: TreeOrder,
    limit: int,
    after: SortKey | None = None,
) -> list[TreeState]:
    """Up to `limit` trees matching the filter, in `order`, strictly after `after`."""
    query = page_query(tree_filter, order, limit, after, pg=_pg(conn))
    return [to_tree(row) for row in await run_core(conn, query)]


async def count_trees(conn: AsyncConnection, tree_filter: TreeFilter | None) -> int:
    return int((await run_core(conn, count_query(tree_filter, pg=_pg(conn)))).scalar_one())


async def count_by(
    conn: AsyncConnection, dimensions: Iterable[CountDimension], tree_filter: TreeFilter | None
) -> list[StateCount]:
    """Tree counts grouped by any combination of dimensions, in one statement."""
    ordered, query = count_by_query(dimensions, tree_filter, pg=_pg(conn))
    return to_counts(ordered, await run_core(conn, query))


async def count_trees_after(
    conn: AsyncConnection, tree_filter: TreeFilter | None, after_id: UUID | None
) -> int:
    """Trees matching the filter whose id is above `after_id` (all of them without one)."""
    params = filter_params(tree_filter)
    clauses = _filter_clauses(tuple(params), _pg(conn))
    if after_id is not None:
        clauses.append(
            mts.c.message_tree_id > bindparam("after_id", type_=mts.c.message_tree_id.type)
        )
        params["after_id"] = after_id
    query = Query(select(func.count()).select_from(mts).where(*clauses), params)
    return int((await run_core(conn, query)).scalar_one())
