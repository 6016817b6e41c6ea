"""haltTree and resumeTree, for moderators."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.states import State
from tests.mutations.conftest import ApiKeys, actor
from tests.mutations.support import (
    HALT,
    RESUME,
    TreeRow,
    body,
    check_applied,
    log_of,
    make_tree,
    mutate,
    now,
    snapshot,
)

S = State
WON = datetime(2023, 4, 1, 12, 0, tzinfo=UTC)
NOT_HALTED = [s for s in State if s is not S.HALTED_BY_MODERATOR]


@pytest.mark.parametrize("source", NOT_HALTED, ids=lambda s: s.name)
async def test_halt_from_every_other_state(
    client: httpx.AsyncClient, engine: AsyncEngine, api_keys: ApiKeys, source: State
) -> None:
    tree_id = await make_tree(engine, source, won=WON)
    before = await snapshot(engine)
    started = now()
    result = await mutate(
        client, HALT, {"messageTreeId": str(tree_id), "reason": "spam"}, api_keys.moderator
    )
    check_applied(
        result,
        tree_id=tree_id,
        source=source,
        target=S.HALTED_BY_MODERATOR,
        operation="HALT_TREE",
        actor=actor("moderator"),
        reason="spam",
        started=started,
        finished=now(),
    )
    after = await snapshot(engine)
    assert after.trees[tree_id] == TreeRow(S.HALTED_BY_MODERATOR, False, WON)
    assert after.log_rows == before.log_rows + 1
    [row] = await log_of(engine, tree_id)
    assert (row["from_state"], row["to_state"], row["operation"]) == (
        source.value,
        "halted_by_moderator",
        "haltTree",
    )


async def test_halting_a_halted_tree_changes_nothing(
    client: httpx.AsyncClient, engine: AsyncEngine, api_keys: ApiKeys
) -> None:
    tree_id = await make_tree(engine, S.HALTED_BY_MODERATOR)
    before = await snapshot(engine)
    result = await mutate(client, HALT, {"messageTreeId": str(tree_id)}, api_keys.moderator)
    assert result["__typename"] == "TransitionApplied"
    assert result["transition"] is None
    assert result["tree"]["state"] == "HALTED_BY_MODERATOR"
    assert result["tree"]["active"] is False
    assert await snapshot(engine) == before
    assert await log_of(engine) == []


@pytest.mark.parametrize(
    ("won", "target"),
    [(WON, S.GROWING), (None, S.INITIAL_PROMPT_REVIEW)],
    ids=["won before", "never won"],
)
async def test_resume(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    api_keys: ApiKeys,
    won: datetime | None,
    target: State,
) -> None:
    tree_id = await make_tree(engine, S.HALTED_BY_MODERATOR, won=won)
    before = await snapshot(engine)
    started = now()
    result = await mutate(
        client, RESUME, {"messageTreeId": str(tree_id), "reason": "fine"}, api_keys.moderator
    )
    check_applied(
        result,
        tree_id=tree_id,
        source=S.HALTED_BY_MODERATOR,
        target=target,
        operation="RESUME_TREE",
        actor=actor("moderator"),
        reason="fine",
        started=started,
        finished=now(),
    )
    after = await snapshot(engine)
    assert after.trees[tree_id] == TreeRow(target, True, won)
    assert after.log_rows == before.log_rows + 1


@pytest.mark.parametrize("source", NOT_HALTED, ids=lambda s: s.name)
async def test_resume_of_a_tree_that_is_not_halted(
    client: httpx.AsyncClient, engine: AsyncEngine, api_keys: ApiKeys, source: State
) -> None:
    tree_id = await make_tree(engine, source, won=WON)
    before = await snapshot(engine)
    result = await mutate(client, RESUME, {"messageTreeId": str(tree_id)}, api_keys.moderator)
    assert result["__typename"] == "TransitionRejected"
    assert result["reason"] == "NOT_ALLOWED"
    assert result["currentState"] == source.name
    assert result["requestedState"] is None
    assert source.name in result["message"]
    assert await snapshot(engine) == before


async def test_halt_then_resume_round_trip(
    client: httpx.AsyncClient, engine: AsyncEngine, api_keys: ApiKeys
) -> None:
    tree_id = await make_tree(engine, S.RANKING, won=WON)
    halted = await mutate(client, HALT, {"messageTreeId": str(tree_id)}, api_keys.admin)
    resumed = await mutate(client, RESUME, {"messageTreeId": str(tree_id)}, api_keys.admin)
    # Resuming follows Open-Assistant: a tree that won the lottery goes back to GROWING, not
    # to the state it was halted in.
    assert resumed["tree"]["state"] == "GROWING"
    log = await log_of(engine, tree_id)
    assert [(r["from_state"], r["to_state"]) for r in log] == [
        ("ranking", "halted_by_moderator"),
        ("halted_by_moderator", "growing"),
    ]
    assert int(halted["transition"]["sequence"]) < int(resumed["transition"]["sequence"])


async def test_halt_and_resume_of_an_unknown_tree(
    client: httpx.AsyncClient, engine: AsyncEngine, api_keys: ApiKeys
) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    for document in (HALT, RESUME):
        result = await mutate(client, document, {"messageTreeId": missing}, api_keys.moderator)
        assert result == {
            "__typename": "TreeNotFound",
            "messageTreeId": missing,
            "message": f"no message tree {missing}",
        }


async def test_reads_after_each_mutation_of_one_document_see_it(
    client: httpx.AsyncClient, engine: AsyncEngine, api_keys: ApiKeys
) -> None:
    """Mutation fields run one after the other; each result's reads see the writes before it."""
    tree_id = await make_tree(engine, S.GROWING, won=WON)
    document = """mutation($id: UUID!) {
      halt: haltTree(input: {messageTreeId: $id}) { ...Seen }
      resume: resumeTree(input: {messageTreeId: $id}) { ...Seen }
    }
    fragment Seen on TransitionResult {
      ... on TransitionApplied { tree { state transitions { fromState toState } } }
    }"""
    answer = await body(client, document, {"id": str(tree_id)}, key=api_keys.moderator)
    assert "errors" not in answer, answer["errors"]
    halt, resume = answer["data"]["halt"]["tree"], answer["data"]["resume"]["tree"]
    assert halt == {
        "state": "HALTED_BY_MODERATOR",
        "transitions": [{"fromState": "GROWING", "toState": "HALTED_BY_MODERATOR"}],
    }
    assert resume == {
        "state": "GROWING",
        "transitions": [
            {"fromState": "HALTED_BY_MODERATOR", "toState": "GROWING"},
            {"fromState": "GROWING", "toState": "HALTED_BY_MODERATOR"},
        ],
    }
