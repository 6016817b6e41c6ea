"""The reads every request makes, behind one interface with an implementation per backend.

`CoreReads` builds its statements with SQLAlchemy Core (`db.trees`, `db.messages`) and serves
SQLite; `db.pg_reads.PgReads` sends the same questions as hand-written SQL to asyncpg and serves
PostgreSQL. `db.session.RequestConnection.reads()` lends the one that fits the engine.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from db import messages, trees
from db.statements import Query, run_core
from domain.values import (
    CountDimension,
    Message,
    SortKey,
    StateCount,
    TreeFilter,
    TreeOrder,
    TreeState,
)


class Reads(Protocol):
    pg: bool
    """Whether the statements run on PostgreSQL (lists are bound as arrays there)."""

    async def rows(self, query: Query) -> Sequence[Any]:
        """The rows of a statement built once per shape (`db.statements`), read by position."""
        ...

    async def get_tree(self, tree_id: UUID) -> TreeState | None: ...

    async def get_trees(self, ids: Sequence[UUID]) -> dict[UUID, TreeState]: ...

    async def list_trees(
        self,
        tree_filter: TreeFilter | None,
        order: TreeOrder,
        limit: int,
        after: SortKey | None = None,
    ) -> list[TreeState]:
        """Up to `limit` trees matching the filter, in `order`, strictly after `after`."""
        ...

    async def count_trees(self, tree_filter: TreeFilter | None) -> int: ...

    async def count_by(
        self, dimensions: Iterable[CountDimension], tree_filter: TreeFilter | None
    ) -> list[StateCount]:
        """Tree counts grouped by any combination of dimensions, in one statement."""
        ...

    async def root_messages(self, tree_ids: Sequence[UUID]) -> dict[UUID, Message]:
        """The root message of each tree (the root's id is the tree's id), in one statement."""
        ...

    async def root_message_columns(
        self, tree_ids: Sequence[UUID], columns: Sequence[str]
    ) -> dict[UUID, tuple[Any, ...]]:
        """Just the given attributes (`Message` field names) of each tree's root message."""
        ...


class CoreReads:
    """`Reads` through SQLAlchemy Core, on any backend."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn
        self.pg = conn.dialect.name == "postgresql"

    async def rows(self, query: Query) -> Sequence[Any]:
        return list(await run_core(self._conn, query))

    async def get_tree(self, tree_id: UUID) -> TreeState | None:
        return await trees.get_tree(self._conn, tree_id)

    async def get_trees(self, ids: Sequence[UUID]) -> dict[UUID, TreeState]:
        return await trees.get_trees(self._conn, ids)

    async def list_trees(
        self,
        tree_filter: TreeFilter | None,
        order: TreeOrder,
        limit: int,
        after: SortKey | None = None,
    ) -> list[TreeState]:
        return await trees.list_trees(self._conn, tree_filter, order, limit, after)

    async def count_trees(self, tree_filter: TreeFilter | None) -> int:
        return await trees.count_trees(self._conn, tree_filter)

    async def count_by(
        self, dimensions: Iterable[CountDimension], tree_filter: TreeFilter | None
    ) -> list[StateCount]:
        return await trees.count_by(self._conn, dimensions, tree_filter)

    async def root_messages(self, tree_ids: Sequence[UUID]) -> dict[UUID, Message]:
        return await messages.root_messages(self._conn, tree_ids)

    async def root_message_columns(
        self, tree_ids: Sequence[UUID], columns: Sequence[str]
    ) -> dict[UUID, tuple[Any, ...]]:
        return await messages.root_message_columns(self._conn, tree_ids, columns)
