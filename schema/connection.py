"""The Relay-style connection over pages of trees."""

from __future__ import annotations

from typing import cast

import strawberry

from resolvers.trees import TreePage
from schema.types import Info, MessageTreeState, MessageTreeStateEdge, PageInfo


# Frozen domain values are served as they are: the types read their attributes by name.
def _edges(root: strawberry.Parent[TreePage]) -> list[MessageTreeStateEdge]:
    return cast("list[MessageTreeStateEdge]", list(root.edges))


def _nodes(root: strawberry.Parent[TreePage]) -> list[MessageTreeState]:
    return cast("list[MessageTreeState]", [edge.node for edge in root.edges])


def _page_info(root: strawberry.Parent[TreePage]) -> PageInfo:
    return cast(PageInfo, root)  # a page has PageInfo's four attributes


async def _total_count(root: strawberry.Parent[TreePage], info: Info) -> int:
    return await root.total_count(info.context)


@strawberry.type(description="A page of trees. Cursors are opaque keyset cursors.")
class MessageTreeStateConnection:
    edges: list[MessageTreeStateEdge] = strawberry.field(resolver=_edges)
    nodes: list[MessageTreeState] = strawberry.field(resolver=_nodes)
    page_info: PageInfo = strawberry.field(resolver=_page_info)
    total_count: int = strawberry.field(
        resolver=_total_count,
        description="Trees matching the filter, on every page (counted only when asked for).",
    )
