"""transitionTrees: one transition applied to every tree a filter matches, in bounded batches.

Each tree goes through `resolvers.transitions` (`decide`, then `write_move`): the table, the
guards, the roles and the compare-and-set of `transitionTree`, with one log row per applied tree
carrying the call's operation id. Trees are taken in message_tree_id order, `policy.bulk_batch`
per write transaction (each retried whole after a conflict, as `run_once` does), so a call never
holds more than that many row locks.

Idempotency across several transactions: the first batch's transaction claims the key; every
batch's transaction locks the key's row first and records the progress (the report so far and
where it stopped) with its own writes, so what is recorded is always what was committed. The
same key and input again returns the finished report, or, when the first call stopped half-way
(a crash, a lost connection), goes on from the recorded progress with the same operation id:
no tree is taken twice. Two calls with one key at once take turns batch by batch, each going on
from where the other committed. A dry run writes nothing, its key included.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy.ext.asyncio import AsyncConnection

from db import idempotency, trees
from db.engine import read_transaction
from domain.codec import decode_bulk, encode_bulk
from domain.decisions import RejectionReason, bulk_operation, bulk_role
from domain.errors import InvalidInput, check_text
from domain.outcomes import (
    LISTED_IDS,
    BulkRejections,
    BulkReport,
    TransitionApplied,
    TransitionOutcome,
    TransitionRejected,
)
from domain.states import State
from domain.values import SortKey, TreeFilter, TreeOrder, TreeState
from resolvers.auth import require
from resolvers.context import Context
from resolvers.idempotent import check_key, fingerprint, in_write_transaction
from resolvers.pagination import decode_cursor, encode_cursor
from resolvers.transitions import MAX_REASON_LENGTH, Move, TransitionRequest, decide, write_move

OPERATION = "transitionTrees"
ORDER = TreeOrder.MESSAGE_TREE_ID_ASC


@dataclass(frozen=True, slots=True)
class BulkRequest:
    tree_filter: TreeFilter
    target: State
    limit: int
    expected: State | None = None
    after: str | None = None
    """A cursor of `messageTreeStates` in MESSAGE_TREE_ID_ASC order (a report's end cursor)."""
    dry_run: bool = False
    reason: str | None = None
    idempotency_key: str | None = None


@dataclass(slots=True)
class _Tally:
    """A report being built, batch by batch (copied before each batch's transaction, kept only
    once that transaction committed)."""

    operation_id: UUID
    matched: int = -1  # counted by the first batch
    examined: int = 0
    applied: int = 0
    applied_ids: list[UUID] = field(default_factory=list)
    unchanged: int = 0
    rejected: dict[RejectionReason, tuple[int, list[UUID]]] = field(default_factory=dict)
    last_examined: UUID | None = None
    has_more: bool = False
    done: bool = False

    def copy(self) -> _Tally:
        return replace(
            self,
            applied_ids=list(self.applied_ids),
            rejected={r: (n, list(ids)) for r, (n, ids) in self.rejected.items()},
        )

    def count(self, tree_id: UUID, outcome: TransitionOutcome | Move) -> None:
        self.examined += 1
        self.last_examined = tree_id
        if isinstance(outcome, Move) or (
            isinstance(outcome, TransitionApplied) and outcome.transition is not None
        ):
            self.applied += 1
            if len(self.applied_ids) < LISTED_IDS:
                self.applied_ids.append(tree_id)
        elif isinstance(outcome, TransitionApplied):
            self.unchanged += 1
        else:
            # A tree gone between its read and its compare-and-set changed under the call too.
            reason = (
                outcome.reason
                if isinstance(outcome, TransitionRejected)
                else RejectionReason.STATE_CHANGED
            )
            count, ids = self.rejected.get(reason, (0, []))
            if len(ids) < LISTED_IDS:
                ids.append(tree_id)
            self.rejected[reason] = (count + 1, ids)

    def report(self, dry_run: bool) -> BulkReport:
        return BulkReport(
            operation_id=self.operation_id,
            dry_run=dry_run,
            matched=max(self.matched, 0),
            examined=self.examined,
            applied=self.applied,
            applied_ids=tuple(self.applied_ids),
            unchanged=self.unchanged,
            rejected=tuple(
                BulkRejections(reason, *self._rejected(reason))
                for reason in RejectionReason
                if reason in self.rejected
            ),
            last_examined=self.last_examined,
            has_more=self.has_more,
        )

    def _rejected(self, reason: RejectionReason) -> tuple[int, tuple[UUID, ...]]:
        count, ids = self.rejected[reason]
        return count, tuple(ids)

    def encode(self) -> dict[str, Any]:
        return {"kind": "bulk", "done": self.done, "report": encode_bulk(self.report(False))}

    @classmethod
    def decode(cls, data: dict[str, Any]) -> _Tally:
        report = decode_bulk(data["report"])
        return cls(
            operation_id=report.operation_id,
            matched=report.matched,
            examined=report.examined,
            applied=report.applied,
            applied_ids=list(report.applied_ids),
            unchanged=report.unchanged,
            rejected={r.reason: (r.count, list(r.message_tree_ids)) for r in report.rejected},
            last_examined=report.last_examined,
            has_more=report.has_more,
            done=bool(data["done"]),
        )


def end_cursor(report: BulkReport) -> str | None:
    """Where a continuation starts: a cursor after the last tree examined, when more matched."""
    if not report.has_more or report.last_examined is None:
        return None
    return encode_cursor(ORDER, SortKey(None, report.last_examined))


def _check(ctx: Context, request: BulkRequest) -> UUID | None:
    """Role and input checks, before anything is read; the cursor's tree id."""
    require(ctx, bulk_role(request.target), OPERATION)
    cap = ctx.policy.max_bulk
    if not 1 <= request.limit <= cap:
        raise InvalidInput(
            "limit", f"`limit` must be between 1 and {cap} (TREEGATE_MAX_BULK), got {request.limit}"
        )
    if request.reason is not None and len(request.reason) > MAX_REASON_LENGTH:
        raise InvalidInput("reason", f"`reason` is longer than {MAX_REASON_LENGTH} characters")
    check_text("reason", request.reason)
    check_key(request.idempotency_key)
    if request.after is None:
        return None
    return decode_cursor(request.after, ORDER, "after").message_tree_id


async def transition_trees(ctx: Context, request: BulkRequest) -> BulkReport:
    """Apply `request.target` to up to `limit` trees matching the filter (see the module)."""
    after = _check(ctx, request)
    if request.dry_run:
        return await _dry_run(ctx, request, after)
    try:
        return await _run(ctx, request, after)
    finally:
        await ctx.after_write()


async def _batch(
    ctx: Context,
    conn: AsyncConnection,
    request: BulkRequest,
    tally: _Tally,
    start: UUID | None,
    write: Callable[[Move], Awaitable[TransitionOutcome]] | None,
) -> list[TransitionOutcome]:
    """Examine the next batch of trees after the tally's position, counting into `tally`;
    returns the outcomes of the moves written."""
    position = tally.last_examined or start
    if tally.matched < 0:
        tally.matched = await trees.count_trees_after(conn, request.tree_filter, position)
    size = min(ctx.policy.bulk_batch, request.limit - tally.examined)
    after = None if position is None else SortKey(None, position)
    found = await trees.list_trees(conn, request.tree_filter, ORDER, size + 1, after)
    written: list[TransitionOutcome] = []
    for tree in found[:size]:
        outcome = await _one(ctx, conn, request, tree)
        if isinstance(outcome, Move) and write is not None:
            outcome = await write(outcome)
            written.append(outcome)
        tally.count(tree.message_tree_id, outcome)
    more = len(found) > size
    tally.done = not more or tally.examined >= request.limit
    tally.has_more = more
    return written


async def _one(
    ctx: Context, conn: AsyncConnection, request: BulkRequest, tree: TreeState
) -> Move | TransitionOutcome:
    """transitionTree's decision for one tree, with the operation its table row names."""
    single = TransitionRequest(
        tree.message_tree_id,
        bulk_operation(tree.state, request.target),
        target=request.target,
        expected=request.expected,
        reason=request.reason,
    )
    return await decide(ctx, conn, single, tree)


async def _dry_run(ctx: Context, request: BulkRequest, after: UUID | None) -> BulkReport:
    """The same batches and decisions as a real run, each batch in a transaction rolled back."""
    tally = _Tally(uuid4())
    while not tally.done:
        async with read_transaction(ctx.engine) as conn:
            await _batch(ctx, conn, request, tally, after, None)
    return tally.report(True)


def _arguments(request: BulkRequest, after: UUID | None) -> dict[str, Any]:
    return {
        "filter": trees.filter_params(request.tree_filter),
        "to": request.target.value,
        "expected": None if request.expected is None else request.expected.value,
        "limit": request.limit,
        "after": None if after is None else str(after),
        "reason": request.reason,
    }


@dataclass(frozen=True, slots=True)
class _Step:
    """One committed batch transaction: the tally after it and the moves it wrote."""

    tally: _Tally
    written: list[TransitionOutcome]
    refused: bool = False
    """The key was used with another input (or is gone): nothing was examined."""


async def _run(ctx: Context, request: BulkRequest, after: UUID | None) -> BulkReport:
    key = request.idempotency_key
    scope = ctx.identity.name or "anonymous"
    request_hash = fingerprint(OPERATION, _arguments(request, after))
    committed = _Tally(uuid4())
    claimed = False

    async def attempt(conn: AsyncConnection) -> _Step:
        tally = committed.copy()
        if key is not None:
            if not claimed:
                now = ctx.clock()
                await idempotency.claim(
                    conn,
                    scope=scope,
                    key=key,
                    operation=OPERATION,
                    request_hash=request_hash,
                    now=now,
                    expires_at=now + ctx.policy.idempotency_ttl,
                )
            recorded = await idempotency.lock(conn, scope=scope, key=key)
            if recorded is None or recorded.request_hash != request_hash:
                return _Step(_Tally(uuid4(), matched=0, done=True), [], refused=True)
            if recorded.result is not None:
                tally = _Tally.decode(recorded.result)  # where this key's calls have got to
                if tally.done:
                    return _Step(tally, [])

        async def write(move: Move) -> TransitionOutcome:
            return await write_move(ctx, conn, move, request.reason, tally.operation_id)

        written = await _batch(ctx, conn, request, tally, after, write)
        if key is not None:
            await idempotency.record(conn, scope=scope, key=key, result=tally.encode())
        return _Step(tally, written)

    while True:
        step = await in_write_transaction(ctx, attempt)
        claimed = True
        committed = step.tally
        for outcome in step.written:
            ctx.caches.metrics.committed(outcome)
        if step.refused:
            return replace(committed.report(False), refused=RejectionReason.IDEMPOTENCY_KEY_REUSED)
        if committed.done:
            return committed.report(False)
        if ctx.hooks.bulk_batch_committed is not None:
            await ctx.hooks.bulk_batch_committed()
