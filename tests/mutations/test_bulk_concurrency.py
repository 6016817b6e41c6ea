"""A bulk halt runs while single-tree mutations and lottery draws change the same trees; the log,
replayed, explains every state (bench/invariants.py's checks), and each tree the bulk call says
it halted has exactly one log row of that call.

Interleaving is forced, not hoped for: after each of the bulk call's batches commits, it waits
until the other callers have made at least one more change (or have finished), so their log
rows fall between its batches. On PostgreSQL they also run inside its batches; on SQLite a
process's writers take turns, one transaction at a time.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.database import LogRow
from bench.database import Snapshot as LogSnapshot
from bench.invariants import check
from db.engine import PoolOptions, create_engine
from db.tables import message_tree_state, transition
from domain.decisions import RejectionReason
from domain.outcomes import Identity, LotteryDrawn, TransitionApplied
from domain.states import State
from domain.transitions import Operation, Role
from domain.values import TreeFilter
from resolvers.bulk import BulkRequest, transition_trees
from resolvers.context import Context, Limits, WritePolicy
from resolvers.lottery import draw_prompt_lottery
from resolvers.transitions import TransitionRequest, transition_tree
from tests.mutations.support import make_tree

S = State
WON = datetime(2023, 4, 1, 12, 0, tzinfo=UTC)
CAP = 10
OPS = 30  # per single-tree caller
TIMEOUT = 120  # seconds for the whole run: a hang fails the test instead of stalling CI
PINGPONG = {S.READY_FOR_SCORING: S.SCORING_FAILED, S.SCORING_FAILED: S.READY_FOR_SCORING}


@pytest.fixture
async def wide_engine(engine: AsyncEngine, database_url: URL) -> AsyncIterator[AsyncEngine]:
    """An engine with a connection for each caller (`engine` emptied the database)."""
    wide = create_engine(database_url, PoolOptions(size=8))
    try:
        yield wide
    finally:
        await wide.dispose()


async def log_snapshot(engine: AsyncEngine) -> LogSnapshot:
    mts = message_tree_state
    async with engine.connect() as conn:
        rows = await conn.execute(select(mts.c.message_tree_id, mts.c.state, mts.c.lang))
        trees = {str(r[0]): (r[1], r[2]) for r in rows}
        last = await conn.scalar(select(func.coalesce(func.max(transition.c.sequence), 0)))
    return LogSnapshot(trees, int(last or 0))


async def rows_after(engine: AsyncEngine, sequence: int) -> list[tuple[LogRow, uuid.UUID | None]]:
    t = transition
    query = (
        select(
            t.c.sequence,
            t.c.message_tree_id,
            t.c.from_state,
            t.c.to_state,
            t.c.operation,
            t.c.bulk_operation_id,
        )
        .where(t.c.sequence > sequence)
        .order_by(t.c.sequence)
    )
    async with engine.connect() as conn:
        return [
            (LogRow(int(r[0]), str(r[1]), r[2], r[3], r[4]), r[5])
            for r in await conn.execute(query)
        ]


def context(engine: AsyncEngine, name: str, role: Role, bulk_batch: int = 100) -> Context:
    policy = WritePolicy(max_active_trees=CAP, rng=random.Random(name), bulk_batch=bulk_batch)
    return Context.create(
        engine, Limits(), f"test-{name}", identity=Identity(name, role), policy=policy
    )


async def test_a_bulk_halt_among_single_mutations_and_draws(wide_engine: AsyncEngine) -> None:
    engine = wide_engine
    pingpong = [await make_tree(engine, s) for s in [*PINGPONG] * 5]
    others = [await make_tree(engine, S.RANKING) for _ in range(10)]
    growing = [await make_tree(engine, S.GROWING, won=WON) for _ in range(5)]
    for _ in range(15):
        await make_tree(engine, S.PROMPT_LOTTERY_WAITING)
    before = await log_snapshot(engine)

    progress = asyncio.Condition()
    changes = 0
    running = 3
    started = asyncio.Event()
    bulk_ctx = context(engine, "bulk-admin", Role.ADMIN, bulk_batch=5)
    contexts = [bulk_ctx]

    async def changed(made: bool) -> None:
        nonlocal changes
        async with progress:
            changes += made
            progress.notify_all()

    async def batch_committed() -> None:
        started.set()
        seen = changes
        async with progress:
            await progress.wait_for(lambda: changes > seen or running == 0)

    bulk_ctx.hooks.bulk_batch_committed = batch_committed

    async def caller(name: str, work: Callable[[Context, random.Random], Awaitable[bool]]) -> None:
        nonlocal running
        ctx = context(engine, name, Role.ADMIN)
        contexts.append(ctx)
        rng = random.Random(name)
        await started.wait()
        try:
            for _ in range(OPS):
                await changed(await work(ctx, rng))
                await asyncio.sleep(0)  # let the others run between operations
        finally:
            async with progress:
                running -= 1
                progress.notify_all()

    async def transitions(ctx: Context, rng: random.Random) -> bool:
        tree = rng.choice(pingpong)
        current = (await log_snapshot(engine)).trees[str(tree)][0]
        target = PINGPONG.get(State(current), S.READY_FOR_SCORING)
        request = TransitionRequest(tree, Operation.TRANSITION_TREE, target=target)
        outcome = await transition_tree(ctx, request)
        return isinstance(outcome, TransitionApplied) and outcome.transition is not None

    async def halts_and_resumes(ctx: Context, rng: random.Random) -> bool:
        tree = rng.choice(pingpong + others + growing)
        current = State((await log_snapshot(engine)).trees[str(tree)][0])
        operation = (
            Operation.RESUME_TREE if current is S.HALTED_BY_MODERATOR else Operation.HALT_TREE
        )
        outcome = await transition_tree(ctx, TransitionRequest(tree, operation))
        return isinstance(outcome, TransitionApplied) and outcome.transition is not None

    async def draws(ctx: Context, rng: random.Random) -> bool:
        outcome = await draw_prompt_lottery(ctx, "en", rng.randint(1, 2), None)
        return isinstance(outcome, LotteryDrawn) and bool(outcome.drawn)

    request = BulkRequest(TreeFilter(), S.HALTED_BY_MODERATOR, 1000, reason="bulk halt")
    try:
        async with asyncio.timeout(TIMEOUT), asyncio.TaskGroup() as group:
            bulk_task = group.create_task(transition_trees(bulk_ctx, request))
            group.create_task(caller("singles", transitions))
            group.create_task(caller("moderator", halts_and_resumes))
            group.create_task(caller("lottery", draws))
    finally:
        for ctx in contexts:
            await ctx.close()
    report = bulk_task.result()

    after = await log_snapshot(engine)
    logged = await rows_after(engine, before.sequence)
    rows = [row for row, _ in logged]
    result = check(before, after, rows, CAP)
    assert result.violations == 0, result.details
    assert result.draws > 0

    # The bulk call's own account agrees with the log.
    mine = [row for row, operation in logged if operation == report.operation_id]
    assert report.applied == len(mine) > 0
    assert Counter(row.tree_id for row in mine) == Counter(str(t) for t in report.applied_ids)
    assert all(row.to_state == S.HALTED_BY_MODERATOR.value for row in mine)
    assert {op for _, op in logged} - {None} == {report.operation_id}
    assert report.matched == report.examined == len(before.trees)
    rejected = sum(r.count for r in report.rejected)
    assert report.applied + report.unchanged + rejected == report.examined
    assert {r.reason for r in report.rejected} <= {RejectionReason.STATE_CHANGED}

    # Others' changes fell between the bulk call's batches.
    first, last = mine[0].sequence, mine[-1].sequence
    between = [r for r, op in logged if op is None and first < r.sequence < last]
    assert between, "no other change was made while the bulk call ran"
    refused = [(r.reason.name, r.count) for r in report.rejected]
    print(
        f"\n[bulk] {engine.dialect.name}: {report.examined} examined, {report.applied} halted, "
        f"{report.unchanged} unchanged, rejected {refused}; "
        f"{len(rows) - len(mine)} other changes ({result.draws} drawn), {len(between)} between "
        "its batches; violations 0"
    )
