"""Which trees the lottery may draw (Open-Assistant's candidates), and what a draw writes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from db.tables import message_tree_state
from domain.outcomes import LotteryDrawn
from domain.states import State
from resolvers.context import Hooks
from resolvers.lottery import draw_prompt_lottery
from tests.lottery.support import (
    DRAW,
    DRAW_OPERATION,
    GROWING,
    WAITING,
    add_author,
    add_operator_key,
    add_trees,
    drawn_ids,
    log_rows,
    operator_context,
    trees,
)

EARLIER = datetime(2023, 5, 1, 8, 30, tzinfo=UTC)


async def seed_mixed_pool(engine: AsyncEngine) -> tuple[set[uuid.UUID], uuid.UUID]:
    """English waiting trees that must be drawn, beside look-alikes that must never be.

    Returns the eligible ids and the eligible tree that already carries a lottery date.
    """
    async with engine.begin() as conn:
        good = [await add_author(conn) for _ in range(3)]
        disabled = await add_author(conn, enabled=False)
        deleted = await add_author(conn, deleted=True)
        both = await add_author(conn, enabled=False, deleted=True)

        eligible = [
            *await add_trees(conn, 2, author=good[0]),
            *await add_trees(conn, 1, author=good[1]),
            *await add_trees(conn, 2, author=good[2]),
        ]
        # Waiting again after a halt and a resume: it won before, and keeps that date.
        won_before = (await add_trees(conn, 1, author=good[1], won=EARLIER))[0]
        eligible.append(won_before)

        # Never drawn: the root is deleted, pending or rejected; the author is disabled or
        # deleted; the tree has no author; another language; another state.
        await add_trees(conn, 1, author=good[0], root_deleted=True)
        await add_trees(conn, 1, author=good[0], review_result=None)
        await add_trees(conn, 1, author=good[2], review_result=False)
        await add_trees(conn, 2, author=disabled)
        await add_trees(conn, 2, author=deleted)
        await add_trees(conn, 1, author=both)
        await add_trees(conn, 1, author=None)
        await add_trees(conn, 2, author=good[0], lang="de")
        await add_trees(conn, 1, author=good[1], lang="en-GB")
        for state in State:
            if state is not WAITING:
                await add_trees(conn, 1, author=good[0], state=state)
    return set(eligible), won_before


async def test_draws_exactly_the_open_assistant_candidates(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    eligible, won_before = await seed_mixed_pool(engine)
    headers = await add_operator_key(engine, "night-shift")
    before = await trees(engine)
    growing_before = sum(1 for t in before.values() if t.lang == "en" and t.state is GROWING)
    assert growing_before + len(eligible) <= 10  # the default cap does not limit this draw

    started = datetime.now(UTC)
    response = await client.post(
        "/graphql", json={"query": DRAW, "variables": {"lang": "en", "max": 50}}, headers=headers
    )
    finished = datetime.now(UTC)
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    result = body["data"]["drawPromptLottery"]

    ids = drawn_ids(result)
    assert len(ids) == len(set(ids))
    assert {uuid.UUID(i) for i in ids} == eligible
    assert result["growingBefore"] == growing_before
    assert result["growingAfter"] == growing_before + len(eligible)
    assert result["message"].startswith(f"drew {len(eligible)} of 50 asked")
    assert "no more candidates" in result["message"]
    for tree in result["drawn"]:
        assert tree["state"] == "GROWING"
        assert tree["active"] is True
        assert tree["lang"] == "en"
        assert tree["wonPromptLotteryDate"] is not None

    after = await trees(engine)
    assert after.keys() == before.keys()
    slack = timedelta(seconds=1)  # the date is the resolver's clock, taken during the request
    for tree_id, row in after.items():
        if tree_id not in eligible:
            assert row == before[tree_id], tree_id  # untouched, every column
            continue
        assert row.state is GROWING
        assert row.active is True
        assert row.won is not None
        if tree_id == won_before:
            assert row.won == EARLIER
        else:
            assert started - slack <= row.won <= finished + slack

    log = await log_rows(engine)
    assert sorted(entry.tree_id for entry in log) == sorted(eligible)
    for entry in log:
        assert entry.operation == DRAW_OPERATION
        assert entry.actor == "night-shift"
        assert (entry.from_state, entry.to_state) == (WAITING.value, GROWING.value)


async def test_a_second_draw_finds_nothing_left(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    eligible, _ = await seed_mixed_pool(engine)
    headers = await add_operator_key(engine, "night-shift")
    first = await client.post(
        "/graphql", json={"query": DRAW, "variables": {"lang": "en", "max": 50}}, headers=headers
    )
    assert len(drawn_ids(first.json()["data"]["drawPromptLottery"])) == len(eligible)
    before = await trees(engine)

    again = await client.post(
        "/graphql", json={"query": DRAW, "variables": {"lang": "en", "max": 3}}, headers=headers
    )
    result = again.json()["data"]["drawPromptLottery"]
    assert drawn_ids(result) == []
    assert result["message"].startswith("drew 0 of 3 asked")
    assert "no more candidates" in result["message"]
    assert await trees(engine) == before
    assert len(await log_rows(engine)) == len(eligible)


async def test_another_language_draws_only_its_own(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await seed_mixed_pool(engine)
    headers = await add_operator_key(engine, "night-shift")
    before = await trees(engine)
    german = {i for i, t in before.items() if t.lang == "de" and t.state is WAITING}
    assert len(german) == 2
    result = (
        await client.post(
            "/graphql",
            json={"query": DRAW, "variables": {"lang": "de", "max": 10}},
            headers=headers,
        )
    ).json()["data"]["drawPromptLottery"]
    assert {uuid.UUID(i) for i in drawn_ids(result)} == german
    after = await trees(engine)
    changed = {i for i in before if before[i] != after[i]}
    assert changed == german


async def test_drawing_needs_an_operator_key(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await seed_mixed_pool(engine)
    before = await trees(engine)
    anonymous = await client.post(
        "/graphql", json={"query": DRAW, "variables": {"lang": "en", "max": 1}}
    )
    codes = [e["extensions"]["code"] for e in anonymous.json()["errors"]]
    assert codes == ["UNAUTHENTICATED"]
    assert await trees(engine) == before
    assert await log_rows(engine) == []


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_prompt_halted_while_the_draw_reads_its_candidates_is_not_an_error(
    engine: AsyncEngine,
) -> None:
    """haltTree does not take the lottery's lock: between reading the candidate authors and
    reading their prompts, an author's only waiting prompt can leave the waiting state. The
    draw passes over that author (a fault test found it answering INTERNAL_SERVER_ERROR).
    PostgreSQL only: on SQLite a draw holds the database's write lock, so nothing can move."""
    async with engine.begin() as conn:
        author = await add_author(conn)
        (tree,) = await add_trees(conn, 1, author=author)

    async def halt_it() -> None:
        async with engine.begin() as conn:
            await conn.execute(
                update(message_tree_state)
                .where(message_tree_state.c.message_tree_id == tree)
                .values(state=State.HALTED_BY_MODERATOR.value, active=False)
            )

    ctx = operator_context(engine, hooks=Hooks(lottery_authors_read=halt_it))
    outcome = await draw_prompt_lottery(ctx, "en", 1, None)
    assert isinstance(outcome, LotteryDrawn)
    assert outcome.drawn == ()
    assert "no more candidates" in outcome.message
