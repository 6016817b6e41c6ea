"""GraphQL enums, built from the domain enums so the two never drift apart.

GraphQL values are the member names (`PROMPT_LOTTERY_WAITING`); resolvers receive and return
the domain members themselves, with no conversion.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, cast

import strawberry

from domain import decisions, states, transitions, values


def _graphql_enum(cls: type[Enum], name: str, description: str, **docs: str) -> Any:
    decorated = strawberry.enum(cls, name=name, description=description)
    definition = cast(Any, decorated).__strawberry_definition__
    for value in definition.values:
        value.description = docs.get(value.name)
    return decorated


State = _graphql_enum(
    states.State,
    "State",
    "The state of a message tree in Open-Assistant's state machine.",
    **{s.name: s.description for s in states.State},
)
MessageTreeStateOrder = _graphql_enum(
    values.TreeOrder,
    "MessageTreeStateOrder",
    "How a page of trees is ordered. Trees that never won the lottery sort last by date.",
)
MessageOrder = _graphql_enum(
    values.MessageOrder, "MessageOrder", "How a page of messages is ordered: by creation date."
)
CountDimension = _graphql_enum(
    values.CountDimension, "CountDimension", "A column tree counts can be grouped by."
)
Role = _graphql_enum(
    transitions.Role,
    "Role",
    "Roles of API keys; each includes the ones before it.",
    READER="Every query.",
    OPERATOR="transitionTree and drawPromptLottery.",
    MODERATOR="haltTree and resumeTree.",
    ADMIN="Everything.",
)
Operation = _graphql_enum(
    transitions.Operation,
    "TransitionOperation",
    "The mutation through which a transition of the table is made.",
)
Guard = _graphql_enum(
    transitions.Guard,
    "TransitionGuard",
    "A condition a transition must meet, read from the tree's messages.",
    **{g.name: g.value for g in transitions.Guard},
)
RejectionReason = _graphql_enum(
    decisions.RejectionReason,
    "RejectionReason",
    "Why a transition or draw was not applied.",
    **{r.name: r.value for r in decisions.RejectionReason},
)
