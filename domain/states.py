"""The message tree states of Open-Assistant, and which of them are terminal."""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    """The state of a message tree, as Open-Assistant stores it (the lower-case value)."""

    INITIAL_PROMPT_REVIEW = "initial_prompt_review"
    """Only the root prompt exists; reviewers decide whether it is good enough."""
    GROWING = "growing"
    """Replies are being collected and reviewed."""
    RANKING = "ranking"
    """Enough replies: ranking tasks for every parent with more than one child."""
    READY_FOR_SCORING = "ready_for_scoring"
    """Rankings collected; the scoring algorithm may run (transient)."""
    READY_FOR_EXPORT = "ready_for_export"
    """Scores computed; part of the exported dataset."""
    SCORING_FAILED = "scoring_failed"
    """The scoring algorithm raised."""
    ABORTED_LOW_GRADE = "aborted_low_grade"
    """Too many bad reviews; no more tasks."""
    HALTED_BY_MODERATOR = "halted_by_moderator"
    """A moderator stopped the tree."""
    BACKLOG_RANKING = "backlog_ranking"
    """An imported tree waiting to be activated for ranking."""
    PROMPT_LOTTERY_WAITING = "prompt_lottery_waiting"
    """The prompt passed review and waits to be drawn in the prompt lottery."""

    @property
    def description(self) -> str:
        return STATE_DESCRIPTIONS[self]

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATES


STATE_DESCRIPTIONS: dict[State, str] = {
    State.INITIAL_PROMPT_REVIEW: (
        "Only the root prompt exists; reviewers decide whether it is good enough."
    ),
    State.GROWING: "Replies are being collected and reviewed.",
    State.RANKING: "Enough replies: ranking tasks for every parent with more than one child.",
    State.READY_FOR_SCORING: "Rankings collected; the scoring algorithm may run (transient).",
    State.READY_FOR_EXPORT: "Scores computed; part of the exported dataset.",
    State.SCORING_FAILED: "The scoring algorithm raised.",
    State.ABORTED_LOW_GRADE: "Too many bad reviews; no more tasks.",
    State.HALTED_BY_MODERATOR: "A moderator stopped the tree.",
    State.BACKLOG_RANKING: "An imported tree waiting to be activated for ranking.",
    State.PROMPT_LOTTERY_WAITING: (
        "The prompt passed review and waits to be drawn in the prompt lottery."
    ),
}

# Open-Assistant's TERMINAL_STATES. "Terminal" there means "inactive", not "final":
# halted and waiting trees can move again.
TERMINAL_STATES: frozenset[State] = frozenset(
    {
        State.READY_FOR_EXPORT,
        State.SCORING_FAILED,
        State.ABORTED_LOW_GRADE,
        State.HALTED_BY_MODERATOR,
        State.BACKLOG_RANKING,
        State.PROMPT_LOTTERY_WAITING,
    }
)


def is_active(state: State) -> bool:
    """The value of the `active` column for a tree in `state` (the one place it is derived)."""
    return state not in TERMINAL_STATES


GREW_STATES: frozenset[State] = frozenset(
    {
        State.GROWING,
        State.RANKING,
        State.READY_FOR_SCORING,
        State.READY_FOR_EXPORT,
        State.SCORING_FAILED,
    }
)
"""States a tree reaches only after it won the prompt lottery and grew past its root; such a
tree has a `won_prompt_lottery_date` (and so has a halted tree that had grown)."""
