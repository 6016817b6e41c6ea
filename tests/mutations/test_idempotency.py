"""Idempotency keys on every mutation: replays, reuse with another input, scope, expiry and a
burst of concurrent retries."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from db.tables import idempotency, message
from domain.states import State
from gql.app import create_app
from gql.settings import Settings
from tests.graphql import error_codes
from tests.mutations.conftest import ApiKeys
from tests.mutations.support import (
    DRAW,
    HALT,
    RESUME,
    TRANSITION,
    body,
    make_tree,
    mutate,
    snapshot,
)

S = State
WON = datetime(2023, 4, 1, 12, 0, tzinfo=UTC)
KINDS = ["transitionTree", "haltTree", "resumeTree", "drawPromptLottery"]


@dataclass(frozen=True)
class Case:
    document: str
    first: dict[str, Any]  # the input of the first call
    other: dict[str, Any]  # the same key with another input
    other_tree: uuid.UUID | None  # the tree `other` names (None: a draw)
    key: str  # the API key allowed to make it


async def case(kind: str, engine: AsyncEngine, keys: ApiKeys) -> Case:
    """A first call that changes something, such that running it again would not repeat it."""
    if kind == "drawPromptLottery":
        # Two waiting trees: a second real draw would draw the other one.
        for _ in range(2):
            await make_tree(engine, S.PROMPT_LOTTERY_WAITING)
        return Case(DRAW, {"lang": "en"}, {"lang": "en", "maxActivate": 2}, None, keys.operator)
    if kind == "resumeTree":
        tree = await make_tree(engine, S.HALTED_BY_MODERATOR, won=WON)
        other = await make_tree(engine, S.HALTED_BY_MODERATOR)
        document, key = RESUME, keys.moderator
        first: dict[str, Any] = {"messageTreeId": str(tree)}
    else:
        tree = await make_tree(engine, S.GROWING, won=WON)
        other = await make_tree(engine, S.GROWING, won=WON)
        first = {"messageTreeId": str(tree)}
        if kind == "transitionTree":
            first["to"] = "ABORTED_LOW_GRADE"
            document, key = TRANSITION, keys.operator
        else:
            document, key = HALT, keys.moderator
    return Case(document, first, {**first, "messageTreeId": str(other)}, other, key)


def keyed(input: dict[str, Any], key: str = "retry-1") -> dict[str, Any]:
    return {**input, "idempotencyKey": key}


@pytest.mark.parametrize("kind", KINDS)
async def test_same_key_same_input_returns_the_first_result(
    client: httpx.AsyncClient, engine: AsyncEngine, api_keys: ApiKeys, kind: str
) -> None:
    c = await case(kind, engine, api_keys)
    first = await mutate(client, c.document, keyed(c.first), c.key)
    assert first["__typename"] in ("TransitionApplied", "LotteryDrawn")
    if kind != "drawPromptLottery":
        assert first["transition"] is not None
    changed = await snapshot(engine)
    assert changed.log_rows == 1
    for _ in range(2):
        assert await mutate(client, c.document, keyed(c.first), c.key) == first
    assert await snapshot(engine) == changed
    # Without the key, the same input runs again: the replay above was not a re-run.
    again = await mutate(client, c.document, c.first, c.key)
    assert again != first


@pytest.mark.parametrize("kind", KINDS)
async def test_same_key_other_input_is_rejected(
    client: httpx.AsyncClient, engine: AsyncEngine, api_keys: ApiKeys, kind: str
) -> None:
    c = await case(kind, engine, api_keys)
    await mutate(client, c.document, keyed(c.first), c.key)
    before = await snapshot(engine)
    result = await mutate(client, c.document, keyed(c.other), c.key)
    assert result["reason"] == "IDEMPOTENCY_KEY_REUSED"
    if c.other_tree is None:
        assert result["__typename"] == "LotteryRejected"
        assert result["lang"] == "en"
    else:
        assert result["__typename"] == "TransitionRejected"
        assert result["messageTreeId"] == str(c.other_tree)
        assert result["currentState"] == before.trees[c.other_tree].state.name
    assert await snapshot(engine) == before


async def test_same_key_for_another_operation_is_rejected(
    client: httpx.AsyncClient, engine: AsyncEngine, api_keys: ApiKeys
) -> None:
    tree = await make_tree(engine, S.GROWING, won=WON)
    await mutate(client, HALT, keyed({"messageTreeId": str(tree)}), api_keys.admin)
    before = await snapshot(engine)
    result = await mutate(client, RESUME, keyed({"messageTreeId": str(tree)}), api_keys.admin)
    assert (result["__typename"], result["reason"]) == (
        "TransitionRejected",
        "IDEMPOTENCY_KEY_REUSED",
    )
    assert await snapshot(engine) == before


async def test_each_api_key_has_its_own_idempotency_keys(
    client: httpx.AsyncClient, engine: AsyncEngine, api_keys: ApiKeys
) -> None:
    tree = await make_tree(engine, S.GROWING, won=WON)
    other = await make_tree(engine, S.GROWING, won=WON)
    abort = {"messageTreeId": str(tree), "to": "ABORTED_LOW_GRADE"}
    first = await mutate(client, TRANSITION, keyed(abort), api_keys.operator)
    assert first["__typename"] == "TransitionApplied"
    # Another API key with the same idempotency key and input: its own, new request.
    theirs = await mutate(client, TRANSITION, keyed(abort), api_keys.other_operator)
    assert (theirs["__typename"], theirs["reason"]) == ("TransitionRejected", "NOT_ALLOWED")
    # ... and with another input it is not "reused" either.
    moved = await mutate(
        client, TRANSITION, keyed({**abort, "messageTreeId": str(other)}), api_keys.admin
    )
    assert moved["__typename"] == "TransitionApplied"
    assert await mutate(client, TRANSITION, keyed(abort), api_keys.operator) == first
    assert (await snapshot(engine)).log_rows == 2


@asynccontextmanager
async def serve(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://treegate.test") as c:
            yield c


@pytest.mark.parametrize("how", ["tiny ttl", "expires_at in the past"])
async def test_an_expired_key_is_new_again(
    settings: Settings, engine: AsyncEngine, api_keys: ApiKeys, how: str
) -> None:
    tree = await make_tree(engine, S.GROWING, won=WON)
    halt = keyed({"messageTreeId": str(tree)})
    ttl = 1e-9 if how == "tiny ttl" else 24.0
    configured = Settings(database_url=settings.database_url, idempotency_ttl_hours=ttl)
    async with serve(configured) as client:
        first = await mutate(client, HALT, halt, api_keys.moderator)
        assert first["transition"] is not None
        if how != "tiny ttl":
            assert await mutate(client, HALT, halt, api_keys.moderator) == first  # not yet
            async with engine.begin() as conn:
                past = datetime.now(UTC) - timedelta(seconds=1)
                await conn.execute(update(idempotency).values(expires_at=past))
        await asyncio.sleep(0.01)
        second = await mutate(client, HALT, halt, api_keys.moderator)
    # Run anew: the tree is already halted, so nothing to change (a replay would repeat `first`).
    assert second["__typename"] == "TransitionApplied"
    assert second["transition"] is None
    after = await snapshot(engine)
    assert after.log_rows == 1
    assert after.idempotency_rows == 1  # the expired record was replaced


async def test_a_rejection_is_replayed_too(
    client: httpx.AsyncClient, engine: AsyncEngine, api_keys: ApiKeys
) -> None:
    tree = await make_tree(engine, S.INITIAL_PROMPT_REVIEW, root_review=None)
    request = keyed({"messageTreeId": str(tree), "to": "PROMPT_LOTTERY_WAITING"})
    first = await mutate(client, TRANSITION, request, api_keys.operator)
    assert (first["__typename"], first["reason"]) == ("TransitionRejected", "GUARD_FAILED")
    async with engine.begin() as conn:  # the root passes review meanwhile
        await conn.execute(update(message).where(message.c.id == tree).values(review_result=True))
    before = await snapshot(engine)
    assert await mutate(client, TRANSITION, request, api_keys.operator) == first
    assert await snapshot(engine) == before
    fresh = await mutate(client, TRANSITION, keyed(request, "retry-2"), api_keys.operator)
    assert fresh["__typename"] == "TransitionApplied"


@pytest.mark.parametrize("kind", ["transitionTree", "drawPromptLottery"])
async def test_concurrent_retries_have_one_effect(
    client: httpx.AsyncClient, engine: AsyncEngine, api_keys: ApiKeys, kind: str
) -> None:
    c = await case(kind, engine, api_keys)
    before = await snapshot(engine)
    results = await asyncio.gather(
        *(mutate(client, c.document, keyed(c.first, "burst"), c.key) for _ in range(20))
    )
    assert results[0]["__typename"] in ("TransitionApplied", "LotteryDrawn")
    assert all(r == results[0] for r in results)
    after = await snapshot(engine)
    assert after.log_rows == before.log_rows + 1
    assert sum(after.trees[t] != before.trees[t] for t in before.trees) == 1
    assert after.idempotency_rows == 1


@pytest.mark.parametrize("bad", ["", "k" * 256, "k\x00"], ids=["empty", "256", "nul"])
async def test_idempotency_key_length(
    client: httpx.AsyncClient, engine: AsyncEngine, api_keys: ApiKeys, bad: str
) -> None:
    tree = await make_tree(engine, S.GROWING, won=WON)
    before = await snapshot(engine)
    for document in (HALT, DRAW):
        input = {"lang": "en"} if document is DRAW else {"messageTreeId": str(tree)}
        answer = await body(client, document, {"input": keyed(input, bad)}, key=api_keys.admin)
        assert error_codes(answer) == ["BAD_USER_INPUT"]
        assert answer["errors"][0]["extensions"]["argument"] == "idempotencyKey"
    assert await snapshot(engine) == before
    longest = await mutate(
        client, HALT, keyed({"messageTreeId": str(tree)}, "k" * 255), api_keys.admin
    )
    assert longest["__typename"] == "TransitionApplied"
