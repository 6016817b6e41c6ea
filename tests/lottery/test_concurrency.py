"""Fifty callers draw at once: no tree twice, never above the cap, every draw logged.

The use case is called directly, as the GraphQL view calls it. On PostgreSQL each caller
has its own pooled connection and waits at a barrier inside its open transaction, before
the language's lock, so all fifty are in flight together before anyone draws.

SQLite takes its write lock when a write transaction begins (BEGIN IMMEDIATE), and a
process's writers take turns before that (db.engine._WriterQueue), so there no caller can
reach that point while another holds the lock: the callers start together from a barrier
instead, spread over two engines, as two server processes would be, so that the database's
own lock (not only the in-process queue) has to keep them apart.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from db.engine import PoolOptions, create_engine
from domain.outcomes import LotteryDrawn, LotteryOutcome
from resolvers.context import Hooks
from resolvers.lottery import draw_prompt_lottery
from tests.databases import migrated_engine, sqlite_url, truncate_all
from tests.lottery.invariants import LANG, Draw, all_at_once, from_api, prepare, violations
from tests.lottery.support import DRAW, add_operator_key, operator_context

CALLERS = 50
RUNS = 5
TIMEOUT = 60  # seconds for one burst: a hang fails the test instead of stalling CI


@dataclass(frozen=True)
class Scenario:
    waiting: int
    cap: int


SCENARIOS = [Scenario(20, 10), Scenario(100, 10), Scenario(100, 60)]


def asked(caller: int) -> int:
    return 1 + caller % 3  # 1, 2 or 3 trees; 99 asked in all, more than any cap here


def as_draw(actor: str, asked: int, outcome: LotteryOutcome) -> Draw:
    assert isinstance(outcome, LotteryDrawn), outcome
    return Draw(
        actor=actor,
        asked=asked,
        drawn=tuple(t.message_tree_id for t in outcome.drawn),
        growing_before=outcome.growing_before,
        growing_after=outcome.growing_after,
        message=outcome.message,
    )


@pytest.fixture
async def contended(engine: AsyncEngine, database_url: URL) -> AsyncIterator[list[AsyncEngine]]:
    """PostgreSQL: one engine whose pool gives each of the fifty callers its own connection.
    SQLite: two engines (two writer queues), as two server processes would have."""
    count = 1 if engine.dialect.name == "postgresql" else 2
    engines = [create_engine(database_url, PoolOptions(size=CALLERS + 5)) for _ in range(count)]
    try:
        yield engines
    finally:
        for pooled in engines:
            await pooled.dispose()


async def burst(engines: list[AsyncEngine], cap: int, run: int) -> tuple[list[Draw], int]:
    """Fifty concurrent draws; returns the answers and how many callers were in flight at
    once at the busiest moment a caller reached the draw."""
    postgres = engines[0].dialect.name == "postgresql"
    barrier = asyncio.Barrier(CALLERS)
    rng = random.Random(run)  # one source for all callers, as in a server process
    in_flight = 0
    busiest = 0

    async def begun() -> None:
        nonlocal busiest
        busiest = max(busiest, in_flight)
        if postgres:
            await barrier.wait()  # every caller holds an open transaction here

    async def caller(i: int) -> Draw:
        nonlocal in_flight
        engine = engines[i % len(engines)]
        ctx = operator_context(
            engine, name=f"caller-{i}", max_active_trees=cap, rng=rng, hooks=Hooks()
        )
        ctx.hooks.lottery_begun = begun
        if not postgres:
            await barrier.wait()
        in_flight += 1
        key = f"run-{run}-caller-{i}" if run % 2 else None  # odd runs go through idempotency
        try:
            outcome = await draw_prompt_lottery(ctx, LANG, asked(i), key)
        finally:
            in_flight -= 1
        return as_draw(f"caller-{i}", asked(i), outcome)

    draws = await all_at_once((caller(i) for i in range(CALLERS)), TIMEOUT)
    return draws, busiest


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: f"{s.waiting}waiting-cap{s.cap}")
async def test_concurrent_draws_through_the_use_case(
    engine: AsyncEngine, contended: list[AsyncEngine], scenario: Scenario
) -> None:
    totals = []
    for run in range(RUNS):
        await truncate_all(engine)
        pool = await prepare(engine, scenario.waiting)
        draws, busiest = await burst(contended, scenario.cap, run)
        assert busiest == CALLERS if engine.dialect.name == "postgresql" else busiest > 1
        assert await violations(engine, pool, scenario.cap, draws) == [], f"run {run}"
        totals.append(sum(len(d.drawn) for d in draws))
    expected = min(scenario.cap - 2, scenario.waiting)
    assert totals == [expected] * RUNS
    print(
        f"\n[lottery] {engine.dialect.name} use case {scenario}: {RUNS} runs x {CALLERS} "
        f"callers, drawn per run {totals}, busiest {busiest}, violations 0"
    )


@pytest.mark.parametrize("waiting", [20, 100])
async def test_concurrent_draws_over_http(
    client: httpx.AsyncClient, engine: AsyncEngine, waiting: int
) -> None:
    """The same burst as fifty POSTs to the app (default cap 10, default connection pool)."""
    keys = [f"operator-{k}" for k in range(5)]
    totals = []
    for run in range(3):
        await truncate_all(engine)
        headers = {name: await add_operator_key(engine, name) for name in keys}
        pool = await prepare(engine, waiting)

        async def post(i: int, headers: dict[str, dict[str, str]] = headers) -> Draw:
            name = keys[i % len(keys)]
            variables = {"lang": LANG, "max": asked(i)}
            response = await client.post(
                "/graphql", json={"query": DRAW, "variables": variables}, headers=headers[name]
            )
            return from_api(name, asked(i), response)

        draws = await all_at_once((post(i) for i in range(CALLERS)), TIMEOUT)
        assert await violations(engine, pool, 10, draws) == [], f"run {run}"
        totals.append(sum(len(d.drawn) for d in draws))
    assert totals == [min(10 - 2, waiting)] * 3
    print(
        f"\n[lottery] {engine.dialect.name} HTTP {waiting} waiting: 3 runs x {CALLERS} "
        f"requests, drawn per run {totals}, violations 0"
    )


@pytest.fixture
async def sqlite_only(tmp_path: Path) -> AsyncIterator[tuple[AsyncEngine, URL]]:
    """A migrated SQLite file of its own: this test is about SQLite alone."""
    url = sqlite_url(tmp_path / "writers.db")
    async with migrated_engine(url) as engine:
        yield engine, url


async def test_many_sqlite_writers_take_turns(sqlite_only: tuple[AsyncEngine, URL]) -> None:
    """Twice the callers on one SQLite engine, all connected and starting together: none may
    fail with "database is locked".

    SQLite's busy handler retries blocked writers in lockstep, about 100 ms per hand-over, so
    before the process's writers took turns (db.engine._WriterQueue) eighty such callers
    outlasted the 5 s busy_timeout. PostgreSQL has no such limit, and not 100 connections.
    """
    engine, database_url = sqlite_only
    callers = 2 * CALLERS
    pool = await prepare(engine, 100)
    crowded = create_engine(database_url, PoolOptions(size=callers + 5))
    try:
        warm = [await crowded.connect() for _ in range(callers)]  # no connect delays later
        for conn in warm:
            await conn.close()
        rng = random.Random(1)
        barrier = asyncio.Barrier(callers)

        async def caller(i: int) -> Draw:
            ctx = operator_context(crowded, name=f"caller-{i}", max_active_trees=60, rng=rng)
            await barrier.wait()
            return as_draw(
                f"caller-{i}", asked(i), await draw_prompt_lottery(ctx, LANG, asked(i), None)
            )

        draws = await all_at_once((caller(i) for i in range(callers)), TIMEOUT)
    finally:
        await crowded.dispose()
    assert await violations(engine, pool, 60, draws) == []
