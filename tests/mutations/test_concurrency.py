"""Twenty callers move one tree from the same state at once: exactly one wins, and one log row.

On PostgreSQL a barrier in the use case's `before_write` hook holds every caller after its read
and guard checks until all twenty have read, so the compare-and-set alone must pick the winner.
On SQLite a write transaction holds the database's write lock from its first read, so the
losers only read once the winner has committed (and such a barrier could never fill).
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from db.engine import PoolOptions, create_engine
from domain.decisions import RejectionReason
from domain.outcomes import Identity, TransitionApplied, TransitionOutcome, TransitionRejected
from domain.states import State
from domain.transitions import Operation, Role
from resolvers.context import Context, Limits
from resolvers.transitions import TransitionRequest, transition_tree
from tests.mutations.conftest import ApiKeys, actor
from tests.mutations.support import HALT, TRANSITION, log_of, make_tree, mutate, tree_row

S = State
CALLERS = 20
ROUNDS = 4
WON = datetime(2023, 4, 1, 12, 0, tzinfo=UTC)
# Back and forth between two states that the table links both ways, without guards.
LEGS = [(S.READY_FOR_SCORING, S.SCORING_FAILED), (S.SCORING_FAILED, S.READY_FOR_SCORING)]


@pytest.fixture
async def wide_engine(engine: AsyncEngine, database_url: URL) -> AsyncIterator[AsyncEngine]:
    """An engine whose pool holds every caller at once (`engine` emptied the database)."""
    wide = create_engine(database_url, PoolOptions(size=CALLERS + 5))
    try:
        yield wide
    finally:
        await wide.dispose()


async def race(
    engine: AsyncEngine,
    tree_id: uuid.UUID,
    source: State,
    target: State,
    *,
    expected: bool,
    barrier: asyncio.Barrier | None,
) -> tuple[list[TransitionOutcome], int]:
    """Run CALLERS transitions at once; returns the outcomes and how many reached the hook."""
    reached = 0

    async def before_write() -> None:
        nonlocal reached
        reached += 1
        if barrier is not None:
            await barrier.wait()

    contexts = []
    for _ in range(CALLERS):
        ctx = Context.create(engine, Limits(), "test", identity=Identity("op", Role.OPERATOR))
        ctx.hooks.before_write = before_write
        contexts.append(ctx)
    request = TransitionRequest(
        tree_id, Operation.TRANSITION_TREE, target=target, expected=source if expected else None
    )
    try:
        async with asyncio.timeout(60):
            outcomes = await asyncio.gather(*(transition_tree(ctx, request) for ctx in contexts))
    finally:
        for ctx in contexts:
            await ctx.close()
    return list(outcomes), reached


@pytest.mark.parametrize("expected", [True, False], ids=["expectedState", "no expectedState"])
async def test_one_winner_among_twenty(
    wide_engine: AsyncEngine, backend: str, expected: bool
) -> None:
    tree_id = await make_tree(wide_engine, S.READY_FOR_SCORING, won=WON)
    postgres = backend == "postgresql"
    for round_ in range(ROUNDS):
        source, target = LEGS[round_ % 2]
        barrier = asyncio.Barrier(CALLERS) if postgres else None
        outcomes, reached = await race(
            wide_engine, tree_id, source, target, expected=expected, barrier=barrier
        )

        applied = [o for o in outcomes if isinstance(o, TransitionApplied)]
        rejected = [o for o in outcomes if isinstance(o, TransitionRejected)]
        assert len(applied) == 1
        assert len(rejected) == CALLERS - 1
        [won] = applied
        assert won.tree.state is target
        assert won.transition is not None
        assert (won.transition.from_state, won.transition.to_state) == (source, target)
        assert won.transition.actor == "op"
        for loser in rejected:
            assert (loser.current_state, loser.requested_state) == (target, target)
        reasons = Counter(r.reason for r in rejected)
        if postgres:
            # Every caller read the tree in `source` and passed its checks: the
            # compare-and-set turned nineteen of them away.
            assert reached == CALLERS
            assert reasons == {RejectionReason.STATE_CHANGED: CALLERS - 1}
        else:
            # The losers waited for the write lock and then read the moved tree.
            assert reached == 1
            loser_reason = (
                RejectionReason.STATE_CHANGED if expected else RejectionReason.NOT_ALLOWED
            )
            assert reasons == {loser_reason: CALLERS - 1}

        assert (await tree_row(wide_engine, tree_id)).state is target
        log = await log_of(wide_engine, tree_id)
        assert len(log) == round_ + 1
        assert (log[-1]["from_state"], log[-1]["to_state"]) == (source.value, target.value)
        assert log[-1]["sequence"] == won.transition.sequence


async def test_one_winner_among_twenty_over_http(
    client: httpx.AsyncClient, engine: AsyncEngine, api_keys: ApiKeys
) -> None:
    tree_id = await make_tree(engine, S.READY_FOR_SCORING, won=WON)
    for round_ in range(ROUNDS):
        source, target = LEGS[round_ % 2]
        request = {"messageTreeId": str(tree_id), "to": target.name, "expectedState": source.name}
        results = await asyncio.gather(
            *(mutate(client, TRANSITION, request, api_keys.operator) for _ in range(CALLERS))
        )
        kinds = Counter(r["__typename"] for r in results)
        assert kinds == {"TransitionApplied": 1, "TransitionRejected": CALLERS - 1}
        [won] = [r for r in results if r["__typename"] == "TransitionApplied"]
        assert won["transition"]["actor"] == actor("operator")
        for r in results:
            if r["__typename"] == "TransitionRejected":
                assert (r["reason"], r["currentState"]) == ("STATE_CHANGED", target.name)
        assert (await tree_row(engine, tree_id)).state is target
        assert len(await log_of(engine, tree_id)) == round_ + 1


async def test_racing_halts_and_transitions(
    client: httpx.AsyncClient, engine: AsyncEngine, api_keys: ApiKeys
) -> None:
    """Halts and transitions of one tree at once: the log still replays to the final state."""
    tree_id = await make_tree(engine, S.RANKING, won=WON)
    move = {"messageTreeId": str(tree_id), "to": "READY_FOR_SCORING"}
    halt = {"messageTreeId": str(tree_id)}
    results = await asyncio.gather(
        *(
            mutate(client, TRANSITION, move, api_keys.admin)
            if i % 2
            else mutate(client, HALT, halt, api_keys.admin)
            for i in range(CALLERS)
        )
    )
    applied = [r for r in results if r["__typename"] == "TransitionApplied" and r["transition"]]
    # A caller that loses the race is told so (a halt too: it never overwrites blindly).
    refused = Counter(r["reason"] for r in results if r["__typename"] == "TransitionRejected")
    assert set(refused) <= {"STATE_CHANGED", "NOT_ALLOWED"}
    log = await log_of(engine, tree_id)
    assert 1 <= len(log) == len(applied) <= 2
    assert sorted(int(r["transition"]["sequence"]) for r in applied) == [r["sequence"] for r in log]
    state = S.RANKING
    for row in log:
        assert row["from_state"] == state.value
        state = State(row["to_state"])
    assert state in (S.READY_FOR_SCORING, S.HALTED_BY_MODERATOR)
    assert (await tree_row(engine, tree_id)).state is state
