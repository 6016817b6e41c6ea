"""The per-request context every resolver receives."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from db.faults import Backoff
from db.session import RequestConnection
from domain.lottery import MAX_ACTIVE_TREES
from domain.outcomes import Identity
from domain.transitions import Role
from resolvers.caches import Caches
from resolvers.loaders import DEFAULT_MAX_TREE_MESSAGES, Loaders


@dataclass(frozen=True, slots=True)
class Limits:
    """Request-independent limits the resolvers enforce."""

    max_page_size: int = 100
    default_page_size: int = 50
    max_tree_messages: int = DEFAULT_MAX_TREE_MESSAGES
    """The most messages a request reads of one tree (tree-wide fields refuse larger trees)."""


@dataclass(slots=True)
class WritePolicy:
    """Settings of the write side, shared by all requests of a process."""

    max_active_trees: int = MAX_ACTIVE_TREES
    max_activate: int = 100
    idempotency_ttl: timedelta = timedelta(hours=24)
    rng: random.Random = field(default_factory=random.Random)
    retry: Backoff = field(default_factory=Backoff)
    """How a transaction that met a conflict (deadlock, lock timeout) is tried again."""
    max_bulk: int = 1000
    """The largest `limit` of one `transitionTrees` call."""
    bulk_batch: int = 100
    """Trees `transitionTrees` examines per transaction (so it holds that many row locks at
    most)."""


Hook = Callable[[], Awaitable[None]]


@dataclass(slots=True)
class Hooks:
    """Test seams: awaited at fixed points of a write, e.g. to line callers up at a barrier."""

    before_write: Hook | None = None
    """In a transition: after the tree and its guards were read, before the compare-and-set."""
    lottery_begun: Hook | None = None
    """In a draw: the transaction has begun, before the language's lock is taken."""
    lottery_authors_read: Hook | None = None
    """In a draw: the candidate authors were read, before their prompts are."""
    bulk_batch_committed: Hook | None = None
    """In a bulk move: a batch's transaction has committed, before the next one begins."""


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class Context:
    """One request's connection, loaders, identity and write settings."""

    engine: AsyncEngine
    db: RequestConnection
    limits: Limits
    request_id: str
    loaders: Loaders
    identity: Identity = field(default_factory=lambda: Identity(None, Role.READER))
    policy: WritePolicy = field(default_factory=WritePolicy)
    hooks: Hooks = field(default_factory=Hooks)
    clock: Callable[[], datetime] = utc_now
    extras: dict[str, Any] = field(default_factory=dict)
    caches: Caches = field(default_factory=Caches)

    @classmethod
    def create(
        cls,
        engine: AsyncEngine,
        limits: Limits,
        request_id: str,
        *,
        identity: Identity | None = None,
        policy: WritePolicy | None = None,
        caches: Caches | None = None,
        read_engine: AsyncEngine | None = None,
    ) -> Context:
        """`engine` is the primary, which every write goes to; the request's reads go to
        `read_engine` when given (a read replica: queries only), else to the primary too."""
        db = RequestConnection(read_engine or engine)
        return cls(
            engine=engine,
            db=db,
            limits=limits,
            request_id=request_id,
            loaders=Loaders(db, limits.max_tree_messages),
            identity=identity or Identity(None, Role.READER),
            policy=policy or WritePolicy(),
            caches=caches or Caches(),
        )

    async def after_write(self) -> None:
        """Reads after a committed write must see it: drop the read snapshot and caches."""
        self.caches.clear()
        await self.db.reset()
        self.loaders = Loaders(self.db, self.limits.max_tree_messages)

    async def close(self) -> None:
        await self.db.close()
