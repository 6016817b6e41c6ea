"""Registered GraphQL documents, `treegate_persisted_query`."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from db.tables import persisted_query


def sha256(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class PersistedQuery:
    sha256: str
    document: str
    name: str | None
    created_at: datetime


async def add(
    conn: AsyncConnection, document: str, name: str | None, now: datetime
) -> tuple[PersistedQuery, bool]:
    """Register `document` (idempotent); returns it and whether it was new."""
    digest = sha256(document)
    found = await get(conn, digest)
    if found is not None:
        return found, False
    await conn.execute(
        persisted_query.insert().values(sha256=digest, document=document, name=name, created_at=now)
    )
    return PersistedQuery(digest, document, name, now), True


async def get(conn: AsyncConnection, digest: str) -> PersistedQuery | None:
    row = (
        await conn.execute(select(persisted_query).where(persisted_query.c.sha256 == digest))
    ).first()
    return (
        None if row is None else PersistedQuery(row.sha256, row.document, row.name, row.created_at)
    )


async def all_queries(conn: AsyncConnection) -> list[PersistedQuery]:
    rows = await conn.execute(select(persisted_query).order_by(persisted_query.c.name))
    return [PersistedQuery(r.sha256, r.document, r.name, r.created_at) for r in rows]
