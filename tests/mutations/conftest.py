"""API keys for the mutation tests: one per role, plus a revoked one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from db import keys
from domain.transitions import Role
from gql.cli_writes import new_key

ROLES = {
    "reader": Role.READER,
    "operator": Role.OPERATOR,
    "moderator": Role.MODERATOR,
    "admin": Role.ADMIN,
}


@dataclass(frozen=True)
class ApiKeys:
    """The plain keys (as a client sends them); key `x` is named `x-key` (the log's actor)."""

    reader: str
    operator: str
    moderator: str
    admin: str
    revoked: str
    other_operator: str

    def __getitem__(self, name: str) -> str:
        key: str = getattr(self, name)
        return key


def actor(name: str) -> str:
    return f"{name}-key"


@pytest.fixture
async def api_keys(engine: AsyncEngine) -> ApiKeys:
    made = {name: new_key() for name in (*ROLES, "revoked", "other_operator")}
    created = datetime.now(UTC)
    async with engine.begin() as conn:
        for name, role in ROLES.items():
            await keys.insert(conn, actor(name), role, made[name], created)
        await keys.insert(
            conn, actor("other_operator"), Role.OPERATOR, made["other_operator"], created
        )
        await keys.insert(conn, actor("revoked"), Role.ADMIN, made["revoked"], created)
        assert await keys.revoke(conn, actor("revoked"), created)
    return ApiKeys(**made)
