"""The transition table, checked cell by cell against the table in docs/design.md."""

from __future__ import annotations

from itertools import product
from typing import Any, cast

import pytest

from domain.states import State
from domain.transitions import (
    ANY_BUT_HALTED,
    ENTRY_STATES,
    TRANSITION_TABLE,
    TRANSITIONS,
    Guard,
    Operation,
    Role,
    Transition,
    TransitionTableError,
    _expand,
    allowed_targets,
    find_transition,
)

S = State
OP = Operation

_NOT_HALTED = [s for s in State if s is not S.HALTED_BY_MODERATOR]

# Transcribed from docs/design.md, "The transition table": (from, to, role, operation, guard).
EXPECTED: set[tuple[State, State, Role, Operation, Guard | None]] = {
    (
        S.INITIAL_PROMPT_REVIEW,
        S.PROMPT_LOTTERY_WAITING,
        Role.OPERATOR,
        OP.TRANSITION_TREE,
        Guard.ROOT_REVIEW_POSITIVE,
    ),
    (S.INITIAL_PROMPT_REVIEW, S.ABORTED_LOW_GRADE, Role.OPERATOR, OP.TRANSITION_TREE, None),
    # "lottery only": drawn by drawPromptLottery (an operator mutation), never by transitionTree.
    (S.PROMPT_LOTTERY_WAITING, S.GROWING, Role.OPERATOR, OP.DRAW_PROMPT_LOTTERY, None),
    (S.GROWING, S.RANKING, Role.OPERATOR, OP.TRANSITION_TREE, Guard.TREE_COMPLETE),
    (S.GROWING, S.ABORTED_LOW_GRADE, Role.OPERATOR, OP.TRANSITION_TREE, None),
    (S.RANKING, S.READY_FOR_SCORING, Role.OPERATOR, OP.TRANSITION_TREE, None),
    (S.READY_FOR_SCORING, S.READY_FOR_EXPORT, Role.OPERATOR, OP.TRANSITION_TREE, None),
    (S.READY_FOR_SCORING, S.SCORING_FAILED, Role.OPERATOR, OP.TRANSITION_TREE, None),
    (S.SCORING_FAILED, S.READY_FOR_SCORING, Role.OPERATOR, OP.TRANSITION_TREE, None),
    (S.SCORING_FAILED, S.RANKING, Role.OPERATOR, OP.TRANSITION_TREE, None),
    (S.BACKLOG_RANKING, S.RANKING, Role.OPERATOR, OP.TRANSITION_TREE, None),
    (S.BACKLOG_RANKING, S.ABORTED_LOW_GRADE, Role.OPERATOR, OP.TRANSITION_TREE, None),
    *(
        (s, S.HALTED_BY_MODERATOR, Role.MODERATOR, OP.HALT_TREE, None)
        for s in State
        if s is not S.HALTED_BY_MODERATOR
    ),
    (
        S.HALTED_BY_MODERATOR,
        S.GROWING,
        Role.MODERATOR,
        OP.RESUME_TREE,
        Guard.WON_LOTTERY_BEFORE,
    ),
    (
        S.HALTED_BY_MODERATOR,
        S.INITIAL_PROMPT_REVIEW,
        Role.MODERATOR,
        OP.RESUME_TREE,
        Guard.NEVER_WON_LOTTERY,
    ),
}
EXPECTED_BY_PAIR = {(row[0], row[1]): row for row in EXPECTED}
ROLE_ORDER = [Role.READER, Role.OPERATOR, Role.MODERATOR, Role.ADMIN]


def test_expected_table_has_no_duplicate_pairs() -> None:
    # 12 plain rows + 9 halt rows + 2 resume rows.
    assert len(EXPECTED) == len(EXPECTED_BY_PAIR) == 23


@pytest.mark.parametrize(
    ("source", "target"),
    list(product(State, State)),
    ids=lambda s: s.value,
)
def test_full_matrix(source: State, target: State) -> None:
    row = find_transition(source, target)
    expected = EXPECTED_BY_PAIR.get((source, target))
    if expected is None:
        assert row is None
        assert target not in allowed_targets(source)
        return
    assert row is not None
    assert (row.source, row.target, row.role, row.operation, row.guard) == expected
    assert target in allowed_targets(source)


def test_transitions_are_exactly_the_expected_rows() -> None:
    actual = {(r.source, r.target, r.role, r.operation, r.guard) for r in TRANSITIONS}
    assert actual == EXPECTED
    assert len(TRANSITIONS) == len(EXPECTED)


@pytest.mark.parametrize("state", list(State), ids=lambda s: s.value)
def test_allowed_targets(state: State) -> None:
    targets = allowed_targets(state)
    assert len(targets) == len(set(targets))
    assert set(targets) == {to for (frm, to) in EXPECTED_BY_PAIR if frm is state}


def test_allowed_targets_examples() -> None:
    assert set(allowed_targets(S.HALTED_BY_MODERATOR)) == {S.GROWING, S.INITIAL_PROMPT_REVIEW}
    assert set(allowed_targets(S.READY_FOR_EXPORT)) == {S.HALTED_BY_MODERATOR}
    assert set(allowed_targets(S.PROMPT_LOTTERY_WAITING)) == {S.GROWING, S.HALTED_BY_MODERATOR}


@pytest.mark.parametrize("state", _NOT_HALTED, ids=lambda s: s.value)
def test_halt_from_every_non_halted_state(state: State) -> None:
    row = find_transition(state, S.HALTED_BY_MODERATOR)
    assert row == Transition(state, S.HALTED_BY_MODERATOR, Role.MODERATOR, OP.HALT_TREE, None)


def test_halted_cannot_be_halted_again() -> None:
    assert find_transition(S.HALTED_BY_MODERATOR, S.HALTED_BY_MODERATOR) is None


def test_growing_from_waiting_only_through_the_lottery() -> None:
    into_growing = [r for r in TRANSITIONS if r.target is S.GROWING]
    assert {(r.source, r.operation) for r in into_growing} == {
        (S.PROMPT_LOTTERY_WAITING, OP.DRAW_PROMPT_LOTTERY),
        (S.HALTED_BY_MODERATOR, OP.RESUME_TREE),
    }
    lottery = [r for r in TRANSITIONS if r.operation is OP.DRAW_PROMPT_LOTTERY]
    assert [(r.source, r.target) for r in lottery] == [(S.PROMPT_LOTTERY_WAITING, S.GROWING)]


def test_resume_rows_carry_their_guards() -> None:
    resume = {(r.target, r.guard) for r in TRANSITIONS if r.operation is OP.RESUME_TREE}
    assert resume == {
        (S.GROWING, Guard.WON_LOTTERY_BEFORE),
        (S.INITIAL_PROMPT_REVIEW, Guard.NEVER_WON_LOTTERY),
    }


def test_entry_states() -> None:
    assert frozenset({S.INITIAL_PROMPT_REVIEW, S.BACKLOG_RANKING}) == ENTRY_STATES


@pytest.mark.parametrize(("role", "other"), list(product(Role, Role)), ids=lambda r: r.name)
def test_role_includes(role: Role, other: Role) -> None:
    assert role.includes(other) is (ROLE_ORDER.index(role) >= ROLE_ORDER.index(other))


def test_role_order_examples() -> None:
    assert Role.ADMIN.includes(Role.MODERATOR)
    assert Role.MODERATOR.includes(Role.OPERATOR)
    assert not Role.OPERATOR.includes(Role.MODERATOR)
    assert not Role.READER.includes(Role.OPERATOR)
    assert set(Role) == set(ROLE_ORDER)


# The definition-time checks, on tables built from the real one.

Row = tuple[Any, ...]


def _build(rows: list[Row]) -> tuple[Transition, ...]:
    return _expand(cast(Any, tuple(rows)))


def test_expand_of_the_real_table_is_transitions() -> None:
    assert _build(list(TRANSITION_TABLE)) == TRANSITIONS


def test_duplicate_row_is_refused() -> None:
    rows: list[Row] = [
        *TRANSITION_TABLE,
        (S.RANKING, S.READY_FOR_SCORING, Role.ADMIN, OP.TRANSITION_TREE, None),
    ]
    with pytest.raises(TransitionTableError, match="duplicate row ranking -> ready_for_scoring"):
        _build(rows)


def test_duplicate_through_any_but_is_refused() -> None:
    rows: list[Row] = [
        (S.GROWING, S.HALTED_BY_MODERATOR, Role.MODERATOR, OP.HALT_TREE, None),
        *TRANSITION_TABLE,
    ]
    with pytest.raises(TransitionTableError, match="duplicate row growing -> halted_by_moderator"):
        _build(rows)


def test_unreachable_state_is_refused() -> None:
    rows: list[Row] = [r for r in TRANSITION_TABLE if r[1] is not S.PROMPT_LOTTERY_WAITING]
    with pytest.raises(TransitionTableError, match="unreachable") as info:
        _build(rows)
    assert str(info.value).endswith(": prompt_lottery_waiting")


def test_several_unreachable_states_are_all_named() -> None:
    rows: list[Row] = [r for r in TRANSITION_TABLE if r[2] is not Role.OPERATOR]
    with pytest.raises(TransitionTableError) as info:
        _build(rows)
    message = str(info.value)
    for name in ("ranking", "ready_for_scoring", "ready_for_export", "scoring_failed"):
        assert name in message
    assert "initial_prompt_review" not in message.split(":", 1)[1]


def test_self_loop_is_refused() -> None:
    rows: list[Row] = [
        *TRANSITION_TABLE,
        (S.GROWING, S.GROWING, Role.OPERATOR, OP.TRANSITION_TREE, None),
    ]
    with pytest.raises(TransitionTableError, match="self-loop growing -> growing"):
        _build(rows)


def test_any_but_its_own_target_is_a_self_loop() -> None:
    rows: list[Row] = [
        *TRANSITION_TABLE,
        (ANY_BUT_HALTED, S.BACKLOG_RANKING, Role.ADMIN, OP.TRANSITION_TREE, None),
    ]
    with pytest.raises(TransitionTableError, match="self-loop backlog_ranking -> backlog_ranking"):
        _build(rows)


def test_unknown_target_is_refused() -> None:
    rows: list[Row] = [
        *TRANSITION_TABLE,
        (S.GROWING, "archived", Role.OPERATOR, OP.TRANSITION_TREE, None),
    ]
    with pytest.raises(TransitionTableError, match="unknown target state 'archived'"):
        _build(rows)


def test_unknown_source_is_refused() -> None:
    rows: list[Row] = [
        *TRANSITION_TABLE,
        ("archived", S.GROWING, Role.OPERATOR, OP.TRANSITION_TREE, None),
    ]
    with pytest.raises(TransitionTableError, match="unknown source state 'archived'"):
        _build(rows)
