"""The State enum mirrors Open-Assistant's values and its TERMINAL_STATES."""

from __future__ import annotations

import pytest

from domain.states import STATE_DESCRIPTIONS, TERMINAL_STATES, State, is_active

# Transcribed from docs/open-assistant.md ("States"): the value and whether it is terminal.
OPEN_ASSISTANT_STATES = {
    "initial_prompt_review": False,
    "growing": False,
    "ranking": False,
    "ready_for_scoring": False,
    "ready_for_export": True,
    "scoring_failed": True,
    "aborted_low_grade": True,
    "halted_by_moderator": True,
    "backlog_ranking": True,
    "prompt_lottery_waiting": True,
}


def test_values_are_open_assistants_lower_case_values() -> None:
    assert {s.value for s in State} == set(OPEN_ASSISTANT_STATES)
    assert len(State) == 10
    for state in State:
        assert state.value == state.name.lower()
        assert State(state.value) is state


def test_state_is_a_string_equal_to_its_database_value() -> None:
    as_text: str = State.PROMPT_LOTTERY_WAITING
    assert as_text == "prompt_lottery_waiting"
    assert State("halted_by_moderator") is State.HALTED_BY_MODERATOR


def test_unknown_value_is_refused() -> None:
    with pytest.raises(ValueError, match="GROWING"):
        State("GROWING")


def test_terminal_states_are_exactly_open_assistants() -> None:
    assert {s.value for s in TERMINAL_STATES} == {
        "ready_for_export",
        "scoring_failed",
        "aborted_low_grade",
        "halted_by_moderator",
        "backlog_ranking",
        "prompt_lottery_waiting",
    }
    assert isinstance(TERMINAL_STATES, frozenset)


@pytest.mark.parametrize("state", list(State), ids=lambda s: s.value)
def test_is_active_is_not_terminal(state: State) -> None:
    terminal = OPEN_ASSISTANT_STATES[state.value]
    assert is_active(state) is (not terminal)
    assert state.is_terminal is terminal


def test_active_states() -> None:
    assert {s for s in State if is_active(s)} == {
        State.INITIAL_PROMPT_REVIEW,
        State.GROWING,
        State.RANKING,
        State.READY_FOR_SCORING,
    }


@pytest.mark.parametrize("state", list(State), ids=lambda s: s.value)
def test_every_state_has_a_description(state: State) -> None:
    description = state.description
    assert isinstance(description, str)
    assert len(description.strip()) > 10
    assert description == STATE_DESCRIPTIONS[state]


def test_descriptions_are_distinct_and_cover_every_state() -> None:
    assert set(STATE_DESCRIPTIONS) == set(State)
    assert len(set(STATE_DESCRIPTIONS.values())) == len(State)
