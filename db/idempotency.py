"""Idempotency keys, `treegate_idempotency`: the first result of a mutation, per caller."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from db.tables import idempotency
from db.types import dialect_insert


@dataclass(frozen=True, slots=True)
class Recorded:
    """A key already used: by which operation and input, and what it returned."""

    operation: str
    request_hash: str
    result: dict[str, Any] | None


async def claim(
    conn: AsyncConnection,
    *,
    scope: str,
    key: str,
    operation: str,
    request_hash: str,
    now: datetime,
    expires_at: datetime,
) -> Recorded | None:
    """Take the key for this transaction; None if it was free, else what it recorded.

    A concurrent transaction holding the same key makes this wait (the primary key's
    uniqueness check) until it commits or rolls back, so one key has one effect.
    """
    same = and_(idempotency.c.scope == scope, idempotency.c.key == key)
    await conn.execute(delete(idempotency).where(same, idempotency.c.expires_at <= now))
    statement = (
        dialect_insert(conn, idempotency)
        .values(
            scope=scope,
            key=key,
            operation=operation,
            request_hash=request_hash,
            created_at=now,
            expires_at=expires_at,
        )
        .on_conflict_do_nothing()
    )
    if (await conn.execute(statement)).rowcount == 1:
        return None
    row = (
        await conn.execute(
            select(idempotency.c.operation, idempotency.c.request_hash, idempotency.c.result).where(
                same
            )
        )
    ).one()
    return Recorded(row.operation, row.request_hash, row.result)


async def lock(conn: AsyncConnection, *, scope: str, key: str) -> Recorded | None:
    """The key's row, locked until this transaction ends (PostgreSQL; SQLite's transaction
    holds the write lock anyway), so one caller at a time goes on with a multi-transaction
    operation of this key; None if it is gone (expired and pruned)."""
    same = and_(idempotency.c.scope == scope, idempotency.c.key == key)
    row = (
        await conn.execute(
            select(idempotency.c.operation, idempotency.c.request_hash, idempotency.c.result)
            .where(same)
            .with_for_update()
        )
    ).first()
    return None if row is None else Recorded(row.operation, row.request_hash, row.result)


async def record(conn: AsyncConnection, *, scope: str, key: str, result: dict[str, Any]) -> None:
    same = and_(idempotency.c.scope == scope, idempotency.c.key == key)
    await conn.execute(update(idempotency).where(same).values(result=result))


PRUNE_BATCH = 1000
"""Expired keys deleted per statement: each batch is a short transaction of its own."""


async def prune_batch(conn: AsyncConnection, now: datetime, limit: int = PRUNE_BATCH) -> int:
    """Delete up to `limit` expired keys (oldest first, by the `expires_at` index)."""
    expired = (
        select(idempotency.c.scope, idempotency.c.key)
        .where(idempotency.c.expires_at <= now)
        .order_by(idempotency.c.expires_at)
        .limit(limit)
    )
    result = await conn.execute(
        delete(idempotency).where(tuple_(idempotency.c.scope, idempotency.c.key).in_(expired))
    )
    return int(result.rowcount)
