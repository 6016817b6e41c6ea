"""The guards of the transition table, as named predicates over what the messages say."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from domain.transitions import Guard


@dataclass(frozen=True, slots=True)
class TreeFacts:
    """What the guards need to know about a tree, read from its `message` rows.

    `root_found` is False when the root message is missing (a database without message rows):
    every guard that reads messages then fails with a reason instead of passing silently.
    """

    root_found: bool
    root_review_result: bool | None
    accepted_messages: int
    awaiting_review: int
    goal_tree_size: int
    won_prompt_lottery_date: datetime | None


@dataclass(frozen=True, slots=True)
class GuardResult:
    passed: bool
    reason: str = ""


PASS = GuardResult(True)


def _root_review_positive(facts: TreeFacts) -> GuardResult:
    if not facts.root_found:
        return GuardResult(False, "the root message is missing, so its review cannot be checked")
    if facts.root_review_result is None:
        return GuardResult(False, "the root message is still under review (no review result)")
    if facts.root_review_result is False:
        return GuardResult(False, "the root message was rejected in review")
    return PASS


def _tree_complete(facts: TreeFacts) -> GuardResult:
    if not facts.root_found:
        return GuardResult(False, "the tree's messages are missing, so its size cannot be checked")
    missing = facts.goal_tree_size - facts.accepted_messages
    if missing > 0:
        return GuardResult(
            False,
            f"the tree has {facts.accepted_messages} accepted, non-deleted messages of the "
            f"{facts.goal_tree_size} it needs ({missing} missing)",
        )
    if facts.awaiting_review:
        return GuardResult(
            False, f"{facts.awaiting_review} message(s) of the tree are still awaiting review"
        )
    return PASS


def _won_lottery_before(facts: TreeFacts) -> GuardResult:
    if facts.won_prompt_lottery_date is None:
        return GuardResult(False, "the tree has never won the prompt lottery")
    return PASS


def _never_won_lottery(facts: TreeFacts) -> GuardResult:
    if facts.won_prompt_lottery_date is not None:
        return GuardResult(False, "the tree has won the prompt lottery before")
    return PASS


GUARDS: dict[Guard, Callable[[TreeFacts], GuardResult]] = {
    Guard.ROOT_REVIEW_POSITIVE: _root_review_positive,
    Guard.TREE_COMPLETE: _tree_complete,
    Guard.WON_LOTTERY_BEFORE: _won_lottery_before,
    Guard.NEVER_WON_LOTTERY: _never_won_lottery,
}

assert set(GUARDS) == set(Guard), "every guard of the table has a predicate"

MESSAGE_GUARDS = frozenset({Guard.ROOT_REVIEW_POSITIVE, Guard.TREE_COMPLETE})
"""Guards that read `message` rows (the others need only the tree)."""


def check(guard: Guard | None, facts: TreeFacts) -> GuardResult:
    return PASS if guard is None else GUARDS[guard](facts)
