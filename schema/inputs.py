"""Input types, and their conversion to domain values."""

from __future__ import annotations

from datetime import UTC, datetime

import strawberry

from domain.errors import InvalidInput, check_text
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
        for name, value in (
            ("wonLotteryAfter", self.won_lottery_after),
            ("wonLotteryBefore", self.won_lottery_before),
        ):
            # Compared with stored instants, a time without a zone means nothing (and
            # the database layer refuses it): the client's mistake, not a server error.
            if value is not None and value.utcoffset() is None:
                raise InvalidInput(
                    f"filter.{name}",
                    f"`filter.{name}` needs a time zone, e.g. 2023-04-01T12:00:00+00:00",
                )
            if value is not None:
                try:
                    value.astimezone(UTC)
                except OverflowError:
                    raise InvalidInput(
                        f"filter.{name}", f"`filter.{name}` is out of range in UTC"
                    ) from None
        for lang in self.langs or ():
            check_text("filter.langs", lang)
        check_text("filter.origin", self.origin)
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
