"""Who may make a write comes from the transition table's rows, looked up for every write: a row
that asks for a higher role is enforced as such, for transitionTree and for the lottery alike."""

from __future__ import annotations

import dataclasses

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from domain import transitions
from domain.decisions import find_rule
from domain.states import State
from domain.transitions import Operation, Role
from resolvers import lottery
from resolvers import transitions as use_cases
from tests.mutations.conftest import ApiKeys
from tests.mutations.support import DRAW, TRANSITION, log_of, make_tree, post, snapshot


def test_each_operation_is_checked_first_against_its_least_role_in_the_table() -> None:
    for operation in Operation:
        roles = [row.role for row in transitions.TRANSITIONS if row.operation is operation]
        assert transitions.LEAST_ROLE[operation] is min(roles, key=lambda r: r.value)
    assert transitions.lottery_row().source is State.PROMPT_LOTTERY_WAITING
    assert transitions.lottery_row().target is State.GROWING


def codes(response: httpx.Response) -> list[str]:
    return [e["extensions"]["code"] for e in response.json().get("errors", [])]


async def test_a_row_asking_for_more_is_enforced_for_transition_tree(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    api_keys: ApiKeys,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tree = await make_tree(engine, State.GROWING)

    def stricter(source: State, target: State, operation: Operation) -> object:
        found = find_rule(source, target, operation)  # the table's own answer
        if isinstance(found, transitions.Transition) and target is State.ABORTED_LOW_GRADE:
            return dataclasses.replace(found, role=Role.ADMIN)
        return found

    monkeypatch.setattr(use_cases, "find_rule", stricter)
    before = await snapshot(engine)
    variables = {"input": {"messageTreeId": str(tree), "to": "ABORTED_LOW_GRADE"}}
    refused = await post(client, TRANSITION, variables, key=api_keys.operator)
    assert codes(refused) == ["FORBIDDEN"]
    assert "needs role admin" in refused.json()["errors"][0]["message"]
    assert await snapshot(engine) == before
    allowed = await post(client, TRANSITION, variables, key=api_keys.admin)
    assert allowed.json()["data"]["result"]["__typename"] == "TransitionApplied"
    assert len(await log_of(engine, tree)) == 1


async def test_the_lotterys_row_decides_who_may_draw_and_what_it_moves(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    api_keys: ApiKeys,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await make_tree(engine, State.PROMPT_LOTTERY_WAITING)
    row = transitions.lottery_row()
    monkeypatch.setattr(lottery, "lottery_row", lambda: dataclasses.replace(row, role=Role.ADMIN))
    variables = {"input": {"lang": "en"}}
    assert codes(await post(client, DRAW, variables, key=api_keys.operator)) == ["FORBIDDEN"]
    drawn = (await post(client, DRAW, variables, key=api_keys.admin)).json()["data"]["result"]
    assert drawn["__typename"] == "LotteryDrawn"
    assert [t["state"] for t in drawn["drawn"]] == ["GROWING"]  # the row's target
