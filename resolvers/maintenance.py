"""Keeping what grows with traffic bounded.

`treegate_idempotency` gains a row per idempotency key a client sends; a row is needed only until
it expires (`TREEGATE_IDEMPOTENCY_TTL_HOURS`). Expired rows are deleted by every serving process
every `TREEGATE_PRUNE_INTERVAL_S` (`Pruner`, started by the app's lifespan) and by `treegate
prune`, in batches of short transactions, so requests never wait long behind them. The
transition log is kept on purpose: it is the audit trail, and replaying it gives every tree's
state.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from db import idempotency
from db.background import Background
from db.engine import write_transaction
from db.faults import fault_reason

logger = logging.getLogger("treegate.maintenance")


async def prune_expired(engine: AsyncEngine, now: datetime) -> int:
    """Delete every idempotency key expired at `now`, a batch per transaction; how many."""
    deleted = 0
    while True:
        async with write_transaction(engine) as conn:
            batch = await idempotency.prune_batch(conn, now)
        deleted += batch
        if batch < idempotency.PRUNE_BATCH:
            return deleted
        await asyncio.sleep(0)  # let requests between batches


class Pruner:
    """Prunes expired rows every `interval` seconds while the server runs."""

    def __init__(self, engine: AsyncEngine, interval: float, clock: Callable[[], datetime]) -> None:
        self.engine = engine
        self.interval = interval
        self.clock = clock
        self.runs = 0
        self.deleted = 0
        self._task = Background("treegate-pruner")
        self._rounds: asyncio.Queue[int] | None = None

    @property
    def running(self) -> bool:
        return self._task.running

    def start(self) -> None:
        if self.interval > 0 and not self._task.running:
            self._rounds = asyncio.Queue()
            self._task.start(self._run)

    async def next_round(self) -> int:
        """Wait for the next round to finish; how many rows it deleted (for tests)."""
        assert self._rounds is not None, "the pruner is not running"
        return await self._rounds.get()

    async def stop(self) -> None:
        await self._task.stop()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                deleted = await prune_expired(self.engine, self.clock())
            except Exception as exc:  # a database that is down now: the next round tries again
                logger.warning("pruning expired idempotency keys failed: %s", fault_reason(exc))
                continue
            self.runs += 1
            self.deleted += deleted
            assert self._rounds is not None
            if self._rounds.qsize() < 100:  # nobody may be waiting: keep it bounded
                self._rounds.put_nowait(deleted)
            if deleted:
                logger.info("pruned %d expired idempotency keys", deleted)
