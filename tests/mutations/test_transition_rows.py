"""transitionTree applies every transitionTree row of docs/design.md's table, over HTTP.

Also: entering GROWING (only the lottery and resumeTree do) sets `wonPromptLotteryDate` only when
it is null.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from db.engine import write_transaction
from db.writes import compare_and_set
from domain.states import State
from tests.mutations.conftest import ApiKeys, actor
from tests.mutations.support import (
    DRAW,
    INACTIVE,
    RESUME,
    TRANSITION,
    TRANSITION_TREE_ROWS,
    TREE_QUERY,
    TreeRow,
    body,
    check_applied,
    log_of,
    make_tree,
    mutate,
    now,
    parse_time,
    snapshot,
    tree_row,
)

S = State
WON = datetime(2023, 4, 1, 12, 0, tzinfo=UTC)
ROWS = sorted(TRANSITION_TREE_ROWS, key=lambda r: (r[0].name, r[1].name))


@pytest.mark.parametrize(("source", "target"), ROWS, ids=[f"{s.name}->{t.name}" for s, t in ROWS])
async def test_every_transition_tree_row(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    api_keys: ApiKeys,
    source: State,
    target: State,
) -> None:
    won = None if source in (S.INITIAL_PROMPT_REVIEW, S.BACKLOG_RANKING) else WON
    tree_id = await make_tree(engine, source, won=won)
    bystander = await make_tree(engine, source, won=won)
    before = await snapshot(engine)

    started = now()
    result = await mutate(
        client,
        TRANSITION,
        {"messageTreeId": str(tree_id), "to": target.name, "reason": "checked by hand"},
        api_keys.operator,
    )
    finished = now()

    check_applied(
        result,
        tree_id=tree_id,
        source=source,
        target=target,
        operation="TRANSITION_TREE",
        actor=actor("operator"),
        reason="checked by hand",
        started=started,
        finished=finished,
    )
    assert result["tree"]["wonPromptLotteryDate"] == (None if won is None else won.isoformat())

    # Exactly one new log row, the one the result reports.
    after = await snapshot(engine)
    assert after.log_rows == before.log_rows + 1
    [row] = await log_of(engine, tree_id)
    entry = result["transition"]
    assert row["sequence"] == int(entry["sequence"])
    assert (row["from_state"], row["to_state"]) == (source.value, target.value)
    assert row["operation"] == "transitionTree"
    assert row["actor"] == actor("operator")
    assert row["reason"] == "checked by hand"
    assert row["at"] == parse_time(entry["at"])

    # Only this tree changed, and its `active` column follows the new state.
    assert after.trees[tree_id] == TreeRow(target, target not in INACTIVE, won)
    assert {k: v for k, v in after.trees.items() if k != tree_id} == {
        k: v for k, v in before.trees.items() if k != tree_id
    }
    assert after.trees[bystander] == before.trees[bystander]

    read = (await body(client, TREE_QUERY, {"id": str(tree_id)}))["data"]["tree"]
    assert read["state"] == target.name


async def test_sequences_increase_with_every_change(
    client: httpx.AsyncClient, engine: AsyncEngine, api_keys: ApiKeys
) -> None:
    tree_id = await make_tree(engine, S.RANKING, won=WON)
    path = [S.READY_FOR_SCORING, S.SCORING_FAILED, S.RANKING, S.READY_FOR_SCORING]
    sequences = []
    for target in path:
        result = await mutate(
            client, TRANSITION, {"messageTreeId": str(tree_id), "to": target.name}, api_keys.admin
        )
        assert result["__typename"] == "TransitionApplied"
        assert result["transition"]["reason"] is None
        sequences.append(int(result["transition"]["sequence"]))
    assert sequences == sorted(set(sequences))
    assert [r["to_state"] for r in await log_of(engine, tree_id)] == [s.value for s in path]


# --- entering GROWING ----------------------------------------------------------------------


async def test_lottery_sets_won_date_when_null(
    client: httpx.AsyncClient, engine: AsyncEngine, api_keys: ApiKeys
) -> None:
    tree_id = await make_tree(engine, S.PROMPT_LOTTERY_WAITING)
    started = now()
    result = await mutate(client, DRAW, {"lang": "en", "maxActivate": 1}, api_keys.operator)
    finished = now()
    assert result["__typename"] == "LotteryDrawn"
    [drawn] = result["drawn"]
    assert drawn["messageTreeId"] == str(tree_id)
    assert drawn["state"] == "GROWING"
    assert drawn["active"] is True
    won = parse_time(drawn["wonPromptLotteryDate"])
    assert started <= won <= finished
    assert await tree_row(engine, tree_id) == TreeRow(S.GROWING, True, won)


async def test_lottery_keeps_an_earlier_won_date(
    client: httpx.AsyncClient, engine: AsyncEngine, api_keys: ApiKeys
) -> None:
    tree_id = await make_tree(engine, S.PROMPT_LOTTERY_WAITING, won=WON)
    result = await mutate(client, DRAW, {"lang": "en"}, api_keys.operator)
    [drawn] = result["drawn"]
    assert parse_time(drawn["wonPromptLotteryDate"]) == WON
    assert await tree_row(engine, tree_id) == TreeRow(S.GROWING, True, WON)


async def test_resume_to_growing_keeps_the_won_date(
    client: httpx.AsyncClient, engine: AsyncEngine, api_keys: ApiKeys
) -> None:
    tree_id = await make_tree(engine, S.HALTED_BY_MODERATOR, won=WON)
    result = await mutate(client, RESUME, {"messageTreeId": str(tree_id)}, api_keys.moderator)
    assert result["tree"]["state"] == "GROWING"
    assert parse_time(result["tree"]["wonPromptLotteryDate"]) == WON
    assert await tree_row(engine, tree_id) == TreeRow(S.GROWING, True, WON)


@pytest.mark.parametrize("earlier", [None, WON], ids=["null", "set"])
@pytest.mark.parametrize("target", list(State), ids=lambda s: s.name)
async def test_compare_and_set_touches_the_won_date_only_entering_growing(
    engine: AsyncEngine, earlier: datetime | None, target: State
) -> None:
    source = S.BACKLOG_RANKING if target is not S.BACKLOG_RANKING else S.RANKING
    tree_id = await make_tree(engine, source, won=earlier)
    moment = datetime(2024, 6, 1, tzinfo=UTC)
    async with write_transaction(engine) as conn:
        stale = await compare_and_set(conn, tree_id, S.GROWING, target, moment)
        moved = await compare_and_set(conn, tree_id, source, target, moment)
    assert stale is None  # the tree was not in GROWING: nothing happened
    assert moved is not None
    expected_won = moment if target is S.GROWING and earlier is None else earlier
    assert (moved.state, moved.active, moved.won_prompt_lottery_date) == (
        target,
        target not in INACTIVE,
        expected_won,
    )
    assert await tree_row(engine, tree_id) == TreeRow(target, target not in INACTIVE, expected_won)


async def test_compare_and_set_on_an_unknown_tree(engine: AsyncEngine) -> None:
    async with write_transaction(engine) as conn:
        assert await compare_and_set(conn, uuid.uuid4(), S.GROWING, S.RANKING, now()) is None
