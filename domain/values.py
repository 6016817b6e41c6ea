"""Frozen domain values: what the persistence layer returns, never ORM rows.

The rows read by the hundred per request (trees, messages) are named tuples: as immutable as
frozen dataclasses, and built about five times faster (a frozen dataclass sets each field
through `object.__setattr__`), which a page of 100 trees notices.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import NamedTuple
from uuid import UUID

from domain.search import Search
from domain.states import State


class TreeState(NamedTuple):
    """One row of `message_tree_state`."""

    message_tree_id: UUID
    goal_tree_size: int
    max_depth: int
    max_children_count: int
    state: State
    active: bool
    origin: str | None
    won_prompt_lottery_date: datetime | None
    lang: str


class Message(NamedTuple):
    """The columns of a `message` row that Treegate reads."""

    id: UUID
    parent_id: UUID | None
    message_tree_id: UUID
    user_id: UUID | None
    role: str
    lang: str
    text: str | None
    created_date: datetime | None
    depth: int
    deleted: bool
    review_count: int
    review_result: bool | None
    rank: int | None
    synthetic: bool
    model_name: str | None


class TreeOrder(Enum):
    """The orders a page of trees can be listed in."""

    MESSAGE_TREE_ID_ASC = "message_tree_id_asc"
    MESSAGE_TREE_ID_DESC = "message_tree_id_desc"
    WON_LOTTERY_DATE_ASC = "won_lottery_date_asc"
    WON_LOTTERY_DATE_DESC = "won_lottery_date_desc"


@dataclass(frozen=True, slots=True)
class TreeFilter:
    """Conditions on trees; None means "no condition", an empty tuple matches nothing."""

    states: tuple[State, ...] | None = None
    langs: tuple[str, ...] | None = None
    active: bool | None = None
    origin: str | None = None
    won_lottery_after: datetime | None = None
    won_lottery_before: datetime | None = None


@dataclass(frozen=True, slots=True)
class SortKey:
    """The keyset position of a tree in an order: the date (for date orders) and the id."""

    won_prompt_lottery_date: datetime | None
    message_tree_id: UUID


class CountDimension(Enum):
    STATE = "state"
    LANG = "lang"
    ACTIVE = "active"


@dataclass(frozen=True, slots=True)
class StateCount:
    """A count of trees for one combination of the grouped dimensions (None: not grouped)."""

    state: State | None
    lang: str | None
    active: bool | None
    count: int


class MessageOrder(Enum):
    """The orders a page of messages can be listed in (Open-Assistant's: by creation date)."""

    CREATED_DATE_ASC = "created_date_asc"
    CREATED_DATE_DESC = "created_date_desc"


@dataclass(frozen=True, slots=True)
class MessageFilter:
    """Conditions on messages; None means "no condition", an empty tuple matches nothing."""

    message_tree_id: UUID | None = None
    user_id: UUID | None = None
    langs: tuple[str, ...] | None = None
    role: str | None = None
    created_after: datetime | None = None
    """Inclusive."""
    created_before: datetime | None = None
    """Exclusive."""
    only_roots: bool = False
    include_deleted: bool = False
    search: Search | None = None


@dataclass(frozen=True, slots=True)
class MessageKey:
    """The keyset position of a message: its creation date and id."""

    created_date: datetime
    id: UUID
