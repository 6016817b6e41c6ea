"""Reading message tree states: one tree, pages of trees, and counts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from uuid import UUID

from domain.values import (
    CountDimension,
    StateCount,
    TreeFilter,
    TreeOrder,
    TreeState,
)
from resolvers.context import Context
from resolvers.pagination import (
    Page,
    check_first,
    decode_cursor,
    encode_cursor,
    keyset_page,
    sort_key,
)

TreePage = Page[TreeState]


def _total(tree_filter: TreeFilter | None) -> Callable[[Context], Awaitable[int]]:
    async def total(ctx: Context) -> int:
        async def count() -> int:
            async with ctx.db.reads() as reads:
                return await reads.count_trees(tree_filter)

        return await ctx.caches.counts.get(("total", tree_filter), count)

    return total


async def get_tree(ctx: Context, tree_id: UUID) -> TreeState | None:
    return await ctx.loaders.tree.load(tree_id)


async def fetch_tree(ctx: Context, tree_id: UUID) -> TreeState | None:
    """One tree, read at once: for a caller that knows it has nothing to batch."""
    async with ctx.db.reads() as reads:
        return await reads.get_tree(tree_id)


async def fetch_root_message_columns(
    ctx: Context, tree_ids: Sequence[UUID], columns: Sequence[str]
) -> dict[UUID, tuple[Any, ...]]:
    """Just the given attributes of the root messages of a page of trees, in one statement."""
    async with ctx.db.reads() as reads:
        return await reads.root_message_columns(tree_ids, columns)


async def list_trees(
    ctx: Context,
    tree_filter: TreeFilter | None,
    order: TreeOrder,
    first: int,
    after: str | None,
    *,
    prime: bool = True,
) -> TreePage:
    """A page of trees in keyset order: stable when rows are inserted between pages.

    `prime` puts the trees in the request's tree loader, for fields that load them by id.
    """
    check_first(first, ctx.limits.max_page_size)
    position = None if after is None else decode_cursor(after, order)
    async with ctx.db.reads() as reads:
        rows = await reads.list_trees(tree_filter, order, first + 1, position)
    page = keyset_page(
        rows,
        first,
        lambda tree: encode_cursor(order, sort_key(tree)),
        has_previous_page=position is not None,
        total=_total(tree_filter),
    )
    if prime:
        for tree in page.nodes:
            ctx.loaders.tree.prime(tree.message_tree_id, tree)
    return page


async def count_trees(
    ctx: Context, dimensions: Sequence[CountDimension], tree_filter: TreeFilter | None
) -> list[StateCount]:
    async def count() -> list[StateCount]:
        async with ctx.db.reads() as reads:
            return await reads.count_by(dimensions, tree_filter)

    key = ("by", frozenset(dimensions), tree_filter)
    return await ctx.caches.counts.get(key, count)
