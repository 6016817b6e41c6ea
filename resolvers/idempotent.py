"""Running a mutation once per idempotency key."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from db import idempotency
from db.engine import write_transaction
from domain.codec import decode_outcome, encode_outcome
from domain.errors import InvalidInput, check_text
from domain.outcomes import LotteryOutcome, TransitionOutcome
from resolvers.context import Context

Outcome = TypeVar("Outcome", TransitionOutcome, LotteryOutcome)

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
    """
    check_key(key)
    scope = ctx.identity.name or "anonymous"
    request_hash = fingerprint(operation, arguments)
    fresh: Outcome | None = None
    try:
        async with write_transaction(ctx.engine) as conn:
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
                        return await reused(conn)
                    return decode_outcome(recorded.result)  # type: ignore[return-value]
            outcome = await action(conn)
            if key is not None:
                await idempotency.record(conn, scope=scope, key=key, result=encode_outcome(outcome))
            fresh = outcome
        # Committed (a replayed outcome is not counted again).
        ctx.caches.metrics.committed(fresh)
        return fresh
    finally:
        await ctx.after_write()
