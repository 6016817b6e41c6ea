"""Conflicts inside a mutation (serialization failure, deadlock, lock timeout, SQLite busy) are
retried as a whole transaction, a bounded number of times, and stay exactly-once; when the tries
are spent the client gets 503 and nothing changed.

The faults are real: PostgreSQL raises them from a trigger (`RAISE ... USING ERRCODE`) for as
many inserts into the log as a sequence allows (a sequence is not rolled back, so the count
survives the failed transactions), a row lock held by another connection outlasts
`lock_timeout`, and another SQLite connection holds the write lock past the busy timeout.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from domain.states import State
from gql.settings import Settings
from tests.graphql import app_client
from tests.mutations.conftest import ApiKeys
from tests.mutations.support import DRAW, TRANSITION, log_of, make_tree, post, snapshot

S = State
ERRCODES = {"serialization_failure": "40001", "deadlock": "40P01"}


def retries(app: Starlette, reason: str) -> float:
    registry = app.state.endpoint.caches.metrics.registry
    return registry.get_sample_value("treegate_transaction_retries_total", {"reason": reason}) or 0


@asynccontextmanager
async def failing_log_inserts(engine: AsyncEngine, errcode: str, times: int) -> AsyncIterator[None]:
    """The next `times` inserts into the transition log fail with SQLSTATE `errcode`."""
    statements = [
        "CREATE SEQUENCE tg_test_failures",
        f"""CREATE FUNCTION tg_test_fail() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF nextval('tg_test_failures') <= {times} THEN
            RAISE EXCEPTION 'injected fault' USING ERRCODE = '{errcode}';
          END IF;
          RETURN NEW;
        END $$""",
        """CREATE TRIGGER tg_test_fail BEFORE INSERT ON treegate_transition
        FOR EACH ROW EXECUTE FUNCTION tg_test_fail()""",
    ]
    async with engine.begin() as conn:
        for statement in statements:
            await conn.execute(text(statement))
    try:
        yield
    finally:
        async with engine.begin() as conn:
            await conn.execute(text("DROP TRIGGER tg_test_fail ON treegate_transition"))
            await conn.execute(text("DROP FUNCTION tg_test_fail()"))
            await conn.execute(text("DROP SEQUENCE tg_test_failures"))


def transition_input(tree: Any, key: str | None = None) -> dict[str, Any]:
    fields = {"messageTreeId": str(tree), "to": "RANKING", "reason": "retry test"}
    return {"input": fields | ({"idempotencyKey": key} if key else {})}


# SQLite runs one writer at a time: it has no serialization failures or deadlocks (its busy
# case is the lock tests' below).
postgresql_only = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


@postgresql_only
@pytest.mark.parametrize("reason", ["serialization_failure", "deadlock"])
async def test_a_transition_that_meets_conflicts_is_retried_and_applied_once(
    reason: str, engine: AsyncEngine, settings: Settings, api_keys: ApiKeys, backend: str
) -> None:
    tree = await make_tree(engine, S.GROWING)
    async with (
        app_client(settings) as (app, client),
        failing_log_inserts(engine, ERRCODES[reason], times=2),
    ):
        response = await post(
            client, TRANSITION, transition_input(tree, "k1"), key=api_keys.operator
        )
        assert response.status_code == 200, response.text
        result = response.json()["data"]["result"]
        assert result["__typename"] == "TransitionApplied"
        assert retries(app, reason) == 2
        # The same key again: the recorded outcome, no third change.
        again = await post(client, TRANSITION, transition_input(tree, "k1"), key=api_keys.operator)
        assert again.json()["data"]["result"] == result
    log = await log_of(engine, tree)
    assert [(r["from_state"], r["to_state"]) for r in log] == [("growing", "ranking")]
    assert (await snapshot(engine)).trees[tree].state is S.RANKING


@postgresql_only
async def test_conflicts_beyond_the_tries_are_a_503_and_change_nothing(
    engine: AsyncEngine, settings: Settings, api_keys: ApiKeys, backend: str
) -> None:
    tree = await make_tree(engine, S.GROWING)
    before = await snapshot(engine)
    async with (
        app_client(settings, db_retry_attempts=3) as (app, client),
        failing_log_inserts(engine, "40001", times=3),
    ):
        response = await post(
            client, TRANSITION, transition_input(tree, "k2"), key=api_keys.operator
        )
        assert retries(app, "serialization_failure") == 2
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "DATABASE_UNAVAILABLE"
    assert error["extensions"]["reason"] == "serialization_failure"
    assert "gave up after 3 tries" in error["message"]
    assert "injected" not in str(response.json())  # the database's own words stay in the log
    assert await snapshot(engine) == before  # tree, log and idempotency keys all unchanged


@postgresql_only
async def test_a_draw_that_meets_a_deadlock_draws_each_tree_once(
    engine: AsyncEngine, settings: Settings, api_keys: ApiKeys, backend: str
) -> None:
    waiting = {await make_tree(engine, S.PROMPT_LOTTERY_WAITING) for _ in range(3)}
    async with app_client(settings) as (app, client), failing_log_inserts(engine, "40P01", times=1):
        response = await post(
            client, DRAW, {"input": {"lang": "en", "maxActivate": 2}}, key=api_keys.operator
        )
        assert retries(app, "deadlock") == 1
    result = response.json()["data"]["result"]
    assert result["__typename"] == "LotteryDrawn"
    drawn = {d["messageTreeId"] for d in result["drawn"]}
    assert len(drawn) == 2
    log = await log_of(engine)
    assert sorted(str(r["message_tree_id"]) for r in log) == sorted(drawn)
    trees = (await snapshot(engine)).trees
    assert {str(t) for t in waiting if trees[t].state is S.GROWING} == drawn


async def hold_row_lock(
    engine: AsyncEngine, tree: Any, release: asyncio.Event, locked: asyncio.Event
) -> None:
    async with engine.connect() as conn, conn.begin():
        await conn.execute(
            text("SELECT 1 FROM message_tree_state WHERE message_tree_id = :id FOR UPDATE"),
            {"id": tree},
        )
        locked.set()
        await asyncio.wait_for(release.wait(), RELEASE_AT_THE_LATEST_S)


async def hold_sqlite_write_lock(path: str, release: asyncio.Event, locked: asyncio.Event) -> None:
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        locked.set()
        await asyncio.wait_for(release.wait(), RELEASE_AT_THE_LATEST_S)
        holder.execute("ROLLBACK")
    finally:
        holder.close()


async def hold_lock(
    engine: AsyncEngine, tree: Any, release: asyncio.Event, locked: asyncio.Event
) -> None:
    """Hold the lock a transition of `tree` needs (a row lock, SQLite's write lock): set `locked`
    once it is held, and let go when `release` is set."""
    if engine.dialect.name == "postgresql":
        await hold_row_lock(engine, tree, release, locked)
    else:
        database = engine.url.database
        assert database is not None
        await hold_sqlite_write_lock(database, release, locked)


RELEASE_AT_THE_LATEST_S = 30
"""A bound on a holder whose release never comes (a failing test), not a wait any test needs."""


def on_retry(app: Starlette, reason: str, monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """An event set when the app counts a transaction retry for `reason`."""
    retried = asyncio.Event()
    counter = app.state.endpoint.caches.metrics.retries.labels(reason)
    count = counter.inc

    def inc(amount: float = 1) -> None:
        count(amount)
        retried.set()

    monkeypatch.setattr(counter, "inc", inc)
    return retried


REASONS = {"postgresql": "lock_timeout", "sqlite": "busy"}


async def test_a_lock_held_past_the_lock_timeout_is_waited_out_by_a_retry(
    engine: AsyncEngine,
    settings: Settings,
    api_keys: ApiKeys,
    backend: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tree = await make_tree(engine, S.GROWING)
    locked = asyncio.Event()
    async with app_client(settings, db_lock_timeout_ms=200, db_retry_attempts=5) as (app, client):
        # The lock is let go once the request was seen to give up on it and try again: not
        # after a time, which a loaded machine may take before the request even arrives.
        retried = on_retry(app, REASONS[backend], monkeypatch)
        holder = asyncio.create_task(hold_lock(engine, tree, retried, locked))
        await locked.wait()
        response = await post(client, TRANSITION, transition_input(tree), key=api_keys.operator)
        await holder
        assert retries(app, REASONS[backend]) >= 1
    assert response.status_code == 200, response.text
    assert response.json()["data"]["result"]["__typename"] == "TransitionApplied"
    assert len(await log_of(engine, tree)) == 1


async def test_a_lock_held_longer_than_every_try_is_a_quick_503(
    engine: AsyncEngine, settings: Settings, api_keys: ApiKeys, backend: str
) -> None:
    tree = await make_tree(engine, S.GROWING)
    before = await snapshot(engine)
    locked = asyncio.Event()
    async with app_client(settings, db_lock_timeout_ms=150, db_retry_attempts=3) as (app, client):
        never = asyncio.Event()  # held past every try; cancelled below
        holder = asyncio.create_task(hold_lock(engine, tree, never, locked))
        await locked.wait()
        response = await post(client, TRANSITION, transition_input(tree), key=api_keys.operator)
        tries = 1 + retries(app, REASONS[backend])
        held_throughout = not holder.done()
        holder.cancel()
        with pytest.raises(asyncio.CancelledError):
            await holder
    assert response.status_code == 503, response.text
    (error,) = response.json()["errors"]
    assert (error["extensions"]["code"], error["extensions"]["reason"]) == (
        "DATABASE_UNAVAILABLE",
        REASONS[backend],
    )
    # Three tries, then the answer, while the lock was still held: it gave up, not waited.
    assert tries == 3
    assert held_throughout
    assert await snapshot(engine) == before
