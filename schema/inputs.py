"""Input types, and their conversion to domain values."""

from __future__ import annotations

from datetime import datetime

import strawberry

from domain.values import TreeFilter
from schema.enums import State


@strawberry.input(
    description=(
        "Conditions on trees, all of which must hold. An omitted or null field sets no "
        "condition; an empty list matches no tree."
    )
)
class MessageTreeStateFilter:
    states: list[State] | None = None
    langs: list[str] | None = None
    active: bool | None = None
    origin: str | None = strawberry.field(default=None, description="Exact match.")
    won_lottery_after: datetime | None = strawberry.field(
        default=None, description="Won the prompt lottery strictly after this time."
    )
    won_lottery_before: datetime | None = strawberry.field(
        default=None, description="Won the prompt lottery strictly before this time."
    )

    def to_domain(self) -> TreeFilter:
        return TreeFilter(
            states=None if self.states is None else tuple(self.states),
            langs=None if self.langs is None else tuple(self.langs),
            active=self.active,
            origin=self.origin,
            won_lottery_after=self.won_lottery_after,
            won_lottery_before=self.won_lottery_before,
        )


def to_filter(value: MessageTreeStateFilter | None) -> TreeFilter | None:
    return None if value is None else value.to_domain()
