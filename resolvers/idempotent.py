"""Running a mutation once per idempotency key."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from db import idempotency
from db.engine import write_transaction
from db.faults import DatabaseUnavailable, Fault, FaultKind, fault_of
from db.notify import announce_write
from domain.codec import decode_outcome, encode_outcome
from domain.errors import InvalidInput, check_text
from domain.outcomes import LotteryOutcome, TransitionOutcome
from resolvers.context import Context

Outcome = TypeVar("Outcome", TransitionOutcome, LotteryOutcome)
T = TypeVar("T")

MAX_KEY_LENGTH = 255


def fingerprint(operation: str, arguments: dict[str, Any]) -> str:
    """A hash of the operation and its input (the idempotency key itself excluded)."""
    canonical = json.dumps([operation, arguments], sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_key(key: str | None) -> None:
    if key is not None and not 1 <= len(key) <= MAX_KEY_LENGTH:
        raise InvalidInput(
            "idempotencyKey", f"`idempotencyKey` must be 1 to {MAX_KEY_LENGTH} characters"
        )
    check_text("idempotencyKey", key)


async def run_once(
    ctx: Context,
    *,
    operation: str,
    key: str | None,
    arguments: dict[str, Any],
    action: Callable[[AsyncConnection], Awaitable[Outcome]],
    reused: Callable[[AsyncConnection], Awaitable[Outcome]],
) -> Outcome:
    """Run `action` in one write transaction, at most once per (caller, key).

    The same key and input again returns the recorded outcome and changes nothing; the same
    key with another input (or operation) returns `reused(conn)` (IDEMPOTENCY_KEY_REUSED).
    The outcome is recorded in the transaction that made it, rejections included.

    A transaction ended by a conflict (serialization failure, deadlock, lock timeout, SQLite
    busy) was rolled back whole, so it is run again from the start, idempotency claim
    included, up to `policy.retry.attempts` tries with jittered backoff; then the caller gets
    `DatabaseUnavailable` (503). Any other failure, a lost connection included, is not retried
    here: whether its COMMIT took effect cannot be known, and the client's retry with the same
    idempotency key is what makes that safe.
    """
    check_key(key)
    scope = ctx.identity.name or "anonymous"
    request_hash = fingerprint(operation, arguments)

    async def attempt(conn: AsyncConnection) -> tuple[Outcome, bool]:
        if key is not None:
            now = ctx.clock()
            recorded = await idempotency.claim(
                conn,
                scope=scope,
                key=key,
                operation=operation,
                request_hash=request_hash,
                now=now,
                expires_at=now + ctx.policy.idempotency_ttl,
            )
            if recorded is not None:
                if recorded.request_hash != request_hash or recorded.result is None:
                    return await reused(conn), False
                return decode_outcome(recorded.result), False  # type: ignore[return-value]
        outcome = await action(conn)
        if key is not None:
            await idempotency.record(conn, scope=scope, key=key, result=encode_outcome(outcome))
        return outcome, True

    try:
        outcome, fresh = await in_write_transaction(ctx, attempt)
        if fresh:  # committed (a replayed outcome is not counted again)
            ctx.caches.metrics.committed(outcome)
        return outcome
    finally:
        await ctx.after_write()


async def in_write_transaction(
    ctx: Context, attempt: Callable[[AsyncConnection], Awaitable[T]]
) -> T:
    """`attempt(conn)` in one write transaction, committed; run again whole after a conflict.

    The transaction also notifies the other Treegate processes on the database, which clear
    their caches when it commits (`db.notify`; nothing is sent if it rolls back).

    A transaction ended by a conflict (serialization failure, deadlock, lock timeout, SQLite
    busy) was rolled back whole, so it is tried again, up to `policy.retry.attempts` tries with
    jittered backoff; then `DatabaseUnavailable` (503). Any other failure is raised as it is.
    """
    retry = ctx.policy.retry
    for tries in range(1, retry.attempts + 1):
        try:
            async with write_transaction(ctx.engine) as conn:
                result = await attempt(conn)
                await announce_write(conn, ctx.caches.origin)
        except Exception as exc:
            fault = fault_of(exc)
            if fault is None or fault.kind is not FaultKind.CONFLICT:
                raise
            if tries == retry.attempts:
                raise DatabaseUnavailable(
                    Fault(
                        FaultKind.UNAVAILABLE,
                        fault.reason,
                        f"{fault.message}; gave up after {tries} tries",
                    )
                ) from exc
            ctx.caches.metrics.retries.labels(fault.reason).inc()
            await asyncio.sleep(retry.delay(tries - 1))
            continue
        return result
    raise AssertionError("unreachable: the loop returns or raises")
