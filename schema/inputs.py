"""Input types, and their conversion to domain values."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import strawberry

from domain.errors import InvalidInput, check_text
from domain.search import parse_search
from domain.values import MessageFilter as MessageFilterValue
from domain.values import TreeFilter
from schema.enums import State


def check_instant(name: str, value: datetime | None) -> None:
    """A time compared with stored instants: without a zone it means nothing (and the database
    layer refuses it): the client's mistake, not a server error."""
    if value is None:
        return
    if value.utcoffset() is None:
        raise InvalidInput(
            f"filter.{name}",
            f"`filter.{name}` needs a time zone, e.g. 2023-04-01T12:00:00+00:00",
        )
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise InvalidInput(f"filter.{name}", f"`filter.{name}` is out of range in UTC") from None


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
        check_instant("wonLotteryAfter", self.won_lottery_after)
        check_instant("wonLotteryBefore", self.won_lottery_before)
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


@strawberry.input(
    description=(
        "Conditions on messages, all of which must hold (as Open-Assistant's message query). "
        "An omitted or null field sets no condition; an empty `langs` matches no message."
    )
)
class MessageFilter:
    message_tree_id: UUID | None = None
    user_id: UUID | None = None
    langs: list[str] | None = None
    role: str | None = strawberry.field(default=None, description="`prompter` or `assistant`.")
    created_after: datetime | None = strawberry.field(
        default=None, description="Created at or after this time (inclusive)."
    )
    created_before: datetime | None = strawberry.field(
        default=None, description="Created before this time (exclusive)."
    )
    only_roots: bool | None = strawberry.field(
        default=False, description="Only root prompts (no parent)."
    )
    include_deleted: bool | None = strawberry.field(
        default=False, description="Deleted messages too (hidden otherwise)."
    )
    search: str | None = strawberry.field(
        default=None,
        description=(
            'Full text, in web-search syntax: words (all required), "a phrase", `or`, '
            "`-excluded`. Stemmed by each message's language on PostgreSQL; at most 256 "
            "characters."
        ),
    )

    def to_domain(self) -> MessageFilterValue:
        check_instant("createdAfter", self.created_after)
        check_instant("createdBefore", self.created_before)
        for lang in self.langs or ():
            check_text("filter.langs", lang)
        check_text("filter.role", self.role)
        return MessageFilterValue(
            message_tree_id=self.message_tree_id,
            user_id=self.user_id,
            langs=None if self.langs is None else tuple(self.langs),
            role=self.role,
            created_after=self.created_after,
            created_before=self.created_before,
            only_roots=bool(self.only_roots),
            include_deleted=bool(self.include_deleted),
            search=None if self.search is None else parse_search(self.search, "filter.search"),
        )


def to_message_filter(value: MessageFilter | None) -> MessageFilterValue:
    return MessageFilterValue() if value is None else value.to_domain()
