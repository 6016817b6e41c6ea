"""The transition log and the lottery status, as GraphQL types."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import strawberry

from domain.outcomes import LotteryStatus as DomainLotteryStatus
from domain.outcomes import StateTransition as DomainTransition
from schema.enums import Operation, State


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
    bulk_operation_id: UUID | None = strawberry.field(
        description="The `transitionTrees` call that made this change (its `operationId`), or null."
    )


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
