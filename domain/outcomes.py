"""What mutations return: frozen values the schema renders as the result unions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from domain.decisions import RejectionReason
from domain.states import State
from domain.transitions import Operation, Role
from domain.values import TreeState


@dataclass(frozen=True, slots=True)
class StateTransition:
    """One row of the transition log."""

    sequence: int
    message_tree_id: UUID
    from_state: State | None
    to_state: State
    operation: Operation
    actor: str | None
    reason: str | None
    at: datetime
    bulk_operation_id: UUID | None = None
    """The `transitionTrees` call that made the change; None for a single mutation or draw."""


@dataclass(frozen=True, slots=True)
class TransitionApplied:
    tree: TreeState
    transition: StateTransition | None  # None: nothing to change (e.g. halting a halted tree)


@dataclass(frozen=True, slots=True)
class TransitionRejected:
    message_tree_id: UUID
    current_state: State
    requested_state: State | None
    reason: RejectionReason
    message: str


@dataclass(frozen=True, slots=True)
class TreeNotFound:
    message_tree_id: UUID
    message: str


TransitionOutcome = TransitionApplied | TransitionRejected | TreeNotFound


@dataclass(frozen=True, slots=True)
class LotteryDrawn:
    lang: str
    drawn: tuple[TreeState, ...]
    growing_before: int
    growing_after: int
    max_active_trees: int
    message: str


@dataclass(frozen=True, slots=True)
class LotteryRejected:
    lang: str
    reason: RejectionReason
    message: str


LotteryOutcome = LotteryDrawn | LotteryRejected


@dataclass(frozen=True, slots=True)
class LotteryStatus:
    lang: str
    waiting: int
    growing: int
    max_active_trees: int

    @property
    def free_slots(self) -> int:
        return max(self.max_active_trees - self.growing, 0)


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is calling: the API key's name (the actor in the log) and its role.

    `role` None means no access at all (anonymous in production).
    """

    name: str | None
    role: Role | None

    @property
    def authenticated(self) -> bool:
        return self.name is not None

    def allows(self, needed: Role) -> bool:
        return self.role is not None and self.role.includes(needed)


LISTED_IDS = 100
"""A bulk move's report lists the first this many tree ids of each kind."""


@dataclass(frozen=True, slots=True)
class BulkRejections:
    """The trees of a bulk move refused for one reason: how many, and the first ids."""

    reason: RejectionReason
    count: int
    message_tree_ids: tuple[UUID, ...]


@dataclass(frozen=True, slots=True)
class BulkReport:
    """What one `transitionTrees` call did (or, dry, would do) to the trees it examined.

    `matched`: trees matching the filter after the cursor when the call began; `examined`:
    how many of them, in message_tree_id order, the call took (at most its limit); each of
    those was applied, unchanged (halting a halted tree) or rejected for one reason.
    `last_examined` is where a continuation starts when `has_more`.
    """

    operation_id: UUID
    dry_run: bool
    matched: int
    examined: int
    applied: int
    applied_ids: tuple[UUID, ...]
    unchanged: int
    rejected: tuple[BulkRejections, ...]
    last_examined: UUID | None
    has_more: bool
    refused: RejectionReason | None = None
    """Set when the whole call was refused (a reused idempotency key): nothing examined."""
