"""Who is calling: the API key from `Authorization: Bearer` or `X-API-Key`, and its role."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from db import keys
from db.engine import gate
from domain.outcomes import Identity
from domain.transitions import Role

AUTHORIZATION = "Authorization"
API_KEY = "X-API-Key"
KEY_HEADERS = (AUTHORIZATION, API_KEY)
"""The headers a key is sent in (`Authorization: Bearer` wins)."""
_AUTHORIZATION = AUTHORIZATION.lower()
_API_KEY = API_KEY.lower()


class InvalidKey(Exception):
    """A key was sent but is unknown or revoked."""


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key the request carries, if any (`Authorization: Bearer` wins over `X-API-Key`)."""
    authorization = headers.get(_AUTHORIZATION, "")
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    key = headers.get(_API_KEY, "").strip()
    return key or None


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling, and the request rate its key has of its own (None: its role's)."""

    identity: Identity
    rate_limit: str | None = None


async def identify(
    engine: AsyncEngine, headers: Mapping[str, str], anonymous: Role | None
) -> Caller:
    """The caller; raises InvalidKey for a key that is unknown or revoked."""
    key = presented_key(headers)
    if key is None:
        return Caller(Identity(None, anonymous))
    if len(key) > 200:
        raise InvalidKey
    async with gate(engine).admitted(), engine.connect() as conn:
        found = await keys.find_active(conn, key)
    if found is None:
        raise InvalidKey
    return Caller(Identity(found.name, found.role), found.rate_limit)
