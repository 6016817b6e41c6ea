"""Write notifications between processes (`db/notify.py`) on a real PostgreSQL server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from db.notify import WriteListener, announce_write, listener_params
from tests.db.fresh import fresh_postgres_engine
from tests.e2e.server import free_port


@pytest.fixture
async def pg_engine() -> AsyncIterator[AsyncEngine]:
    async with fresh_postgres_engine("treegate_notify") as engine:
        yield engine


class Heard:
    """A listener's callback: counts calls, and lets a test wait for the n-th."""

    def __init__(self) -> None:
        self.calls = 0
        self._changed = asyncio.Condition()

    def __call__(self) -> None:
        self.calls += 1
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait(self, calls: int) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self.calls >= calls)


@pytest.fixture
async def listening(pg_engine: AsyncEngine) -> AsyncIterator[tuple[WriteListener, Heard]]:
    heard = Heard()
    listener = WriteListener(listener_params(pg_engine), "this-process", heard)
    listener.start()
    try:
        await asyncio.wait_for(listener.wait_connected(), 30)
        await heard.wait(1)  # connecting clears once: writes before it went unheard
        yield listener, heard
    finally:
        await listener.stop()


async def announce(engine: AsyncEngine, origin: str, *, commit: bool) -> None:
    async with engine.connect() as conn:
        transaction = await conn.begin()
        await announce_write(conn, origin)
        if commit:
            await transaction.commit()
        else:
            await transaction.rollback()


async def test_only_committed_writes_of_other_processes_are_heard(
    pg_engine: AsyncEngine, listening: tuple[WriteListener, Heard]
) -> None:
    listener, heard = listening
    await announce(pg_engine, "another-process", commit=False)  # rolled back: never sent
    await announce(pg_engine, "this-process", commit=True)  # its own: ignored
    await announce(pg_engine, "another-process", commit=True)
    # Notifications arrive in commit order: once the last is heard, any earlier would have been.
    await asyncio.wait_for(heard.wait(2), 30)
    assert listener.notifications == 1
    assert heard.calls == 2


async def test_a_lost_listening_connection_is_reestablished_and_clears(
    pg_engine: AsyncEngine, listening: tuple[WriteListener, Heard]
) -> None:
    listener, heard = listening
    first = listener.backend_pid
    async with pg_engine.connect() as conn:
        assert await conn.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
    await asyncio.wait_for(listener.wait_connected(connections=2), 30)
    assert listener.reconnects == 1
    assert listener.backend_pid != first
    assert heard.calls == 2  # cleared again on reconnecting
    await announce(pg_engine, "another-process", commit=True)
    await asyncio.wait_for(heard.wait(3), 30)
    assert listener.notifications == 1


async def test_an_unreachable_database_is_retried_without_end() -> None:
    heard = Heard()
    params = {"host": "127.0.0.1", "port": free_port(), "user": "postgres", "database": "x"}
    listener = WriteListener(params, "this-process", heard, backoff_base=0.001, backoff_cap=0.01)
    listener.start()
    try:
        await asyncio.wait_for(listener.wait_failed(3), 30)
        assert not listener.connected
        assert listener.connections == 0
        assert heard.calls == 0
    finally:
        await listener.stop()
