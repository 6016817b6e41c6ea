"""Reading message tree states: one tree, pages of trees, and counts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from db import trees
from domain.values import CountDimension, StateCount, TreeFilter, TreeOrder, TreeState
from resolvers.context import Context
from resolvers.pagination import check_first, decode_cursor, encode_cursor, sort_key


@dataclass(frozen=True, slots=True)
class TreeEdge:
    node: TreeState
    order: TreeOrder

    @property
    def cursor(self) -> str:
        # Encoded only when a client selects it (or the page's end), not for every row.
        return encode_cursor(self.order, sort_key(self.node))


@dataclass(frozen=True, slots=True)
class TreePage:
    """One page of trees; `total` is counted only when asked for."""

    edges: tuple[TreeEdge, ...]
    has_next_page: bool
    has_previous_page: bool
    tree_filter: TreeFilter | None

    @property
    def start_cursor(self) -> str | None:
        return self.edges[0].cursor if self.edges else None

    @property
    def end_cursor(self) -> str | None:
        return self.edges[-1].cursor if self.edges else None

    async def total_count(self, ctx: Context) -> int:
        async with ctx.db.use() as conn:
            return await trees.count_trees(conn, self.tree_filter)


async def get_tree(ctx: Context, tree_id: UUID) -> TreeState | None:
    return await ctx.loaders.tree.load(tree_id)


async def list_trees(
    ctx: Context,
    tree_filter: TreeFilter | None,
    order: TreeOrder,
    first: int,
    after: str | None,
) -> TreePage:
    """A page of trees in keyset order: stable when rows are inserted between pages."""
    check_first(first, ctx.limits.max_page_size)
    position = None if after is None else decode_cursor(after, order)
    async with ctx.db.use() as conn:
        rows = await trees.list_trees(conn, tree_filter, order, first + 1, position)
    page = rows[:first]
    for tree in page:
        ctx.loaders.tree.prime(tree.message_tree_id, tree)
    return TreePage(
        edges=tuple(TreeEdge(t, order) for t in page),
        has_next_page=len(rows) > first,
        has_previous_page=position is not None,
        tree_filter=tree_filter,
    )


async def count_trees(
    ctx: Context, dimensions: Sequence[CountDimension], tree_filter: TreeFilter | None
) -> list[StateCount]:
    async with ctx.db.use() as conn:
        return await trees.count_by(conn, dimensions, tree_filter)
