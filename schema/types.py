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
from domain.values import Message as MessageValue
from domain.values import TreeState
from resolvers import messages
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

    @strawberry.field(description="The message this one answers; null for the root. Batched.")
    async def parent(self, info: Info) -> Message | None:
        return cast("Message | None", await messages.parent(info.context, _value(self)))

    @strawberry.field(
        description="The replies, by rank (0 is best; unranked last), then created date and id. "
        "Batched."
    )
    async def children(self, info: Info, include_deleted: bool | None = False) -> list[Message]:
        found = await messages.children(
            info.context, _value(self), include_deleted=bool(include_deleted)
        )
        return cast("list[Message]", found)

    @strawberry.field(description="Non-deleted replies. Batched.")
    async def children_count(self, info: Info) -> int:
        return await info.context.loaders.children_count.load(_value(self).id)

    @strawberry.field(description="From the root prompt down to this message (this one last).")
    async def conversation(self, info: Info) -> list[Message]:
        return cast("list[Message]", await messages.conversation(info.context, _value(self)))

    @strawberry.field(
        description="This message, then every message below it, depth-first in `children` order."
    )
    async def descendants(self, info: Info, include_deleted: bool | None = False) -> list[Message]:
        found = await messages.descendants(
            info.context, _value(self), include_deleted=bool(include_deleted)
        )
        return cast("list[Message]", found)

    @strawberry.field(description="The state of this message's tree. Batched.")
    async def tree_state(self, info: Info) -> MessageTreeState:
        tree = await messages.tree_state(info.context, _value(self))
        if tree is None:
            raise LookupError(f"message tree {_value(self).message_tree_id} has no state row")
        return cast("MessageTreeState", tree)

    @strawberry.field(description="Emoji counts, the most used first. Batched.")
    async def emojis(self, info: Info) -> list[EmojiCount]:
        found = await messages.emojis(info.context, _value(self))
        return [EmojiCount(emoji=name, count=n) for name, n in found]


@strawberry.type(description="How many times an emoji was given to a message.")
class EmojiCount:
    emoji: str
    count: int


def _value(message: Message) -> MessageValue:
    # Resolvers return frozen domain values, served as they are (see the module's docstring).
    return cast(MessageValue, message)


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


async def _tree_messages(
    root: strawberry.Parent[TreeState],
    info: Info,
    include_deleted: bool | None = False,
    include_spam: bool | None = True,
) -> list[Message]:
    found = await messages.tree_messages(
        info.context,
        root.message_tree_id,
        include_deleted=bool(include_deleted),
        include_spam=include_spam is not False,
    )
    return cast("list[Message]", found)


async def _longest_conversation(root: strawberry.Parent[TreeState], info: Info) -> list[Message]:
    tree = await messages.message_tree(info.context, root.message_tree_id)
    return cast("list[Message]", tree.longest_conversation())


async def _message_with_most_children(
    root: strawberry.Parent[TreeState], info: Info
) -> Message | None:
    tree = await messages.message_tree(info.context, root.message_tree_id)
    return cast("Message | None", tree.message_with_most_children())


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
    messages: list[Message] = strawberry.field(
        resolver=_tree_messages,
        description=(
            "The whole tree: the root first, then depth-first, siblings in `children` order. "
            "`includeSpam: false` keeps only accepted messages (review result true); a message "
            "left out hides the ones below it. One statement for a page of trees; a tree of "
            "more messages than the server reads at once (TREEGATE_MAX_TREE_MESSAGES) answers "
            "TREE_TOO_LARGE."
        ),
    )
    longest_conversation: list[Message] = strawberry.field(
        resolver=_longest_conversation,
        description=(
            "The longest path from the root through accepted, non-deleted messages, root "
            "first; of equally long ones, the one ending in the earliest message."
        ),
    )
    message_with_most_children: Message | None = strawberry.field(
        resolver=_message_with_most_children,
        description=(
            "Of the accepted, non-deleted messages, the one with the most such replies (ties: "
            "the earliest); null when the root is not accepted."
        ),
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


@strawberry.type(description="The caller, as the server sees it.")
class Viewer:
    role: Role = strawberry.field(
        description="The role of the API key sent, or the anonymous role without one."
    )
