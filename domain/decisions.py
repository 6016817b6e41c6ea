"""Deciding a requested transition: pure, from the table, the tree and the guard facts."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from domain import guards
from domain.states import State
from domain.transitions import (
    LEAST_ROLE,
    TRANSITIONS,
    Operation,
    Role,
    Transition,
    allowed_targets,
    find_transition,
)


class RejectionReason(Enum):
    """Why a transition was not applied."""

    NOT_ALLOWED = "the table has no such transition for this operation"
    STATE_CHANGED = "the tree is not in the state the caller expected"
    GUARD_FAILED = "the transition's guard did not hold"
    LOTTERY_ONLY = "only the prompt lottery makes this transition"
    IDEMPOTENCY_KEY_REUSED = "the idempotency key was used with a different input"


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: RejectionReason
    message: str


def resume_target(won_lottery_before: bool) -> State:
    """Where `resumeTree` sends a halted tree (as Open-Assistant un-halts it)."""
    return State.GROWING if won_lottery_before else State.INITIAL_PROMPT_REVIEW


def find_rule(current: State, target: State, operation: Operation) -> Transition | Rejection:
    """The table row `operation` may use to move a tree from `current` to `target`."""
    row = find_transition(current, target)
    if row is not None and row.operation is operation:
        return row
    if row is not None and row.operation is Operation.DRAW_PROMPT_LOTTERY:
        return Rejection(
            RejectionReason.LOTTERY_ONLY,
            f"{current.name} -> {target.name} is made only by the prompt lottery "
            "(drawPromptLottery)",
        )
    if row is not None:
        return Rejection(
            RejectionReason.NOT_ALLOWED,
            f"{current.name} -> {target.name} is made with {row.operation.value}, "
            f"not {operation.value}",
        )
    reachable = [t.name for t in allowed_targets(current)]
    return Rejection(
        RejectionReason.NOT_ALLOWED,
        f"no transition {current.name} -> {target.name}; from {current.name} the table allows "
        + (", ".join(reachable) if reachable else "nothing"),
    )


def check_guard(row: Transition, facts: guards.TreeFacts) -> Rejection | None:
    result = guards.check(row.guard, facts)
    if result.passed:
        return None
    return Rejection(
        RejectionReason.GUARD_FAILED,
        f"{row.source.name} -> {row.target.name} needs {row.guard.value if row.guard else ''}: "
        f"{result.reason}",
    )


def check_expected(expected: State | None, current: State) -> Rejection | None:
    if expected is None or expected is current:
        return None
    return Rejection(
        RejectionReason.STATE_CHANGED,
        f"the tree is {current.name}, not {expected.name} as expected",
    )


def bulk_role(target: State) -> Role:
    """The role a bulk move to `target` needs: the highest of the table's rows into `target`
    that a bulk move may make (every row but the lottery's), and at least `transitionTree`'s.

    So halting and resuming in bulk need a moderator, whichever trees the filter selects, and
    no tree met half-way through the call can need more than the caller was checked for."""
    roles = [LEAST_ROLE[Operation.TRANSITION_TREE]]
    roles += [
        row.role
        for row in TRANSITIONS
        if row.target is target and row.operation is not Operation.DRAW_PROMPT_LOTTERY
    ]
    return max(roles, key=lambda role: role.value)


def bulk_operation(current: State, target: State) -> Operation:
    """The operation a bulk move uses for a tree in `current`: that of the table's row to
    `target`. A lottery row, or no row, goes through `transitionTree`, which refuses it
    (LOTTERY_ONLY, NOT_ALLOWED); a halted tree asked to halt, through `haltTree`, for which
    it is nothing to change."""
    row = find_transition(current, target)
    if row is not None and row.operation is not Operation.DRAW_PROMPT_LOTTERY:
        return row.operation
    if row is None and target is State.HALTED_BY_MODERATOR:
        return Operation.HALT_TREE
    return Operation.TRANSITION_TREE
