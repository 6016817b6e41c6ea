"""transitionTrees: a transition for every tree a filter matches, on SQLite and PostgreSQL.

Expectations come from what each test inserted and from docs/design.md's table (as
`tests.mutations.support` transcribes it), never from `domain.transitions`.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from db.engine import PoolOptions, create_engine
from domain.decisions import RejectionReason
from domain.outcomes import BulkReport, Identity, TransitionApplied
from domain.states import State
from domain.transitions import Operation, Role
from domain.values import TreeFilter
from gql.settings import Settings
from resolvers.bulk import BulkRequest, end_cursor, transition_trees
from resolvers.context import Context, Limits, WritePolicy
from resolvers.transitions import TransitionRequest, transition_tree
from tests.factories import TreeSpec, add_tree
from tests.graphql import client_for
from tests.mutations.conftest import ApiKeys, actor
from tests.mutations.support import (
    HALT,
    TRANSITION,
    body,
    log_of,
    make_tree,
    snapshot,
    tree_row,
)
from tests.mutations.test_conflict_retries import failing_log_inserts

S = State
WON = datetime(2023, 4, 1, 12, 0, tzinfo=UTC)
BULK = """mutation($input: TransitionTreesInput!) { result: transitionTrees(input: $input) {
  operationId dryRun matched examined applied appliedIds unchanged
  rejected { reason count messageTreeIds }
  hasNextPage endCursor refused
} }"""
LOG = """{ transitionLog(first: 100) { nodes {
  messageTreeId fromState toState operation actor reason bulkOperationId } } }"""


async def bulk(client: httpx.AsyncClient, key: str | None, **fields: Any) -> dict[str, Any]:
    """A transitionTrees call that must answer a result; returns it."""
    answer = await body(client, BULK, {"input": {"filter": {}, **fields}}, key=key)
    assert "errors" not in answer, answer["errors"]
    result: dict[str, Any] = answer["data"]["result"]
    return result


async def errors(client: httpx.AsyncClient, key: str | None, **fields: Any) -> list[str]:
    """The error codes of a transitionTrees call that must fail."""
    answer = await body(client, BULK, {"input": {"filter": {}, **fields}}, key=key)
    assert answer.get("data") is None, answer
    return [e["extensions"]["code"] for e in answer["errors"]]


def ids(trees: list[uuid.UUID]) -> list[str]:
    return sorted(str(t) for t in trees)


@dataclass
class World:
    """Trees to move to RANKING, by what docs/design.md's table says of each."""

    movable: list[uuid.UUID]  # growing and complete, scoring_failed, backlog_ranking
    incomplete: list[uuid.UUID]  # growing, 1 accepted message of 3: GUARD_FAILED
    refused: list[uuid.UUID]  # ready_for_export, ranking itself: NOT_ALLOWED

    @property
    def all(self) -> list[uuid.UUID]:
        return self.movable + self.incomplete + self.refused


@pytest.fixture
async def world(engine: AsyncEngine) -> World:
    movable = [
        await make_tree(engine, S.GROWING, won=WON),
        await make_tree(engine, S.GROWING, won=WON),
        await make_tree(engine, S.SCORING_FAILED, won=WON),
        await make_tree(engine, S.BACKLOG_RANKING),
    ]
    incomplete = [await make_tree(engine, S.GROWING, won=WON, accepted=0)]
    refused = [
        await make_tree(engine, S.READY_FOR_EXPORT, won=WON),
        await make_tree(engine, S.RANKING, won=WON),
    ]
    return World(movable, incomplete, refused)


def rejected(result: dict[str, Any]) -> dict[str, tuple[int, list[str]]]:
    return {r["reason"]: (r["count"], r["messageTreeIds"]) for r in result["rejected"]}


async def test_counts_log_rows_and_states(
    client: httpx.AsyncClient, engine: AsyncEngine, api_keys: ApiKeys, world: World
) -> None:
    started = await snapshot(engine)
    result = await bulk(client, api_keys.operator, to="RANKING", limit=100, reason="sweep")
    assert result["dryRun"] is False
    assert (result["matched"], result["examined"]) == (7, 7)
    assert result["applied"] == 4
    assert result["appliedIds"] == ids(world.movable)  # in message_tree_id order
    assert result["unchanged"] == 0
    assert rejected(result) == {
        "NOT_ALLOWED": (2, ids(world.refused)),
        "GUARD_FAILED": (1, ids(world.incomplete)),
    }
    assert [r["reason"] for r in result["rejected"]] == ["NOT_ALLOWED", "GUARD_FAILED"]
    assert (result["hasNextPage"], result["endCursor"], result["refused"]) == (False, None, None)

    operation_id = uuid.UUID(result["operationId"])
    log = await log_of(engine)
    assert len(log) == 4
    assert sorted(str(r["message_tree_id"]) for r in log) == ids(world.movable)
    for row in log:
        assert row["bulk_operation_id"] == operation_id
        assert row["to_state"] == "ranking"
        assert row["operation"] == "transitionTree"  # the table row's own operation
        assert (row["actor"], row["reason"]) == (actor("operator"), "sweep")
        assert row["from_state"] == started.trees[row["message_tree_id"]].state.value
    for tree in world.movable:
        assert (await tree_row(engine, tree)).state is S.RANKING
    for tree in world.incomplete + world.refused:
        assert await tree_row(engine, tree) == started.trees[tree]

    # The log's API shows the operation id; a single mutation's row has none.
    halted = await body(
        client, HALT, {"input": {"messageTreeId": str(world.refused[0])}}, key=api_keys.admin
    )
    assert halted["data"]["result"]["__typename"] == "TransitionApplied"
    nodes = (await body(client, LOG))["data"]["transitionLog"]["nodes"]
    by_operation = Counter(n["bulkOperationId"] for n in nodes)
    assert by_operation == {str(operation_id): 4, None: 1}


async def test_a_dry_run_reports_what_the_real_run_then_does(
    client: httpx.AsyncClient, engine: AsyncEngine, api_keys: ApiKeys, world: World
) -> None:
    before = await snapshot(engine)
    dry = await bulk(
        client, api_keys.operator, to="RANKING", limit=5, dryRun=True, idempotencyKey="dry-1"
    )
    assert dry["dryRun"] is True
    assert await snapshot(engine) == before  # no state, no log row, no idempotency key

    real = await bulk(client, api_keys.operator, to="RANKING", limit=5, idempotencyKey="dry-1")
    assert real["dryRun"] is False
    assert real["operationId"] != dry["operationId"]
    assert real["endCursor"] is not None
    same = ("matched", "examined", "applied", "appliedIds", "unchanged", "rejected", "hasNextPage")
    assert {k: real[k] for k in same} == {k: dry[k] for k in same}
    assert real["examined"] == 5
    assert real["hasNextPage"] is True
    assert len(await log_of(engine)) == real["applied"]
    # The cursors name the same position: the dry run's continues where the real run does.
    assert dry["endCursor"] == real["endCursor"]


async def test_the_lottery_move_is_never_made_and_resumes_follow_their_guard(
    client: httpx.AsyncClient, engine: AsyncEngine, api_keys: ApiKeys
) -> None:
    waiting = [await make_tree(engine, S.PROMPT_LOTTERY_WAITING) for _ in range(3)]
    won_before = await make_tree(engine, S.HALTED_BY_MODERATOR, won=WON)
    never_won = await make_tree(engine, S.HALTED_BY_MODERATOR)
    result = await bulk(client, api_keys.moderator, to="GROWING", limit=10)
    assert result["applied"] == 1
    assert result["appliedIds"] == [str(won_before)]
    assert rejected(result) == {
        "GUARD_FAILED": (1, [str(never_won)]),
        "LOTTERY_ONLY": (3, ids(waiting)),
    }
    [row] = await log_of(engine)
    assert (row["message_tree_id"], row["from_state"], row["to_state"]) == (
        won_before,
        "halted_by_moderator",
        "growing",
    )
    assert row["operation"] == "resumeTree"
    for tree in waiting:
        assert (await tree_row(engine, tree)).state is S.PROMPT_LOTTERY_WAITING
    assert (await tree_row(engine, never_won)).state is S.HALTED_BY_MODERATOR


async def test_halting_in_bulk_leaves_halted_trees_unchanged(
    client: httpx.AsyncClient, engine: AsyncEngine, api_keys: ApiKeys
) -> None:
    growing = await make_tree(engine, S.GROWING, won=WON)
    halted = await make_tree(engine, S.HALTED_BY_MODERATOR, won=WON)
    result = await bulk(client, api_keys.moderator, to="HALTED_BY_MODERATOR", limit=10)
    assert (result["applied"], result["unchanged"], result["rejected"]) == (1, 1, [])
    assert result["appliedIds"] == [str(growing)]
    [row] = await log_of(engine)
    assert (row["message_tree_id"], row["operation"]) == (growing, "haltTree")
    assert (await tree_row(engine, halted)).state is S.HALTED_BY_MODERATOR


# docs/design.md, "Roles and keys": halting and resuming need a moderator, the other rows an
# operator; each role includes the ones before it.
RANK = {"anonymous": 0, "reader": 1, "operator": 2, "moderator": 3, "admin": 4}
NEEDS = {"RANKING": 2, "ABORTED_LOW_GRADE": 2, "HALTED_BY_MODERATOR": 3, "GROWING": 3}
SINGLE = {  # the single mutation of the same table rows, for the same caller
    "RANKING": (TRANSITION, {"to": "RANKING"}),
    "ABORTED_LOW_GRADE": (TRANSITION, {"to": "ABORTED_LOW_GRADE"}),
    "HALTED_BY_MODERATOR": (HALT, {}),
}


@pytest.mark.parametrize("caller", list(RANK))
@pytest.mark.parametrize("target", list(NEEDS))
async def test_roles(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    api_keys: ApiKeys,
    caller: str,
    target: str,
) -> None:
    tree = await make_tree(engine, S.BACKLOG_RANKING)
    before = await snapshot(engine)
    key = None if caller == "anonymous" else api_keys[caller]
    if RANK[caller] >= NEEDS[target]:
        result = await bulk(client, key, to=target, limit=10, dryRun=True)
        assert result["examined"] == 1
        return
    codes = await errors(client, key, to=target, limit=10)
    assert codes == ["UNAUTHENTICATED" if caller == "anonymous" else "FORBIDDEN"]
    assert await snapshot(engine) == before
    if target in SINGLE:  # the same error as the single mutation gives this caller
        document, fields = SINGLE[target]
        single = await body(
            client, document, {"input": {"messageTreeId": str(tree), **fields}}, key=key
        )
        assert [e["extensions"]["code"] for e in single["errors"]] == codes


@pytest.mark.parametrize("limit", [0, -1, 1001])
async def test_limit_outside_the_cap_is_bad_input(
    client: httpx.AsyncClient, engine: AsyncEngine, api_keys: ApiKeys, limit: int
) -> None:
    await make_tree(engine, S.BACKLOG_RANKING)
    before = await snapshot(engine)
    assert await errors(client, api_keys.operator, to="RANKING", limit=limit) == ["BAD_USER_INPUT"]
    assert await snapshot(engine) == before


async def test_the_cap_is_a_setting(
    settings: Settings, engine: AsyncEngine, api_keys: ApiKeys
) -> None:
    trees = [await make_tree(engine, S.BACKLOG_RANKING) for _ in range(3)]
    async with client_for(settings.model_copy(update={"max_bulk": 2})) as client:
        assert await errors(client, api_keys.operator, to="RANKING", limit=3) == ["BAD_USER_INPUT"]
        result = await bulk(client, api_keys.operator, to="RANKING", limit=2)
    assert (result["matched"], result["applied"], result["hasNextPage"]) == (3, 2, True)
    assert result["appliedIds"] == ids(trees)[:2]


async def test_the_same_key_applies_once(
    client: httpx.AsyncClient, engine: AsyncEngine, api_keys: ApiKeys, world: World
) -> None:
    fields = {"to": "RANKING", "limit": 10, "idempotencyKey": "sweep-1"}
    first = await bulk(client, api_keys.operator, **fields)
    after_first = await snapshot(engine)
    again = await bulk(client, api_keys.operator, **fields)
    assert again == first
    assert await snapshot(engine) == after_first
    assert after_first.log_rows == first["applied"] == 4

    # The same key with another input: refused, nothing examined or changed.
    other = await bulk(client, api_keys.operator, **(fields | {"limit": 9}))
    assert other["refused"] == "IDEMPOTENCY_KEY_REUSED"
    assert (other["examined"], other["applied"], other["rejected"]) == (0, 0, [])
    assert await snapshot(engine) == after_first
    # Keys are per caller: another operator's key of the same name is its own.
    mine = await bulk(client, api_keys.other_operator, **(fields | {"limit": 9}))
    assert mine["refused"] is None
    assert mine["applied"] == 0  # the movable trees are in RANKING now


async def test_the_cursor_continues_after_the_last_tree_examined(
    client: httpx.AsyncClient, engine: AsyncEngine, api_keys: ApiKeys
) -> None:
    trees = ids([await make_tree(engine, S.BACKLOG_RANKING) for _ in range(5)])
    seen: list[str] = []
    matched = []
    after = None
    while True:
        result = await bulk(
            client, api_keys.operator, to="RANKING", limit=2, after=after, dryRun=True
        )
        seen += result["appliedIds"]
        matched.append(result["matched"])
        if not result["hasNextPage"]:
            assert result["endCursor"] is None
            break
        after = result["endCursor"]
    assert seen == trees
    assert matched == [5, 3, 1]
    assert await errors(client, api_keys.operator, to="RANKING", limit=2, after="nope") == [
        "BAD_USER_INPUT"
    ]
    # The filter still applies after a cursor: a real run over what is left.
    result = await bulk(
        client,
        api_keys.operator,
        to="RANKING",
        limit=10,
        filter={"states": ["BACKLOG_RANKING"]},
        after=(await bulk(client, api_keys.operator, to="RANKING", limit=2, dryRun=True))[
            "endCursor"
        ],
    )
    assert result["appliedIds"] == trees[2:]


async def test_a_bulk_write_clears_the_servers_counts(
    settings: Settings, engine: AsyncEngine, api_keys: ApiKeys
) -> None:
    for _ in range(3):
        await make_tree(engine, S.BACKLOG_RANKING)
    counts = "{ treeStateCounts(groupBy: [STATE]) { state count } }"
    long_window = settings.model_copy(update={"count_cache_s": 600})
    async with client_for(long_window) as client:
        assert (await body(client, counts))["data"]["treeStateCounts"] == [
            {"state": "BACKLOG_RANKING", "count": 3}
        ]
        await bulk(client, api_keys.operator, to="RANKING", limit=2)
        assert (await body(client, counts))["data"]["treeStateCounts"] == [
            {"state": "BACKLOG_RANKING", "count": 1},
            {"state": "RANKING", "count": 2},
        ]


# --- through the use case, with small batches ------------------------------------------------


@pytest.fixture
async def contexts(engine: AsyncEngine) -> AsyncIterator[list[Context]]:
    made: list[Context] = []
    yield made
    for ctx in made:
        await ctx.close()


def context(engine: AsyncEngine, made: list[Context], batch: int) -> Context:
    ctx = Context.create(
        engine,
        Limits(),
        "test",
        identity=Identity("bulk-operator", Role.OPERATOR),
        policy=WritePolicy(bulk_batch=batch),
    )
    made.append(ctx)
    return ctx


def to_ranking(limit: int, **fields: Any) -> BulkRequest:
    return BulkRequest(TreeFilter(), S.RANKING, limit, **fields)


class Crash(Exception):
    pass


async def test_each_batch_is_its_own_transaction(
    engine: AsyncEngine, contexts: list[Context]
) -> None:
    trees = sorted([await make_tree(engine, S.BACKLOG_RANKING) for _ in range(8)])
    ctx = context(engine, contexts, batch=3)
    moved_at_each_commit = []

    async def committed() -> None:
        # Seen from another connection: the batch is committed, the next not begun.
        states = (await snapshot(engine)).trees
        moved_at_each_commit.append([t for t in trees if states[t].state is S.RANKING])

    ctx.hooks.bulk_batch_committed = committed
    report = await transition_trees(ctx, to_ranking(100))
    assert report.applied == 8
    assert moved_at_each_commit == [trees[:3], trees[:6]]


async def test_a_retry_after_a_crash_goes_on_where_the_first_call_stopped(
    engine: AsyncEngine, contexts: list[Context]
) -> None:
    trees = sorted([await make_tree(engine, S.BACKLOG_RANKING) for _ in range(7)])
    crashing = context(engine, contexts, batch=2)

    async def crash() -> None:
        raise Crash

    crashing.hooks.bulk_batch_committed = crash
    request = to_ranking(100, idempotency_key="crash-1", reason="crash test")
    with pytest.raises(Crash):
        await transition_trees(crashing, request)
    log = await log_of(engine)
    assert [r["message_tree_id"] for r in log] == trees[:2]  # the first batch committed

    retried = context(engine, contexts, batch=2)
    report = await transition_trees(retried, request)
    assert (report.matched, report.examined, report.applied) == (7, 7, 7)
    assert report.applied_ids == tuple(trees)
    log = await log_of(engine)
    assert sorted(r["message_tree_id"] for r in log) == trees  # each tree once
    assert {r["bulk_operation_id"] for r in log} == {report.operation_id}

    # Once finished, the key answers the recorded report and changes nothing.
    assert await transition_trees(context(engine, contexts, batch=2), request) == report
    assert len(await log_of(engine)) == 7


async def test_the_ids_listed_are_the_first_hundred(
    engine: AsyncEngine, contexts: list[Context]
) -> None:
    async with engine.begin() as conn:
        trees = sorted(
            [await add_tree(conn, TreeSpec(state=S.READY_FOR_EXPORT)) for _ in range(105)]
        )
    report = await transition_trees(context(engine, contexts, batch=50), to_ranking(200))
    assert (report.examined, report.applied) == (105, 0)
    [refused] = report.rejected
    assert (refused.reason, refused.count) == (RejectionReason.NOT_ALLOWED, 105)
    assert refused.message_tree_ids == tuple(trees[:100])


def without_id(report: BulkReport) -> BulkReport:
    return replace(report, operation_id=uuid.UUID(int=0), dry_run=False)


async def test_dry_and_real_runs_agree_over_many_batches(
    engine: AsyncEngine, contexts: list[Context]
) -> None:
    # 12 trees, 3 of them growing and complete: at least one is among the 10 examined.
    states = [S.GROWING, S.SCORING_FAILED, S.BACKLOG_RANKING, S.READY_FOR_EXPORT, S.RANKING]
    for i in range(12):
        await make_tree(engine, states[i % 5], won=WON)
    await make_tree(engine, S.GROWING, won=WON, accepted=0)
    request = to_ranking(10, expected=S.GROWING)
    before = await snapshot(engine)
    dry = await transition_trees(context(engine, contexts, batch=4), replace(request, dry_run=True))
    assert await snapshot(engine) == before
    real = await transition_trees(context(engine, contexts, batch=4), request)
    assert without_id(dry) == without_id(real)
    assert end_cursor(dry) == end_cursor(real) is not None
    assert real.applied == len(await log_of(engine)) > 0
    assert {r.reason for r in real.rejected} >= {RejectionReason.STATE_CHANGED}


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_conflicts_are_retried_batch_by_batch(
    engine: AsyncEngine, contexts: list[Context]
) -> None:
    """A batch whose transaction meets a conflict runs again whole: each tree moves once.
    (PostgreSQL: SQLite runs one writer at a time and has no serialization failures.)"""
    trees = sorted([await make_tree(engine, S.BACKLOG_RANKING) for _ in range(5)])
    async with failing_log_inserts(engine, "40001", 2):
        report = await transition_trees(context(engine, contexts, batch=2), to_ranking(10))
    assert report.applied_ids == tuple(trees)
    log = await log_of(engine)
    assert sorted(r["message_tree_id"] for r in log) == trees


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_tree_moved_while_the_batch_decides_is_state_changed(
    engine: AsyncEngine, contexts: list[Context]
) -> None:
    """The compare-and-set from the state the bulk call read: a tree another caller moves
    between that read and the write is rejected, not overwritten, and gets no bulk log row.
    (PostgreSQL: on SQLite the other caller waits for the bulk call's write lock.)"""
    tree = await make_tree(engine, S.RANKING)
    ctx = context(engine, contexts, batch=10)
    other = context(engine, contexts, batch=10)

    async def move_it_first() -> None:
        ctx.hooks.before_write = None
        request = TransitionRequest(tree, Operation.TRANSITION_TREE, target=S.READY_FOR_SCORING)
        assert isinstance(await transition_tree(other, request), TransitionApplied)

    ctx.hooks.before_write = move_it_first
    report = await transition_trees(ctx, BulkRequest(TreeFilter(), S.READY_FOR_SCORING, 10))
    assert (report.examined, report.applied) == (1, 0)
    [changed] = report.rejected
    assert (changed.reason, changed.message_tree_ids) == (RejectionReason.STATE_CHANGED, (tree,))
    [row] = await log_of(engine)
    assert (row["actor"], row["bulk_operation_id"]) == ("bulk-operator", None)


async def test_two_calls_with_one_key_at_once_move_each_tree_once(
    engine: AsyncEngine, contexts: list[Context], database_url: URL
) -> None:
    """The key's row is locked by each batch: the two calls take turns, each going on from what
    the other committed, and both end with the one report."""
    trees = sorted([await make_tree(engine, S.BACKLOG_RANKING) for _ in range(9)])
    wide = create_engine(database_url, PoolOptions(size=4))
    try:
        first, second = (context(wide, contexts, batch=2) for _ in range(2))
        request = to_ranking(100, idempotency_key="twice")
        async with asyncio.timeout(60):
            one, other = await asyncio.gather(
                transition_trees(first, request), transition_trees(second, request)
            )
    finally:
        for ctx in contexts:
            await ctx.close()
        contexts.clear()
        await wide.dispose()
    assert one == other
    assert one.applied_ids == tuple(trees)
    log = await log_of(engine)
    assert sorted(r["message_tree_id"] for r in log) == trees
    assert {r["bulk_operation_id"] for r in log} == {one.operation_id}
