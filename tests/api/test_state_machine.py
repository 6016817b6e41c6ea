"""`stateMachine`: the states and the transition table, exactly as the domain defines them."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.states import STATE_DESCRIPTIONS, TERMINAL_STATES, State
from domain.transitions import ENTRY_STATES, TRANSITIONS, allowed_targets
from tests.graphql import data

QUERY = """{
  stateMachine {
    states { value databaseValue isTerminal description }
    transitions { fromState toState role operation guard guardDescription }
    terminalStates
    entryStates
  }
}"""


async def fetch(client: httpx.AsyncClient) -> dict[str, Any]:
    machine: dict[str, Any] = (await data(client, QUERY))["stateMachine"]
    return machine


async def test_states(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    machine = await fetch(client)
    assert machine["states"] == [
        {
            "value": s.name,
            "databaseValue": s.value,
            "isTerminal": s in TERMINAL_STATES,
            "description": STATE_DESCRIPTIONS[s],
        }
        for s in State
    ]
    assert len(machine["states"]) == len(State) == 10


async def test_transitions_row_for_row(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    machine = await fetch(client)
    assert machine["transitions"] == [
        {
            "fromState": row.source.name,
            "toState": row.target.name,
            "role": row.role.name,
            "operation": row.operation.name,
            "guard": None if row.guard is None else row.guard.name,
            "guardDescription": None if row.guard is None else row.guard.value,
        }
        for row in TRANSITIONS
    ]


async def test_terminal_and_entry_states(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    machine = await fetch(client)
    assert machine["terminalStates"] == [s.name for s in State if s in TERMINAL_STATES]
    assert machine["entryStates"] == [s.name for s in State if s in ENTRY_STATES]


async def test_table_agrees_with_allowed_transitions(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """Grouping the served table by source gives each state's `allowedTransitions`."""
    machine = await fetch(client)
    for state in State:
        targets = [t["toState"] for t in machine["transitions"] if t["fromState"] == state.name]
        assert targets == [s.name for s in allowed_targets(state)], state


async def test_halting_rows_cover_every_other_state(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    machine = await fetch(client)
    halting = {
        t["fromState"]
        for t in machine["transitions"]
        if t["toState"] == "HALTED_BY_MODERATOR" and t["operation"] == "HALT_TREE"
    }
    assert halting == {s.name for s in State} - {"HALTED_BY_MODERATOR"}
