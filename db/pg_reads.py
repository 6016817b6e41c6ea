"""The hot reads on PostgreSQL, through asyncpg itself.

Through SQLAlchemy a statement costs more than its round trip to the database: its cache key
is computed, parameters processed and the result wrapped row by row. For the reads every
request makes (a tree, a page, a count, the root messages of a page), on a connection that
reads statement by statement (autocommit), `PgReads` runs the very statements of `db.trees`
and `db.messages` on asyncpg: their SQL as SQLAlchemy compiled it for asyncpg, once per shape
(`db.statements`), with asyncpg's prepared-statement cache keeping each one parsed and planned
per connection. A test runs generated filters, orders and cursors through both and compares.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any
from uuid import UUID

from db import messages, trees
from db.statements import Driver, Query, fetch_asyncpg, fetchrow_asyncpg
from domain.values import CountDimension, SortKey, StateCount, TreeFilter, TreeOrder, TreeState
from domain.values import Message as MessageValue


class PgReads:
    """`db.reads.Reads` on an asyncpg connection that reads statement by statement."""

    pg = True

    def __init__(self, db: Driver) -> None:
        self._db = db

    async def rows(self, query: Query) -> Sequence[Any]:
        return await fetch_asyncpg(self._db, query)

    async def get_tree(self, tree_id: UUID) -> TreeState | None:
        row = await fetchrow_asyncpg(self._db, trees.tree_query(tree_id, pg=True))
        return None if row is None else trees.to_tree(row)

    async def get_trees(self, ids: Sequence[UUID]) -> dict[UUID, TreeState]:
        if not ids:
            return {}
        rows = await fetch_asyncpg(self._db, trees.trees_query(ids, pg=True))
        return {tree.message_tree_id: tree for tree in map(trees.to_tree, rows)}

    async def list_trees(
        self,
        tree_filter: TreeFilter | None,
        order: TreeOrder,
        limit: int,
        after: SortKey | None = None,
    ) -> list[TreeState]:
        query = trees.page_query(tree_filter, order, limit, after, pg=True)
        return [trees.to_tree(row) for row in await fetch_asyncpg(self._db, query)]

    async def count_trees(self, tree_filter: TreeFilter | None) -> int:
        row = await fetchrow_asyncpg(self._db, trees.count_query(tree_filter, pg=True))
        return int(row[0])

    async def count_by(
        self, dimensions: Iterable[CountDimension], tree_filter: TreeFilter | None
    ) -> list[StateCount]:
        ordered, query = trees.count_by_query(dimensions, tree_filter, pg=True)
        return trees.to_counts(ordered, await fetch_asyncpg(self._db, query))

    async def root_messages(self, tree_ids: Sequence[UUID]) -> dict[UUID, MessageValue]:
        if not tree_ids:
            return {}
        rows = await fetch_asyncpg(self._db, messages.root_messages_query(tree_ids, pg=True))
        return {row[0]: messages.to_message(row) for row in rows}

    async def root_message_columns(
        self, tree_ids: Sequence[UUID], columns: Sequence[str]
    ) -> dict[UUID, tuple[Any, ...]]:
        if not tree_ids:
            return {}
        query = messages.root_columns_query(tree_ids, columns, pg=True)
        return {row[0]: tuple(row[1:]) for row in await fetch_asyncpg(self._db, query)}
