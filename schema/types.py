"""Object types of the read API.

Resolvers return frozen domain values (`domain.values.TreeState`, `Message`); these types
read their attributes directly, so no copy is made per row and no field can hide a query
outside the DataLoaders.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, cast
from uuid import UUID

import strawberry

from domain import states as domain_states
from domain import transitions as domain_transitions
from domain.values import TreeState
from resolvers.context import Context
from resolvers.log import tree_transitions
from schema.enums import Guard, Operation, Role, State

if TYPE_CHECKING:
    from schema.log_types import StateTransition

Info = strawberry.Info[Context, None]


@strawberry.type(description="A message of a tree (the columns Treegate reads).")
class Message:
    id: UUID
    parent_id: UUID | None
    message_tree_id: UUID
    user_id: UUID | None
    role: str = strawberry.field(description="`prompter` or `assistant`.")
    lang: str
    text: str | None = strawberry.field(description="The text, from the payload container.")
    created_date: datetime | None
    depth: int = strawberry.field(description="0 for the root prompt.")
    deleted: bool
    review_count: int
    review_result: bool | None = strawberry.field(
        description="Null while under review, true accepted, false rejected."
    )
    rank: int | None = strawberry.field(description="Rank among siblings; 0 is best.")
    synthetic: bool
    model_name: str | None


def _is_terminal(root: strawberry.Parent[TreeState]) -> bool:
    return root.state in domain_states.TERMINAL_STATES


def _allowed_transitions(root: strawberry.Parent[TreeState]) -> list[domain_states.State]:
    return list(domain_transitions.allowed_targets(root.state))


async def _root_message(root: strawberry.Parent[TreeState], info: Info) -> Message | None:
    message = await info.context.loaders.root_message.load(root.message_tree_id)
    # The frozen domain value is served as it is: the type reads its attributes by name.
    return cast("Message | None", message)


async def _transitions(
    root: strawberry.Parent[TreeState], info: Info, first: int | None = 20
) -> list[Annotated[StateTransition, strawberry.lazy("schema.log_types")]]:
    entries = await tree_transitions(
        info.context, root.message_tree_id, 20 if first is None else first
    )
    return cast("list[StateTransition]", entries)


async def _message_count(root: strawberry.Parent[TreeState], info: Info) -> int:
    return await info.context.loaders.message_count.load(root.message_tree_id)


@strawberry.type(description="One row of `message_tree_state`: a tree and where it stands.")
class MessageTreeState:
    message_tree_id: UUID = strawberry.field(description="The tree's id: its root message's id.")
    goal_tree_size: int = strawberry.field(description="Messages wanted before ranking.")
    max_depth: int
    max_children_count: int
    state: State
    active: bool = strawberry.field(
        description="As stored; Treegate keeps it equal to `not isTerminal` on every change."
    )
    origin: str | None = strawberry.field(description="Set by an importer, e.g. a dataset name.")
    won_prompt_lottery_date: datetime | None = strawberry.field(
        description="When the tree first entered `GROWING`."
    )
    lang: str
    is_terminal: bool = strawberry.field(
        resolver=_is_terminal,
        description="The state is in Open-Assistant's TERMINAL_STATES (inactive).",
    )
    allowed_transitions: list[State] = strawberry.field(
        resolver=_allowed_transitions,
        description="States the transition table allows from here (any role).",
    )
    root_message: Message | None = strawberry.field(
        resolver=_root_message,
        description="The root prompt. Batched: one statement for a whole page.",
    )
    message_count: int = strawberry.field(
        resolver=_message_count, description="Non-deleted messages in the tree. Batched per page."
    )
    transitions: list[Annotated[StateTransition, strawberry.lazy("schema.log_types")]] = (
        strawberry.field(
            resolver=_transitions,
            description="This tree's transition log, newest first. Batched per page.",
        )
    )


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type(description="Grouped tree count; a dimension not grouped by is null.")
class StateCount:
    state: State | None
    lang: str | None
    active: bool | None
    count: int


@strawberry.type(description="A state of the machine.")
class StateInfo:
    value: State
    database_value: str = strawberry.field(description="The value stored in the database.")
    is_terminal: bool
    description: str


@strawberry.type(description="One row of the transition table.")
class TransitionRule:
    from_state: State
    to_state: State
    role: Role = strawberry.field(description="The least role that may make it.")
    operation: Operation = strawberry.field(description="The mutation that makes it.")
    guard: Guard | None
    guard_description: str | None


@strawberry.type(description="The state machine: its states and the transition table.")
class StateMachine:
    states: list[StateInfo]
    transitions: list[TransitionRule]
    terminal_states: list[State]
    entry_states: list[State] = strawberry.field(description="Where trees enter the machine.")
