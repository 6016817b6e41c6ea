"""Telling every Treegate process on one PostgreSQL database that a write was committed.

Each process keeps short-lived caches of counts and whole GET answers (`resolvers.caches`). A
write clears the caches of the process that made it at once; the other processes learn of it
through PostgreSQL's `LISTEN`/`NOTIFY`:

- `announce_write` runs `pg_notify` inside the writing transaction. PostgreSQL delivers a
  notification only when that transaction commits, so a write that is rolled back tells nobody,
  and a listener hears of a write only once it can be read.
- `WriteListener` holds one connection of its own per process (not one of the pool's), listens
  on the channel and calls back on every notification sent by another process. When that
  connection is lost, the caches fall back to their TTL (`TREEGATE_COUNT_CACHE_S`,
  `TREEGATE_RESPONSE_CACHE_S`) while it reconnects with backoff; once listening again it calls
  back as for a write, since writes made meanwhile went unheard. A connection that stops
  answering without being closed (a network partition) is found by a check every
  `check_interval` seconds.

SQLite has no `NOTIFY`: it is served by one process (`treegate serve` refuses `--workers` there).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from typing import Any

import asyncpg
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from db.background import Background
from db.faults import fault_reason

CHANNEL = "treegate_writes"
"""The notification channel; a notification's payload is the writing process's `origin`."""

LISTENER_APPLICATION_NAME = "treegate-listener"
"""`application_name` of the listening connection (`pg_stat_activity` shows it)."""

logger = logging.getLogger("treegate.notify")


async def announce_write(conn: AsyncConnection, origin: str) -> None:
    """Notify the other processes when this transaction commits (PostgreSQL; nothing on SQLite)."""
    if conn.dialect.name == "postgresql":
        await conn.execute(select(func.pg_notify(CHANNEL, origin)))


def listener_params(engine: AsyncEngine) -> dict[str, Any]:
    """asyncpg's connection arguments for the engine's database, as SQLAlchemy derives them."""
    _args, params = engine.dialect.create_connect_args(engine.url)
    return dict(params)


class WriteListener:
    """Listens for other processes' writes and calls `on_write` for each; reconnects on its own.

    `on_write` is also called each time the listening connection is (re)established, before
    which writes may have gone unheard. `connected`, `notifications` and `reconnects` are read
    by `/metrics`.
    """

    def __init__(
        self,
        params: dict[str, Any],
        origin: str | None,
        on_write: Callable[[], None],
        *,
        connect_timeout: float = 2.0,
        check_interval: float = 5.0,
        backoff_base: float = 0.1,
        backoff_cap: float = 5.0,
    ) -> None:
        self.params = params
        self.origin = origin
        self.on_write = on_write
        self.connect_timeout = connect_timeout
        self.check_interval = check_interval
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.connected = False
        self.notifications = 0
        """Writes of other processes heard (each cleared the caches)."""
        self.connections = 0
        """Times the listening connection was established; more than one means reconnects."""
        self.failed_connects = 0
        """Attempts to open the listening connection that failed."""
        self.backend_pid: int | None = None
        self._task = Background("treegate-write-listener")
        self._changed = asyncio.Condition()

    @property
    def reconnects(self) -> int:
        return max(0, self.connections - 1)

    def start(self) -> None:
        self._task.start(self._run)

    async def stop(self) -> None:
        await self._task.stop()

    async def wait_connected(self, connections: int = 1) -> None:
        """Until the listening connection has been established `connections` times."""
        await self._wait(lambda: self.connected and self.connections >= connections)

    async def wait_failed(self, attempts: int) -> None:
        """Until `attempts` attempts to connect have failed."""
        await self._wait(lambda: self.failed_connects >= attempts)

    async def _wait(self, predicate: Callable[[], bool]) -> None:
        async with self._changed:
            await self._changed.wait_for(predicate)

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                conn = await asyncpg.connect(
                    **self.params,
                    timeout=self.connect_timeout,
                    server_settings={"application_name": LISTENER_APPLICATION_NAME},
                )
            except Exception as exc:  # unreachable for now: try again after a while
                failures += 1
                async with self._changed:
                    self.failed_connects += 1
                    self._changed.notify_all()
                delay = self._delay(failures)
                if failures == 1 or failures % 20 == 0:
                    logger.warning(
                        "cannot listen for other processes' writes (%s); caches fall back to "
                        "their TTL; trying again in %.1f s",
                        fault_reason(exc),
                        delay,
                    )
                await asyncio.sleep(delay)
                continue
            try:
                if await self._listen(conn):
                    failures = 0
            finally:
                conn.terminate()
                await self._set_connected(False)
            failures += 1
            logger.warning(
                "lost the connection that listens for other processes' writes; caches fall "
                "back to their TTL until it is back"
            )
            await asyncio.sleep(self._delay(failures))

    async def _listen(self, conn: asyncpg.Connection) -> bool:
        """Listen on `conn` until it is lost; whether it ever listened."""
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        try:
            await conn.add_listener(CHANNEL, self._notified)
        except Exception as exc:
            logger.warning("LISTEN failed: %s", fault_reason(exc))
            return False
        self.backend_pid = conn.get_server_pid()
        self.connections += 1
        # Writes committed while nobody listened went unheard: forget what they may have changed.
        self.on_write()
        await self._set_connected(True)
        if self.connections > 1:
            logger.info("listening for other processes' writes again")
        while not lost.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.check_interval):
                    await lost.wait()
            if lost.is_set():
                break
            try:
                await conn.fetchval("SELECT 1", timeout=self.check_interval)
            except Exception:
                break
        return True

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        if payload != self.origin:  # this process cleared its caches when it wrote (None: hear all)
            self.notifications += 1
            self.on_write()

    async def _set_connected(self, connected: bool) -> None:
        async with self._changed:
            self.connected = connected
            self._changed.notify_all()

    def _delay(self, failures: int) -> float:
        """Full jitter: U(0, min(cap, base * 2^failures))."""
        return random.uniform(0, min(self.backoff_cap, self.backoff_base * 2**failures))
