"""The transition table: the single source of truth for every state change.

Validation, `allowedTransitions`, the `stateMachine` query, the README table and the
tests' full matrix are all derived from `TRANSITION_TABLE` below.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import Enum
from typing import Final

from domain.states import State


class Role(Enum):
    """Roles, each including the ones before it."""

    READER = 1
    OPERATOR = 2
    MODERATOR = 3
    ADMIN = 4

    def includes(self, other: Role) -> bool:
        return self.value >= other.value


class Operation(Enum):
    """The mutation through which a transition is made."""

    TRANSITION_TREE = "transitionTree"
    HALT_TREE = "haltTree"
    RESUME_TREE = "resumeTree"
    DRAW_PROMPT_LOTTERY = "drawPromptLottery"


class Guard(Enum):
    """Named predicates a transition must pass; evaluated against the tree's messages."""

    ROOT_REVIEW_POSITIVE = "the root message has a positive review result"
    TREE_COMPLETE = "accepted, non-deleted messages >= goal_tree_size and none awaiting review"
    WON_LOTTERY_BEFORE = "the tree has won the prompt lottery before"
    NEVER_WON_LOTTERY = "the tree has never won the prompt lottery"


class _AnyBut:
    """Marks a row that applies from every state but one."""

    def __init__(self, excluded: State) -> None:
        self.excluded = excluded

    def expand(self) -> tuple[State, ...]:
        return tuple(s for s in State if s is not self.excluded)


ANY_BUT_HALTED: Final = _AnyBut(State.HALTED_BY_MODERATOR)

S = State
R = Role
OP = Operation
G = Guard

# fmt: off
TRANSITION_TABLE: Final[tuple[tuple[State | _AnyBut, State, Role, Operation, Guard | None], ...]] = (
    # from                       to                        role         via                     guard
    (S.INITIAL_PROMPT_REVIEW,    S.PROMPT_LOTTERY_WAITING, R.OPERATOR,  OP.TRANSITION_TREE,     G.ROOT_REVIEW_POSITIVE),
    (S.INITIAL_PROMPT_REVIEW,    S.ABORTED_LOW_GRADE,      R.OPERATOR,  OP.TRANSITION_TREE,     None),
    (S.PROMPT_LOTTERY_WAITING,   S.GROWING,                R.OPERATOR,  OP.DRAW_PROMPT_LOTTERY, None),
    (S.GROWING,                  S.RANKING,                R.OPERATOR,  OP.TRANSITION_TREE,     G.TREE_COMPLETE),
    (S.GROWING,                  S.ABORTED_LOW_GRADE,      R.OPERATOR,  OP.TRANSITION_TREE,     None),
    (S.RANKING,                  S.READY_FOR_SCORING,      R.OPERATOR,  OP.TRANSITION_TREE,     None),
    (S.READY_FOR_SCORING,        S.READY_FOR_EXPORT,       R.OPERATOR,  OP.TRANSITION_TREE,     None),
    (S.READY_FOR_SCORING,        S.SCORING_FAILED,         R.OPERATOR,  OP.TRANSITION_TREE,     None),
    (S.SCORING_FAILED,           S.READY_FOR_SCORING,      R.OPERATOR,  OP.TRANSITION_TREE,     None),
    (S.SCORING_FAILED,           S.RANKING,                R.OPERATOR,  OP.TRANSITION_TREE,     None),
    (S.BACKLOG_RANKING,          S.RANKING,                R.OPERATOR,  OP.TRANSITION_TREE,     None),
    (S.BACKLOG_RANKING,          S.ABORTED_LOW_GRADE,      R.OPERATOR,  OP.TRANSITION_TREE,     None),
    (ANY_BUT_HALTED,             S.HALTED_BY_MODERATOR,    R.MODERATOR, OP.HALT_TREE,           None),
    (S.HALTED_BY_MODERATOR,      S.GROWING,                R.MODERATOR, OP.RESUME_TREE,         G.WON_LOTTERY_BEFORE),
    (S.HALTED_BY_MODERATOR,      S.INITIAL_PROMPT_REVIEW,  R.MODERATOR, OP.RESUME_TREE,         G.NEVER_WON_LOTTERY),
)
# fmt: on

# Where trees enter the machine: a new prompt, or an imported backlog tree.
ENTRY_STATES: Final = frozenset({State.INITIAL_PROMPT_REVIEW, State.BACKLOG_RANKING})


@dataclass(frozen=True, slots=True)
class Transition:
    """One concrete row of the table: from one state to another."""

    source: State
    target: State
    role: Role
    operation: Operation
    guard: Guard | None


class TransitionTableError(ValueError):
    """The transition table is inconsistent; raised when this module is imported."""


def _expand(
    table: tuple[tuple[State | _AnyBut, State, Role, Operation, Guard | None], ...],
) -> tuple[Transition, ...]:
    rows: list[Transition] = []
    seen: set[tuple[State, State]] = set()
    for source, target, role, operation, guard in table:
        if not isinstance(target, State):
            raise TransitionTableError(f"unknown target state {target!r}")
        sources = source.expand() if isinstance(source, _AnyBut) else (source,)
        for s in sources:
            if not isinstance(s, State):
                raise TransitionTableError(f"unknown source state {s!r}")
            if s is target:
                raise TransitionTableError(f"self-loop {s.value} -> {target.value}")
            if (s, target) in seen:
                raise TransitionTableError(f"duplicate row {s.value} -> {target.value}")
            seen.add((s, target))
            rows.append(Transition(s, target, role, operation, guard))
    _check_reachable(rows)
    return tuple(rows)


def _check_reachable(rows: list[Transition]) -> None:
    reached = set(ENTRY_STATES)
    queue = deque(ENTRY_STATES)
    while queue:
        state = queue.popleft()
        for row in rows:
            if row.source is state and row.target not in reached:
                reached.add(row.target)
                queue.append(row.target)
    missing = set(State) - reached
    if missing:
        names = ", ".join(sorted(s.value for s in missing))
        raise TransitionTableError(f"states unreachable from the entry states: {names}")


TRANSITIONS: Final[tuple[Transition, ...]] = _expand(TRANSITION_TABLE)


def _rank(role: Role) -> int:
    return role.value


_TARGETS: Final[dict[State, tuple[State, ...]]] = {
    state: tuple(row.target for row in TRANSITIONS if row.source is state) for state in State
}


LEAST_ROLE: Final[dict[Operation, Role]] = {
    operation: min((row.role for row in TRANSITIONS if row.operation is operation), key=_rank)
    for operation in Operation
}
"""The least role any row of an operation needs: checked before a tree is read (a caller without
it learns nothing about the tree); the row that applies is checked again once it is known."""


def lottery_row() -> Transition:
    """The row the prompt lottery applies: the only one of `drawPromptLottery`."""
    (row,) = (r for r in TRANSITIONS if r.operation is Operation.DRAW_PROMPT_LOTTERY)
    return row


def allowed_targets(state: State) -> tuple[State, ...]:
    """The states the table allows a tree in `state` to move to, whatever the role."""
    return _TARGETS[state]


def find_transition(source: State, target: State) -> Transition | None:
    """The table row from `source` to `target`, if there is one."""
    for row in TRANSITIONS:
        if row.source is source and row.target is target:
            return row
    return None
