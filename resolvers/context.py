"""The per-request context every resolver receives."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from db.session import RequestConnection
from resolvers.loaders import Loaders


@dataclass(frozen=True, slots=True)
class Limits:
    """Request-independent limits the resolvers enforce."""

    max_page_size: int = 100
    default_page_size: int = 50


@dataclass(slots=True)
class Context:
    """One request's database connection, loaders and identity."""

    db: RequestConnection
    limits: Limits
    request_id: str
    loaders: Loaders
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def create(cls, engine: AsyncEngine, limits: Limits, request_id: str) -> Context:
        db = RequestConnection(engine)
        return cls(db=db, limits=limits, request_id=request_id, loaders=Loaders(db))

    async def close(self) -> None:
        await self.db.close()
