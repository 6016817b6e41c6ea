"""Guards, `find_rule` over every (from, to, operation), and the outcome codec.

The expected table is transcribed from docs/design.md ("The transition table") here,
independently of `domain.transitions`, so a wrong row in the code shows up as a wrong cell.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from itertools import product

import pytest

from domain import guards
from domain.codec import decode_outcome, encode_outcome
from domain.decisions import (
    Rejection,
    RejectionReason,
    check_expected,
    check_guard,
    find_rule,
    resume_target,
)
from domain.guards import TreeFacts
from domain.outcomes import (
    LotteryDrawn,
    LotteryRejected,
    StateTransition,
    TransitionApplied,
    TransitionRejected,
    TreeNotFound,
)
from domain.states import State
from domain.transitions import Guard, Operation, Role, Transition
from domain.values import TreeState

S = State
OP = Operation
WON = datetime(2023, 4, 1, 12, 0, tzinfo=UTC)

# docs/design.md, row by row: (from, to) -> (operation, guard). Roles: operator for transitionTree
# and the lottery, moderator for halt and resume.
_ROWS: dict[tuple[State, State], tuple[Operation, Guard | None]] = {
    (S.INITIAL_PROMPT_REVIEW, S.PROMPT_LOTTERY_WAITING): (
        OP.TRANSITION_TREE,
        Guard.ROOT_REVIEW_POSITIVE,
    ),
    (S.INITIAL_PROMPT_REVIEW, S.ABORTED_LOW_GRADE): (OP.TRANSITION_TREE, None),
    (S.PROMPT_LOTTERY_WAITING, S.GROWING): (OP.DRAW_PROMPT_LOTTERY, None),
    (S.GROWING, S.RANKING): (OP.TRANSITION_TREE, Guard.TREE_COMPLETE),
    (S.GROWING, S.ABORTED_LOW_GRADE): (OP.TRANSITION_TREE, None),
    (S.RANKING, S.READY_FOR_SCORING): (OP.TRANSITION_TREE, None),
    (S.READY_FOR_SCORING, S.READY_FOR_EXPORT): (OP.TRANSITION_TREE, None),
    (S.READY_FOR_SCORING, S.SCORING_FAILED): (OP.TRANSITION_TREE, None),
    (S.SCORING_FAILED, S.READY_FOR_SCORING): (OP.TRANSITION_TREE, None),
    (S.SCORING_FAILED, S.RANKING): (OP.TRANSITION_TREE, None),
    (S.BACKLOG_RANKING, S.RANKING): (OP.TRANSITION_TREE, None),
    (S.BACKLOG_RANKING, S.ABORTED_LOW_GRADE): (OP.TRANSITION_TREE, None),
    (S.HALTED_BY_MODERATOR, S.GROWING): (OP.RESUME_TREE, Guard.WON_LOTTERY_BEFORE),
    (S.HALTED_BY_MODERATOR, S.INITIAL_PROMPT_REVIEW): (OP.RESUME_TREE, Guard.NEVER_WON_LOTTERY),
}
for _s in State:
    if _s is not S.HALTED_BY_MODERATOR:
        _ROWS[(_s, S.HALTED_BY_MODERATOR)] = (OP.HALT_TREE, None)
_ROLE = {
    OP.TRANSITION_TREE: Role.OPERATOR,
    OP.DRAW_PROMPT_LOTTERY: Role.OPERATOR,
    OP.HALT_TREE: Role.MODERATOR,
    OP.RESUME_TREE: Role.MODERATOR,
}


def expected_rule(source: State, target: State, operation: Operation) -> str | Transition:
    """The row, or the name of the rejection reason, as docs/design.md reads."""
    row = _ROWS.get((source, target))
    if row is not None and row[0] is operation:
        return Transition(source, target, _ROLE[operation], operation, row[1])
    if (source, target) == (S.PROMPT_LOTTERY_WAITING, S.GROWING):
        return "LOTTERY_ONLY"  # "drawn by drawPromptLottery, never by transitionTree"
    return "NOT_ALLOWED"


def test_the_expected_table_has_every_row_of_design() -> None:
    # 12 rows between named states, 9 halt rows (every state but halted), 2 resume rows.
    assert len(_ROWS) == 12 + 9 + 2
    assert all(s is not t for s, t in _ROWS)


@pytest.mark.parametrize(
    ("source", "target", "operation"),
    list(product(State, State, Operation)),
    ids=lambda v: v.name if hasattr(v, "name") else str(v),
)
def test_find_rule_cell(source: State, target: State, operation: Operation) -> None:
    expected = expected_rule(source, target, operation)
    result = find_rule(source, target, operation)
    if isinstance(expected, Transition):
        assert result == expected
        return
    assert isinstance(result, Rejection)
    assert result.reason is RejectionReason[expected]
    assert source.name in result.message
    assert target.name in result.message


def test_find_rule_matrix_counts() -> None:
    results = [find_rule(s, t, op) for s, t, op in product(State, State, Operation)]
    assert len(results) == 400
    rows = [r for r in results if isinstance(r, Transition)]
    lottery_only = [
        r for r in results if isinstance(r, Rejection) and r.reason is RejectionReason.LOTTERY_ONLY
    ]
    assert len(rows) == len(_ROWS)  # each row once, under its own operation
    assert len(lottery_only) == 3  # PLW -> GROWING under the three other operations


def test_wrong_operation_names_the_right_one() -> None:
    to_halt = find_rule(S.GROWING, S.HALTED_BY_MODERATOR, OP.TRANSITION_TREE)
    assert isinstance(to_halt, Rejection)
    assert to_halt.reason is RejectionReason.NOT_ALLOWED
    assert "haltTree" in to_halt.message
    resume = find_rule(S.HALTED_BY_MODERATOR, S.GROWING, OP.TRANSITION_TREE)
    assert isinstance(resume, Rejection)
    assert "resumeTree" in resume.message
    lottery = find_rule(S.PROMPT_LOTTERY_WAITING, S.GROWING, OP.TRANSITION_TREE)
    assert isinstance(lottery, Rejection)
    assert "drawPromptLottery" in lottery.message


# --- guards --------------------------------------------------------------------------------

GOOD = TreeFacts(
    root_found=True,
    root_review_result=True,
    accepted_messages=5,
    awaiting_review=0,
    goal_tree_size=5,
    won_prompt_lottery_date=None,
)


@pytest.mark.parametrize(
    ("facts", "passed", "words"),
    [
        (GOOD, True, ""),
        (replace(GOOD, root_found=False, root_review_result=None), False, "missing"),
        (replace(GOOD, root_review_result=None), False, "under review"),
        (replace(GOOD, root_review_result=False), False, "rejected"),
    ],
    ids=["accepted", "root missing", "root pending", "root rejected"],
)
def test_root_review_positive(facts: TreeFacts, passed: bool, words: str) -> None:
    result = guards.check(Guard.ROOT_REVIEW_POSITIVE, facts)
    assert result.passed is passed
    assert words in result.reason


@pytest.mark.parametrize(
    ("accepted", "awaiting", "root_found", "passed", "words"),
    [
        (4, 0, True, False, "4 accepted, non-deleted messages of the 5 it needs (1 missing)"),
        (0, 0, True, False, "(5 missing)"),
        (5, 0, True, True, ""),
        (9, 0, True, True, ""),
        (5, 1, True, False, "1 message(s) of the tree are still awaiting review"),
        (9, 3, True, False, "3 message(s)"),
        (0, 0, False, False, "missing"),
    ],
    ids=["below", "empty", "equal", "above", "pending", "above+pending", "messages missing"],
)
def test_tree_complete(
    accepted: int, awaiting: int, root_found: bool, passed: bool, words: str
) -> None:
    facts = replace(
        GOOD, accepted_messages=accepted, awaiting_review=awaiting, root_found=root_found
    )
    result = guards.check(Guard.TREE_COMPLETE, facts)
    assert result.passed is passed
    assert words in result.reason


@pytest.mark.parametrize("won", [None, WON])
def test_lottery_guards(won: datetime | None) -> None:
    facts = replace(GOOD, won_prompt_lottery_date=won)
    assert guards.check(Guard.WON_LOTTERY_BEFORE, facts).passed is (won is not None)
    assert guards.check(Guard.NEVER_WON_LOTTERY, facts).passed is (won is None)
    # Exactly one of the two resume rows holds, and resume_target picks that one.
    target = resume_target(won is not None)
    assert target is (S.GROWING if won else S.INITIAL_PROMPT_REVIEW)
    row = find_rule(S.HALTED_BY_MODERATOR, target, OP.RESUME_TREE)
    assert isinstance(row, Transition)
    assert check_guard(row, facts) is None


def test_no_guard_always_passes() -> None:
    nothing = TreeFacts(False, None, 0, 7, 99, None)
    assert guards.check(None, nothing).passed


def test_check_guard_names_the_transition_and_the_cause() -> None:
    row = find_rule(S.GROWING, S.RANKING, OP.TRANSITION_TREE)
    assert isinstance(row, Transition)
    failure = check_guard(row, replace(GOOD, accepted_messages=2))
    assert failure is not None
    assert failure.reason is RejectionReason.GUARD_FAILED
    assert "GROWING -> RANKING" in failure.message
    assert "(3 missing)" in failure.message
    assert check_guard(row, GOOD) is None


def test_check_expected() -> None:
    assert check_expected(None, S.GROWING) is None
    assert check_expected(S.GROWING, S.GROWING) is None
    changed = check_expected(S.RANKING, S.GROWING)
    assert changed is not None
    assert changed.reason is RejectionReason.STATE_CHANGED
    assert "GROWING" in changed.message
    assert "RANKING" in changed.message


# --- codec ---------------------------------------------------------------------------------


def tree(state: State, won: datetime | None) -> TreeState:
    return TreeState(uuid.uuid4(), 12, 3, 3, state, state is S.GROWING, "import", won, "en")


ENTRY = StateTransition(
    sequence=41,
    message_tree_id=uuid.uuid4(),
    from_state=S.GROWING,
    to_state=S.HALTED_BY_MODERATOR,
    operation=OP.HALT_TREE,
    actor="mod-key",
    reason="spam ✓",
    at=datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=timezone(timedelta(hours=-5))),
)

OUTCOMES = [
    TransitionApplied(tree(S.HALTED_BY_MODERATOR, WON), ENTRY),
    TransitionApplied(tree(S.HALTED_BY_MODERATOR, None), None),
    TransitionApplied(
        tree(S.GROWING, WON),
        replace(ENTRY, from_state=None, actor=None, reason=None, operation=OP.RESUME_TREE),
    ),
    *(
        TransitionRejected(uuid.uuid4(), S.GROWING, requested, reason, f"because {reason.name}")
        for reason in RejectionReason
        for requested in (None, S.RANKING)
    ),
    TreeNotFound(uuid.uuid4(), "no message tree"),
    LotteryDrawn("de", (tree(S.GROWING, WON), tree(S.GROWING, WON)), 1, 3, 10, "drew 2"),
    LotteryDrawn("en", (), 10, 10, 10, "the language is full"),
    *(LotteryRejected("en", reason, "no") for reason in RejectionReason),
]


@pytest.mark.parametrize("outcome", OUTCOMES, ids=lambda o: type(o).__name__)
def test_codec_round_trip(outcome: object) -> None:
    encoded = encode_outcome(outcome)  # type: ignore[arg-type]
    # Stored in a JSON column: it must survive text serialization too.
    stored = json.loads(json.dumps(encoded))
    assert decode_outcome(stored) == outcome


def test_codec_covers_every_kind() -> None:
    kinds = {encode_outcome(o)["kind"] for o in OUTCOMES}  # type: ignore[arg-type]
    assert kinds == {"applied", "rejected", "not_found", "drawn", "lottery_rejected"}


def test_codec_refuses_unknown_values() -> None:
    with pytest.raises(TypeError):
        encode_outcome("not an outcome")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown outcome kind"):
        decode_outcome({"kind": "exploded"})
