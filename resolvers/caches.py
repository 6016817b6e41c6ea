"""Caches shared by a process's requests: counts, and whole GET answers.

Counting is the one read whose cost grows with the table: `totalCount` and `treeStateCounts`
scan every matching row (an index-only scan of 200,000 entries takes 35 ms at a million trees),
and a dashboard's pollers ask the same count over and over. `SharedCache` computes each count
once per short window (`TREEGATE_COUNT_CACHE_S`, default 1 s) and hands the result to every
request that asks meanwhile; requests that ask while it is being computed wait for that one
computation instead of starting their own. A write committed through this process clears it
(`Context.after_write`), so a client never reads a count older than its own write. On
PostgreSQL the write also notifies every other Treegate process on the database, which clears its
caches as soon as the write commits (`db.notify`); writes made by Open-Assistant itself, and writes
a process missed while its listening connection was down, show within the window.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from resolvers.metrics import Metrics

T = TypeVar("T")


@dataclass(slots=True)
class _Entry:
    future: asyncio.Future[Any]
    at: float


class SharedCache:
    """Values computed once per window (`ttl` seconds) and shared; concurrent misses wait for the
    one computation. `clear()` forgets everything (a write was committed)."""

    def __init__(
        self, ttl: float, max_entries: int = 1024, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._entries: dict[Hashable, _Entry] = {}
        self.hits = 0
        self.misses = 0

    async def get(self, key: Hashable, compute: Callable[[], Awaitable[T]]) -> T:
        """The cached value for `key`, or `compute()`'s, shared with concurrent callers."""
        if self.ttl <= 0:
            return await compute()
        now = self._clock()
        entry = self._entries.get(key)
        if entry is not None and (not entry.future.done() or now - entry.at < self.ttl):
            self.hits += 1
            try:
                value: T = await asyncio.shield(entry.future)
            except asyncio.CancelledError:
                if not entry.future.cancelled():
                    raise  # this request itself was cancelled
                return await self.get(key, compute)  # the computing request went away
            return value
        self.misses += 1
        if len(self._entries) >= self.max_entries:
            self._evict(now)
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        entry = self._entries[key] = _Entry(future, now)
        try:
            result = await compute()
        except BaseException as error:
            # Waiters get the failure too; the next request computes afresh.
            if self._entries.get(key) is entry:
                del self._entries[key]
            if isinstance(error, asyncio.CancelledError):
                future.cancel()  # waiters compute afresh (see above)
            else:
                future.set_exception(error)
                future.exception()  # retrieved: no "never retrieved" warning without waiters
            raise
        future.set_result(result)
        return result

    def clear(self) -> None:
        """Forget everything (a write was committed): later requests compute afresh."""
        self._entries.clear()

    def forget(self, key: Hashable) -> None:
        entry = self._entries.get(key)
        if entry is not None and entry.future.done():
            del self._entries[key]

    def _evict(self, now: float) -> None:
        stale = [k for k, e in self._entries.items() if e.future.done() and now - e.at >= self.ttl]
        for key in stale:
            del self._entries[key]
        while len(self._entries) >= self.max_entries:
            del self._entries[next(iter(self._entries))]


@dataclass(slots=True)
class Caches:
    """What a process's requests share: the caches, and the metrics (handed to every context)."""

    counts: SharedCache = field(default_factory=lambda: SharedCache(ttl=0))
    responses: SharedCache = field(default_factory=lambda: SharedCache(ttl=0))
    """Whole answers to GET queries, by (URL query string, role, media type)."""
    metrics: Metrics = field(default_factory=Metrics)
    origin: str = field(default_factory=lambda: uuid.uuid4().hex)
    """This process's name in write notifications (it ignores its own: `db.notify`)."""

    @property
    def ttl(self) -> float:
        """The longest either cache keeps a value (0: both off)."""
        return max(self.counts.ttl, self.responses.ttl)

    def clear(self) -> None:
        self.counts.clear()
        self.responses.clear()
