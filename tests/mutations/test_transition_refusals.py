"""transitionTree refusals: failing guards, pairs without a row, the lottery's row, a stale
`expectedState`, an unknown tree, a too long reason. None of them changes anything."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, func, select, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from db.tables import message, message_tree_state
from domain.states import State
from tests.factories import add_user, payload
from tests.graphql import error_codes
from tests.mutations.conftest import ApiKeys
from tests.mutations.support import (
    LOTTERY_ROW,
    TRANSITION,
    TRANSITION_TREE_ROWS,
    body,
    make_tree,
    mutate,
    snapshot,
)

S = State
WON = datetime(2023, 4, 1, 12, 0, tzinfo=UTC)
TO_LOTTERY = (S.INITIAL_PROMPT_REVIEW, S.PROMPT_LOTTERY_WAITING)
TO_RANKING = (S.GROWING, S.RANKING)


def check_rejected(
    result: dict[str, Any], tree_id: uuid.UUID, current: State, requested: State, reason: str
) -> str:
    assert result["__typename"] == "TransitionRejected", result
    assert result["messageTreeId"] == str(tree_id)
    assert result["currentState"] == current.name
    assert result["requestedState"] == requested.name
    assert result["reason"] == reason
    message: str = result["message"]
    return message


# name: (row, make_tree arguments, words the message must contain)
GUARD_CASES: dict[str, tuple[tuple[State, State], dict[str, Any], tuple[str, ...]]] = {
    "root pending": (TO_LOTTERY, {"root_review": None}, ("root message", "under review")),
    "root rejected": (TO_LOTTERY, {"root_review": False}, ("root message", "rejected")),
    "too small": (TO_RANKING, {"goal": 5}, ("3 accepted", "5 it needs", "(2 missing)")),
    "deleted replies do not count": (
        TO_RANKING,
        {"accepted": 1, "deleted": 4},
        ("2 accepted", "(1 missing)"),
    ),
    "reply awaiting review": (
        TO_RANKING,
        {"accepted": 3, "pending": 1},
        ("1 message(s)", "review"),
    ),
    "root awaiting review": (
        TO_RANKING,
        {"root_review": None, "accepted": 3},
        ("1 message(s)", "review"),
    ),
}


async def test_deleted_messages_neither_count_nor_block(
    client: httpx.AsyncClient, engine: AsyncEngine, api_keys: ApiKeys
) -> None:
    """Deleted replies, accepted or awaiting review, are left out of the guard's counts."""
    tree_id = await make_tree(engine, S.GROWING, won=WON, deleted=2, deleted_pending=2)
    result = await mutate(
        client, TRANSITION, {"messageTreeId": str(tree_id), "to": "RANKING"}, api_keys.operator
    )
    assert result["__typename"] == "TransitionApplied", result


@pytest.mark.parametrize("case", list(GUARD_CASES))
async def test_guard_failed(
    client: httpx.AsyncClient, engine: AsyncEngine, api_keys: ApiKeys, case: str
) -> None:
    (source, target), shape, words = GUARD_CASES[case]
    tree_id = await make_tree(
        engine, source, won=None if source is S.INITIAL_PROMPT_REVIEW else WON, **shape
    )
    before = await snapshot(engine)
    result = await mutate(
        client, TRANSITION, {"messageTreeId": str(tree_id), "to": target.name}, api_keys.operator
    )
    message = check_rejected(result, tree_id, source, target, "GUARD_FAILED")
    for word in words:
        assert word in message, message
    assert await snapshot(engine) == before


async def _delete_messages(engine: AsyncEngine, url: URL, tree_id: uuid.UUID) -> None:
    """Delete a tree's message rows under its state row, with foreign key checks off."""
    if engine.dialect.name == "postgresql":
        async with engine.begin() as conn:
            await conn.execute(text("SET LOCAL session_replication_role = replica"))
            await conn.execute(delete(message).where(message.c.message_tree_id == tree_id))
        return
    # A plain SQLite connection enforces no foreign keys (Treegate's engine turns them on).
    plain = create_async_engine(url)
    try:
        async with plain.begin() as conn:
            await conn.execute(delete(message).where(message.c.message_tree_id == tree_id))
    finally:
        await plain.dispose()


async def _state_row_on_a_reply(engine: AsyncEngine, source: State) -> uuid.UUID:
    """A state row whose id is a reply of another tree: no message has it as its tree."""
    async with engine.begin() as conn:
        author = await add_user(conn)
        other = uuid.uuid4()
        reply = uuid.uuid4()
        common = {"user_id": author, "payload_type": "MessagePayload", "review_result": True}
        await conn.execute(
            message.insert(),
            [
                {"id": other, "parent_id": None, "message_tree_id": other, "role": "prompter",
                 "payload": payload("Root?"), **common},
                {"id": reply, "parent_id": other, "message_tree_id": other, "role": "assistant",
                 "payload": payload("Reply."), "depth": 1, **common},
            ],
        )  # fmt: skip
        await conn.execute(
            message_tree_state.insert().values(
                message_tree_id=reply,
                goal_tree_size=1,
                max_depth=3,
                max_children_count=3,
                state=source.value,
                active=True,
                lang="en",
            )
        )
    return reply


@pytest.mark.parametrize("how", ["rows deleted", "state row on another tree's reply"])
@pytest.mark.parametrize("row", [TO_LOTTERY, TO_RANKING], ids=["to lottery", "to ranking"])
async def test_guard_fails_when_the_messages_are_missing(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    database_url: URL,
    api_keys: ApiKeys,
    how: str,
    row: tuple[State, State],
) -> None:
    source, target = row
    if how == "rows deleted":
        tree_id = await make_tree(engine, source)
        await _delete_messages(engine, database_url, tree_id)
        async with engine.connect() as conn:
            left = select(func.count()).where(message.c.message_tree_id == tree_id)
            assert (await conn.execute(left)).scalar_one() == 0
    else:
        tree_id = await _state_row_on_a_reply(engine, source)
    before = await snapshot(engine)
    result = await mutate(
        client, TRANSITION, {"messageTreeId": str(tree_id), "to": target.name}, api_keys.operator
    )
    why = check_rejected(result, tree_id, source, target, "GUARD_FAILED")
    assert "missing" in why
    assert await snapshot(engine) == before


async def test_every_pair_without_a_row_is_not_allowed(
    client: httpx.AsyncClient, engine: AsyncEngine, api_keys: ApiKeys
) -> None:
    trees = {state: await make_tree(engine, state, won=WON) for state in State}
    before = await snapshot(engine)
    refused = 0
    for source in State:
        for target in State:
            if (source, target) in TRANSITION_TREE_ROWS or (source, target) == LOTTERY_ROW:
                continue
            refused += 1
            tree_id = trees[source]
            result = await mutate(
                client,
                TRANSITION,
                {"messageTreeId": str(tree_id), "to": target.name},
                api_keys.admin,
            )
            message = check_rejected(result, tree_id, source, target, "NOT_ALLOWED")
            if target is S.HALTED_BY_MODERATOR and source is not target:
                assert "haltTree" in message
            if source is S.HALTED_BY_MODERATOR and target in (S.GROWING, S.INITIAL_PROMPT_REVIEW):
                assert "resumeTree" in message
    assert refused == 100 - 11 - 1
    assert await snapshot(engine) == before


async def test_waiting_to_growing_is_lottery_only(
    client: httpx.AsyncClient, engine: AsyncEngine, api_keys: ApiKeys
) -> None:
    tree_id = await make_tree(engine, S.PROMPT_LOTTERY_WAITING)
    before = await snapshot(engine)
    result = await mutate(
        client, TRANSITION, {"messageTreeId": str(tree_id), "to": "GROWING"}, api_keys.admin
    )
    message = check_rejected(result, tree_id, *LOTTERY_ROW, "LOTTERY_ONLY")
    assert "drawPromptLottery" in message
    assert await snapshot(engine) == before


async def test_expected_state_mismatch(
    client: httpx.AsyncClient, engine: AsyncEngine, api_keys: ApiKeys
) -> None:
    tree_id = await make_tree(engine, S.GROWING, won=WON)
    before = await snapshot(engine)
    stale = {"messageTreeId": str(tree_id), "to": "ABORTED_LOW_GRADE", "expectedState": "RANKING"}
    result = await mutate(client, TRANSITION, stale, api_keys.operator)
    message = check_rejected(result, tree_id, S.GROWING, S.ABORTED_LOW_GRADE, "STATE_CHANGED")
    assert "GROWING" in message
    assert "RANKING" in message
    assert await snapshot(engine) == before

    fresh = {**stale, "expectedState": "GROWING"}
    result = await mutate(client, TRANSITION, fresh, api_keys.operator)
    assert result["__typename"] == "TransitionApplied"


async def test_unknown_tree(
    client: httpx.AsyncClient, engine: AsyncEngine, api_keys: ApiKeys
) -> None:
    await make_tree(engine, S.GROWING)
    before = await snapshot(engine)
    missing = uuid.uuid4()
    result = await mutate(
        client, TRANSITION, {"messageTreeId": str(missing), "to": "RANKING"}, api_keys.operator
    )
    assert result["__typename"] == "TreeNotFound"
    assert result["messageTreeId"] == str(missing)
    assert str(missing) in result["message"]
    assert await snapshot(engine) == before


async def test_reason_longer_than_2000_characters(
    client: httpx.AsyncClient, engine: AsyncEngine, api_keys: ApiKeys
) -> None:
    tree_id = await make_tree(engine, S.GROWING, won=WON)
    before = await snapshot(engine)
    too_long = {"messageTreeId": str(tree_id), "to": "ABORTED_LOW_GRADE", "reason": "x" * 2001}
    answer = await body(client, TRANSITION, {"input": too_long}, key=api_keys.operator)
    assert error_codes(answer) == ["BAD_USER_INPUT"]
    assert answer["errors"][0]["extensions"]["argument"] == "reason"
    assert answer["data"] is None
    assert await snapshot(engine) == before

    longest = {**too_long, "reason": "é" * 2000}
    result = await mutate(client, TRANSITION, longest, api_keys.operator)
    assert result["transition"]["reason"] == "é" * 2000


async def test_reason_with_a_nul_character(
    client: httpx.AsyncClient, engine: AsyncEngine, api_keys: ApiKeys
) -> None:
    tree_id = await make_tree(engine, S.GROWING, won=WON)
    before = await snapshot(engine)
    bad = {"messageTreeId": str(tree_id), "to": "ABORTED_LOW_GRADE", "reason": "a\x00b"}
    answer = await body(client, TRANSITION, {"input": bad}, key=api_keys.operator)
    assert error_codes(answer) == ["BAD_USER_INPUT"]
    assert "NUL" in answer["errors"][0]["message"]
    assert await snapshot(engine) == before
