"""The transition log and the lottery status, as GraphQL types."""

from __future__ import annotations

from datetime import datetime
from typing import cast
from uuid import UUID

import strawberry

from domain.outcomes import LotteryStatus as DomainLotteryStatus
from domain.outcomes import StateTransition as DomainTransition
from resolvers.log import LogPage
from schema.enums import Operation, State
from schema.types import PageInfo


def _sequence(root: strawberry.Parent[DomainTransition]) -> strawberry.ID:
    return strawberry.ID(str(root.sequence))


@strawberry.type(description="One row of the transition log.")
class StateTransition:
    sequence: strawberry.ID = strawberry.field(
        resolver=_sequence,
        description="Increases with every change, in commit order; the log's position.",
    )
    message_tree_id: UUID
    from_state: State | None
    to_state: State
    operation: Operation = strawberry.field(description="The mutation (or CLI command) used.")
    actor: str | None = strawberry.field(description="The API key's name, or `cli:<user>`.")
    reason: str | None
    at: datetime


@strawberry.type
class StateTransitionEdge:
    node: StateTransition
    cursor: str


def _log_edges(root: strawberry.Parent[LogPage]) -> list[StateTransitionEdge]:
    return cast("list[StateTransitionEdge]", list(root.edges))


def _log_nodes(root: strawberry.Parent[LogPage]) -> list[StateTransition]:
    return cast("list[StateTransition]", [edge.node for edge in root.edges])


def _log_page_info(root: strawberry.Parent[LogPage]) -> PageInfo:
    return cast(PageInfo, root)  # a page has PageInfo's four attributes


@strawberry.type(
    description=(
        "A page of the log, oldest first. `pageInfo.endCursor` is where to poll from next: "
        "on an empty page it is the cursor that was passed in."
    )
)
class StateTransitionConnection:
    edges: list[StateTransitionEdge] = strawberry.field(resolver=_log_edges)
    nodes: list[StateTransition] = strawberry.field(resolver=_log_nodes)
    page_info: PageInfo = strawberry.field(resolver=_log_page_info)


def _free_slots(root: strawberry.Parent[DomainLotteryStatus]) -> int:
    return root.free_slots


@strawberry.type(description="The prompt lottery of one language.")
class LotteryStatus:
    lang: str
    waiting: int = strawberry.field(description="Trees in PROMPT_LOTTERY_WAITING.")
    growing: int = strawberry.field(description="Trees in GROWING.")
    max_active_trees: int = strawberry.field(description="The cap on growing trees.")
    free_slots: int = strawberry.field(
        resolver=_free_slots, description="How many more trees a draw may activate now."
    )
