"""One generic Relay-style connection over keyset pages (`resolvers.pagination.Page`).

`Connection[T]` and `Edge[T]` are named after their node type (`MessageTreeStateConnection`,
`StateTransitionEdge`, ...); a list that offers more (the trees' `totalCount`) subclasses it.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar, cast

import strawberry

from resolvers.pagination import Page
from schema.log_types import StateTransition
from schema.types import Info, Message, MessageTreeState, PageInfo

NodeT = TypeVar("NodeT")


@strawberry.type
class Edge(Generic[NodeT]):
    node: NodeT
    cursor: str = strawberry.field(description="Opaque; pass as `after` to continue.")


def _page_info(root: strawberry.Parent[Page[Any]]) -> PageInfo:
    return cast(PageInfo, root)  # a page has PageInfo's four attributes


# A page is served as it is: the fields read its attributes (`edges`, `nodes`) by name.
@strawberry.type
class Connection(Generic[NodeT]):
    edges: list[Edge[NodeT]]
    nodes: list[NodeT]
    page_info: PageInfo = strawberry.field(resolver=_page_info)


async def _total_count(root: strawberry.Parent[Page[Any]], info: Info) -> int:
    return await root.total_count(info.context)


@strawberry.type(description="A page of trees. Cursors are opaque keyset cursors.")
class MessageTreeStateConnection(Connection[MessageTreeState]):
    total_count: int = strawberry.field(
        resolver=_total_count,
        description="Trees matching the filter, on every page (counted only when asked for).",
    )


@strawberry.type(
    description=(
        "A page of the log, oldest first. `pageInfo.endCursor` is where to poll from next: "
        "on an empty page it is the cursor that was passed in."
    )
)
class StateTransitionConnection(Connection[StateTransition]):
    pass


@strawberry.type(
    description="A page of messages in keyset order on (createdDate, id): stable under inserts."
)
class MessageConnection(Connection[Message]):
    total_count: int = strawberry.field(
        resolver=_total_count,
        description="Messages matching the filter, on every page (counted only when asked for).",
    )
