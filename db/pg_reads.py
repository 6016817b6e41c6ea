"""The hot reads on PostgreSQL, through asyncpg itself.

`db.trees` and `db.messages` build their statements with SQLAlchemy Core, which costs more per
statement than the round trip to the database: the statement is built, its cache key computed,
the result wrapped row by row. For the reads every request makes (a tree, a page, a count, the
root messages of a page) on a connection that reads statement by statement (autocommit), these
functions send the same SQL, hand-written, straight to asyncpg, whose prepared-statement cache
keeps each one parsed and planned per connection. Filters bind lists as arrays (`= ANY($n)`), so
a statement's text does not depend on how many states or languages a filter names.

They return the same domain values as their Core counterparts (`db.reads.CoreReads`); the test
suite runs on both backends, so SQLite checks the Core versions and PostgreSQL these.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any
from uuid import UUID

from domain.errors import UnknownStateValue
from domain.states import State
from domain.values import CountDimension, SortKey, StateCount, TreeFilter, TreeOrder, TreeState
from domain.values import Message as MessageValue

Driver = Any
"""An asyncpg connection."""

_STATES = {s.value: s for s in State}


def _state(value: str) -> State:
    state = _STATES.get(value)
    if state is None:
        raise UnknownStateValue(value)
    return state


TREE_COLUMNS = (
    "message_tree_id, goal_tree_size, max_depth, max_children_count, state, active, origin, "
    "won_prompt_lottery_date, lang"
)


def _tree(row: Any) -> TreeState:
    state = _STATES.get(row[4])
    if state is None:
        raise UnknownStateValue(row[4])
    return TreeState(row[0], row[1], row[2], row[3], state, row[5], row[6], row[7], row[8])


def _where(tree_filter: TreeFilter | None, args: list[Any]) -> list[str]:
    """SQL conditions for the filter; their parameters are appended to `args`."""
    if tree_filter is None:
        return []

    def bind(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    clauses: list[str] = []
    if tree_filter.states is not None:
        clauses.append(f"state = ANY({bind(sorted({s.value for s in tree_filter.states}))})")
    if tree_filter.langs is not None:
        clauses.append(f"lang = ANY({bind(sorted(set(tree_filter.langs)))})")
    if tree_filter.active is not None:
        clauses.append(f"active = {bind(tree_filter.active)}")
    if tree_filter.origin is not None:
        clauses.append(f"origin = {bind(tree_filter.origin)}")
    if tree_filter.won_lottery_after is not None:
        clauses.append(f"won_prompt_lottery_date > {bind(tree_filter.won_lottery_after)}")
    if tree_filter.won_lottery_before is not None:
        clauses.append(f"won_prompt_lottery_date < {bind(tree_filter.won_lottery_before)}")
    return clauses


_ORDER_BY = {
    TreeOrder.MESSAGE_TREE_ID_ASC: "message_tree_id ASC",
    TreeOrder.MESSAGE_TREE_ID_DESC: "message_tree_id DESC",
    TreeOrder.WON_LOTTERY_DATE_ASC: "won_prompt_lottery_date ASC NULLS LAST, message_tree_id ASC",
    TreeOrder.WON_LOTTERY_DATE_DESC: (
        "won_prompt_lottery_date DESC NULLS LAST, message_tree_id DESC"
    ),
}


def _after(order: TreeOrder, key: SortKey, args: list[Any]) -> str:
    """Rows strictly after `key` in `order` (as `db.trees._after`: dates sort nulls last)."""
    args.append(key.message_tree_id)
    tree_id = f"${len(args)}"
    if order is TreeOrder.MESSAGE_TREE_ID_ASC:
        return f"message_tree_id > {tree_id}"
    if order is TreeOrder.MESSAGE_TREE_ID_DESC:
        return f"message_tree_id < {tree_id}"
    beyond = ">" if order is TreeOrder.WON_LOTTERY_DATE_ASC else "<"
    if key.won_prompt_lottery_date is None:
        return f"(won_prompt_lottery_date IS NULL AND message_tree_id {beyond} {tree_id})"
    args.append(key.won_prompt_lottery_date)
    date = f"${len(args)}"
    return (
        f"(won_prompt_lottery_date {beyond} {date} OR (won_prompt_lottery_date = {date} "
        f"AND message_tree_id {beyond} {tree_id}) OR won_prompt_lottery_date IS NULL)"
    )


def _where_sql(clauses: list[str]) -> str:
    return f" WHERE {' AND '.join(clauses)}" if clauses else ""


_MESSAGE_EXPRESSIONS = {name: name for name in MessageValue._fields} | {
    "text": "payload -> 'payload' ->> 'text'"
}
MESSAGE_COLUMNS = (
    "id, parent_id, message_tree_id, user_id, role, lang, payload -> 'payload' ->> 'text', "
    "created_date, depth, deleted, review_count, review_result, rank, synthetic, model_name"
)


class PgReads:
    """`db.reads.Reads` on an asyncpg connection that reads statement by statement."""

    def __init__(self, db: Driver) -> None:
        self._db = db

    async def get_tree(self, tree_id: UUID) -> TreeState | None:
        row = await self._db.fetchrow(
            f"SELECT {TREE_COLUMNS} FROM message_tree_state WHERE message_tree_id = $1", tree_id
        )
        return None if row is None else _tree(row)

    async def get_trees(self, ids: Sequence[UUID]) -> dict[UUID, TreeState]:
        if not ids:
            return {}
        sql = f"SELECT {TREE_COLUMNS} FROM message_tree_state WHERE message_tree_id = ANY($1)"
        rows = await self._db.fetch(sql, list(set(ids)))
        return {row[0]: _tree(row) for row in rows}

    async def list_trees(
        self,
        tree_filter: TreeFilter | None,
        order: TreeOrder,
        limit: int,
        after: SortKey | None = None,
    ) -> list[TreeState]:
        args: list[Any] = []
        clauses = _where(tree_filter, args)
        if after is not None:
            clauses.append(_after(order, after, args))
        args.append(limit)
        sql = (
            f"SELECT {TREE_COLUMNS} FROM message_tree_state{_where_sql(clauses)} "
            f"ORDER BY {_ORDER_BY[order]} LIMIT ${len(args)}"
        )
        return [_tree(row) for row in await self._db.fetch(sql, *args)]

    async def count_trees(self, tree_filter: TreeFilter | None) -> int:
        args: list[Any] = []
        sql = f"SELECT count(*) FROM message_tree_state{_where_sql(_where(tree_filter, args))}"
        return int(await self._db.fetchval(sql, *args))

    async def count_by(
        self, dimensions: Iterable[CountDimension], tree_filter: TreeFilter | None
    ) -> list[StateCount]:
        wanted = [d for d in CountDimension if d in set(dimensions)]
        columns = ", ".join(d.value for d in wanted)
        args: list[Any] = []
        sql = f"SELECT {columns + ', ' if columns else ''}count(*) FROM message_tree_state"
        sql += _where_sql(_where(tree_filter, args))
        if columns:
            sql += f" GROUP BY {columns} ORDER BY {columns}"
        result: list[StateCount] = []
        for row in await self._db.fetch(sql, *args):
            values = dict(zip(wanted, row, strict=False))
            result.append(
                StateCount(
                    state=_state(values[CountDimension.STATE])
                    if CountDimension.STATE in values
                    else None,
                    lang=values.get(CountDimension.LANG),
                    active=values.get(CountDimension.ACTIVE),
                    count=int(row[len(wanted)]),
                )
            )
        return result

    async def root_messages(self, tree_ids: Sequence[UUID]) -> dict[UUID, MessageValue]:
        if not tree_ids:
            return {}
        sql = f"SELECT {MESSAGE_COLUMNS} FROM message WHERE id = ANY($1)"
        rows = await self._db.fetch(sql, list(set(tree_ids)))
        return {row[0]: MessageValue(*row) for row in rows}

    async def root_message_columns(
        self, tree_ids: Sequence[UUID], columns: Sequence[str]
    ) -> dict[UUID, tuple[Any, ...]]:
        if not tree_ids:
            return {}
        selected = "".join(f", {_MESSAGE_EXPRESSIONS[name]}" for name in columns)
        sql = f"SELECT id{selected} FROM message WHERE id = ANY($1)"
        rows = await self._db.fetch(sql, list(set(tree_ids)))
        return {row[0]: row[1:] for row in rows}
