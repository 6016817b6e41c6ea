"""API keys, `treegate_api_key`: stored as a SHA-256 of the key, never the key itself."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from db.tables import api_key
from domain.transitions import Role


def key_hash(key: str) -> str:
    # Keys are 256-bit random tokens, so a fast hash is as safe as a slow one here.
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ApiKey:
    name: str
    role: Role
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    rate_limit: str | None = None
    """The key's own rate (`gql.rate_limits`); None: its role's default."""


def _to_key(row: Row[*tuple[Any, ...]]) -> ApiKey:
    return ApiKey(
        name=row.name,
        role=Role[row.role],
        prefix=row.prefix,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        rate_limit=row.rate_limit,
    )


async def insert(
    conn: AsyncConnection,
    name: str,
    role: Role,
    key: str,
    now: datetime,
    rate_limit: str | None = None,
) -> ApiKey:
    prefix = key[:10]
    await conn.execute(
        api_key.insert().values(
            name=name,
            role=role.name,
            key_hash=key_hash(key),
            prefix=prefix,
            created_at=now,
            rate_limit=rate_limit,
        )
    )
    return ApiKey(name, role, prefix, now, None, rate_limit)


async def set_rate_limit(conn: AsyncConnection, name: str, rate_limit: str | None) -> bool:
    """Give the key its own rate (None: its role's default again); False if there is no key
    of this name."""
    statement = update(api_key).where(api_key.c.name == name).values(rate_limit=rate_limit)
    return bool((await conn.execute(statement)).rowcount)


async def remove(conn: AsyncConnection, name: str) -> bool:
    return bool((await conn.execute(delete(api_key).where(api_key.c.name == name))).rowcount)


async def get(conn: AsyncConnection, name: str) -> ApiKey | None:
    row = (await conn.execute(select(api_key).where(api_key.c.name == name))).first()
    return None if row is None else _to_key(row)


async def find_active(conn: AsyncConnection, key: str) -> ApiKey | None:
    """The unrevoked key whose hash matches, if any."""
    query = select(api_key).where(
        api_key.c.key_hash == key_hash(key), api_key.c.revoked_at.is_(None)
    )
    row = (await conn.execute(query)).first()
    return None if row is None else _to_key(row)


async def all_keys(conn: AsyncConnection) -> list[ApiKey]:
    rows = await conn.execute(select(api_key).order_by(api_key.c.name))
    return [_to_key(row) for row in rows]


async def revoke(conn: AsyncConnection, name: str, now: datetime) -> bool:
    statement = (
        update(api_key)
        .where(api_key.c.name == name, api_key.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return bool((await conn.execute(statement)).rowcount)
