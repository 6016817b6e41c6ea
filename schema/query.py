"""The Query root: thin fields that call the resolvers."""

from __future__ import annotations

from uuid import UUID

import strawberry

from domain import states, transitions
from domain.errors import Forbidden
from domain.values import CountDimension as DomainCountDimension
from domain.values import Message as MessageValue
from domain.values import MessageOrder as MessageOrderValue
from domain.values import StateCount, TreeOrder, TreeState
from resolvers import log, lottery, messages, trees
from resolvers.log import LogPage
from resolvers.trees import TreePage
from schema.connection import (
    MessageConnection,
    MessageTreeStateConnection,
    StateTransitionConnection,
)
from schema.enums import CountDimension, MessageOrder, MessageTreeStateOrder
from schema.inputs import MessageFilter, MessageTreeStateFilter, to_filter, to_message_filter
from schema.log_types import LotteryStatus
from schema.types import (
    Info,
    Message,
    MessageTreeState,
    StateInfo,
    StateMachine,
    TransitionRule,
    Viewer,
)
from schema.types import StateCount as StateCountType


def _state_machine() -> StateMachine:
    return StateMachine(
        states=[
            StateInfo(
                value=s,
                database_value=s.value,
                is_terminal=s.is_terminal,
                description=s.description,
            )
            for s in states.State
        ],
        transitions=[
            TransitionRule(
                from_state=row.source,
                to_state=row.target,
                role=row.role,
                operation=row.operation,
                guard=row.guard,
                guard_description=None if row.guard is None else row.guard.value,
            )
            for row in transitions.TRANSITIONS
        ],
        terminal_states=[s for s in states.State if s in states.TERMINAL_STATES],
        entry_states=[s for s in states.State if s in transitions.ENTRY_STATES],
    )


_STATE_MACHINE = _state_machine()


@strawberry.type
class Query:
    @strawberry.field(description="One tree by id; null when there is none.")
    async def message_tree_state(
        self, info: Info, message_tree_id: UUID
    ) -> MessageTreeState | None:
        return await trees.get_tree(info.context, message_tree_id)  # type: ignore[return-value]

    @strawberry.field(description="A page of trees, filtered and ordered.")
    async def message_tree_states(
        self,
        info: Info,
        filter: MessageTreeStateFilter | None = None,
        order_by: MessageTreeStateOrder | None = TreeOrder.MESSAGE_TREE_ID_ASC,
        first: int | None = 50,
        after: str | None = None,
    ) -> MessageTreeStateConnection:
        page: TreePage = await trees.list_trees(
            info.context,
            to_filter(filter),
            order_by or TreeOrder.MESSAGE_TREE_ID_ASC,
            info.context.limits.default_page_size if first is None else first,
            after,
        )
        return page  # type: ignore[return-value]

    @strawberry.field(description="One message by id; null when there is none.")
    async def message(self, info: Info, id: UUID) -> Message | None:
        found: MessageValue | None = await messages.get_message(info.context, id)
        return found  # type: ignore[return-value]

    @strawberry.field(
        description=(
            "A page of messages, filtered (with full-text search) and ordered by creation "
            "date, as Open-Assistant's message query."
        )
    )
    async def messages(
        self,
        info: Info,
        filter: MessageFilter | None = None,
        order_by: MessageOrder | None = MessageOrderValue.CREATED_DATE_DESC,
        first: int | None = 50,
        after: str | None = None,
    ) -> MessageConnection:
        page: messages.MessagePage = await messages.list_messages(
            info.context,
            to_message_filter(filter),
            order_by or MessageOrderValue.CREATED_DATE_DESC,
            info.context.limits.default_page_size if first is None else first,
            after,
        )
        return page  # type: ignore[return-value]

    @strawberry.field(description="Tree counts grouped by any combination of dimensions.")
    async def tree_state_counts(
        self,
        info: Info,
        group_by: list[CountDimension] = [DomainCountDimension.STATE],  # noqa: B006 (never mutated)
        filter: MessageTreeStateFilter | None = None,
    ) -> list[StateCountType]:
        counts: list[StateCount] = await trees.count_trees(
            info.context, group_by, to_filter(filter)
        )
        return counts  # type: ignore[return-value]

    @strawberry.field(
        description=(
            "The transition log, oldest first after the cursor (optionally of one tree): "
            "a feed a dashboard polls with the last `endCursor`."
        )
    )
    async def transition_log(
        self,
        info: Info,
        after: str | None = None,
        first: int | None = 50,
        message_tree_id: UUID | None = None,
    ) -> StateTransitionConnection:
        page: LogPage = await log.transition_feed(
            info.context,
            after,
            info.context.limits.default_page_size if first is None else first,
            message_tree_id,
        )
        return page  # type: ignore[return-value]

    @strawberry.field(
        description=(
            "Per language: waiting, growing, the cap and free slots. Without `lang`, every "
            "language that has waiting or growing trees; with it, that language (zeros if none)."
        )
    )
    async def lottery_status(self, info: Info, lang: str | None = None) -> list[LotteryStatus]:
        return await lottery.lottery_status(info.context, lang)  # type: ignore[return-value]

    @strawberry.field(
        description=(
            "What the caller may do: the role of the API key sent (or the anonymous role). A page "
            "shows only the actions this role allows; the server checks it on every mutation."
        )
    )
    def viewer(self, info: Info) -> Viewer:
        role = info.context.identity.role
        if role is None:  # requests without read access are refused before they run
            raise Forbidden("no access")
        return Viewer(role=role)

    @strawberry.field(description="The states and the transition table.")
    def state_machine(self) -> StateMachine:
        return _STATE_MACHINE


__all__ = ["Query", "TreeState"]
