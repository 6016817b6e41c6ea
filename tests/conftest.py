"""Fixtures: every API test runs on a temporary SQLite file and on a PostgreSQL database."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from gql.app import create_app
from gql.settings import Settings
from tests.databases import (
    PostgresUnavailable,
    migrated_engine,
    postgres_database,
    sqlite_url,
    truncate_all,
)
from tests.redis_server import redis_server

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session", params=BACKENDS)
async def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[URL]:
    """A migrated, empty database for the whole run, per backend."""
    if request.param == "sqlite":
        url = sqlite_url(Path(tmp_path_factory.mktemp("sqlite")) / "treegate.db")
        async with migrated_engine(url):
            pass
        yield url
        return
    try:
        async with postgres_database() as url:
            async with migrated_engine(url):
                pass
            yield url
    except PostgresUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
async def session_engine(database_url: URL) -> AsyncIterator[AsyncEngine]:
    async with migrated_engine(database_url) as engine:
        yield engine


@pytest.fixture
async def engine(session_engine: AsyncEngine) -> AsyncEngine:
    """The backend's engine, on a database emptied before the test."""
    await truncate_all(session_engine)
    return session_engine


@pytest.fixture
def settings(database_url: URL) -> Settings:
    # Tests write behind the server's back (straight into the database) between requests,
    # which shared counts and answers are blind to for their window, by design: both caches are
    # off here and tested on their own (tests/resolvers/, tests/mutations/, tests/http/).
    return Settings(
        database_url=database_url.render_as_string(hide_password=False),
        count_cache_s=0,
        response_cache_s=0,
    )


@pytest.fixture
async def app(settings: Settings, engine: AsyncEngine) -> AsyncIterator[Starlette]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://treegate.test") as c:
        yield c


@pytest.fixture
def backend(database_url: URL) -> str:
    return database_url.get_backend_name()


@pytest.fixture(autouse=True)
def _no_env_leak(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests build their own settings: a developer's TREEGATE_* variables must not leak in.
    for key in list(os.environ):
        if key.startswith("TREEGATE_") and key != "TREEGATE_TEST_DATABASE_URL":
            monkeypatch.delenv(key)


class SilentServer:
    """A server that takes TCP connections and never answers them (a hung database), and
    counts the connections it was asked for."""

    def __init__(self, listener: socket.socket) -> None:
        self._listener = listener
        self._taken: list[socket.socket] = []
        listener.setblocking(False)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self._listener.getsockname()[1]}/nope"

    def connections(self) -> int:
        """Connections opened so far. A client's connect returns once the handshake is done,
        when the kernel has queued the connection here, so none that returned is missed."""
        while True:
            try:
                taken, _ = self._listener.accept()
            except BlockingIOError:
                return len(self._taken)
            self._taken.append(taken)  # held open, never answered

    def close(self) -> None:
        for taken in self._taken:
            taken.close()


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        server = SilentServer(listener)
        try:
            yield server
        finally:
            server.close()


@pytest.fixture
def silent_database(silent_server: SilentServer) -> str:
    """A PostgreSQL URL whose server takes TCP connections and never answers them: a hang."""
    return silent_server.url


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private Redis server for the run (tests/redis_server.py)."""
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url
