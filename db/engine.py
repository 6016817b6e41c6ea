"""Engines for PostgreSQL (asyncpg) and SQLite (aiosqlite), from one URL."""

from __future__ import annotations

import asyncio
import collections
import time
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection, Engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection, Dialect
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from db.faults import (
    UNREACHABLE,
    Breaker,
    DatabaseUnavailable,
    Fault,
    FaultKind,
    fault_of,
    is_connectivity,
)

_DRIVERS = {
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
}


def normalize_url(url: str | URL) -> URL:
    """Accept plain `postgresql://` and `sqlite:///` URLs and pick the async driver."""
    parsed = make_url(url)
    if parsed.drivername in _DRIVERS:
        parsed = parsed.set(drivername=_DRIVERS[parsed.drivername])
    if parsed.drivername not in _DRIVERS.values():
        raise ValueError(
            f"unsupported database URL scheme {parsed.drivername!r}: "
            "use postgresql://... or sqlite:///path"
        )
    return parsed


@dataclass(frozen=True, slots=True)
class PoolOptions:
    size: int = 10
    """Connections kept open. A few per core serve best: more backends than cores only compete."""
    max_overflow: int = 0
    """Connections opened beyond `size` under a burst and closed again when returned. Off by
    default: under steady concurrency above the pool, every few requests would pay for a new
    PostgreSQL connection (its start-up costs more than the query); requests queue for a pooled
    connection instead, at most `timeout` seconds."""
    timeout: float = 2.0
    """Seconds a request waits for a pooled connection before it gets 503."""
    connect_timeout: float = 2.0
    """Seconds to open a connection (TCP, TLS and PostgreSQL's start-up)."""
    statement_timeout_ms: int = 15_000
    """PostgreSQL `statement_timeout` of every connection (0: none)."""
    lock_timeout_ms: int = 5_000
    """PostgreSQL `lock_timeout` (0: none); SQLite's `busy_timeout` and the writers' queue."""
    idle_in_transaction_timeout_ms: int = 60_000
    """PostgreSQL `idle_in_transaction_session_timeout`: a leaked transaction's locks go."""
    ping_idle_s: float = 1.0
    """A connection idle in the pool longer than this is pinged before it is lent (PostgreSQL)."""
    probe_interval_s: float = 0.25
    """While the database is down, one connection attempt per this interval (`faults.Breaker`)."""


def probe_engine(url: str | URL, pool: PoolOptions) -> AsyncEngine:
    """An engine of one connection, no overflow, for checks (readiness, replica health): a busy
    pool does not make the database it checks look down."""
    return create_engine(url, replace(pool, size=1, max_overflow=0))


def create_engine(url: str | URL, pool: PoolOptions | None = None) -> AsyncEngine:
    """An async engine with settings that suit the backend."""
    pool = pool or PoolOptions()
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        lock_timeout_s = pool.lock_timeout_ms / 1000
        engine = create_async_engine(
            parsed,
            pool_size=pool.size,
            max_overflow=pool.max_overflow,
            pool_timeout=pool.timeout,
            # sqlite3's own `timeout` is its busy timeout: how long a statement waits for a lock.
            connect_args={"timeout": lock_timeout_s},
        )
        event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
        event.listen(engine.sync_engine, "begin", _sqlite_on_begin)
        _SQLITE_WRITERS[engine.sync_engine] = _WriterQueue(timeout=lock_timeout_s)
    else:
        engine = create_async_engine(
            parsed,
            pool_size=pool.size,
            max_overflow=pool.max_overflow,
            pool_timeout=pool.timeout,
            connect_args={
                "timeout": pool.connect_timeout,
                "server_settings": {
                    "application_name": "treegate",
                    "statement_timeout": str(pool.statement_timeout_ms),
                    "lock_timeout": str(pool.lock_timeout_ms),
                    "idle_in_transaction_session_timeout": str(pool.idle_in_transaction_timeout_ms),
                },
            },
        )
        _drop_when_stale(engine)
        _ping_when_idle(engine, pool.ping_idle_s)
    _guard_connects(engine, Breaker(pool.probe_interval_s))
    _GATES[engine.sync_engine] = Gate(pool.size + pool.max_overflow, pool.timeout)
    return engine


class Gate:
    """First come, first served admission to the pool's connections.

    With more requests than connections, requests wait. The pool's own queue lets a request
    that just arrived take a connection that was returned for a request already waiting (an
    `asyncio.Queue` hands the returned item to whoever asks first, and the woken waiter joins
    the back of the line), and each wait goes through `asyncio.wait_for`, whose task adds
    turns of the event loop: under load a few unlucky requests waited many times over, which
    set the 99th percentile. Requests first pass this gate, as wide as the pool: a request
    leaving hands its place straight to the longest waiting one, so nobody overtakes, and the
    pool itself never makes anyone wait. The wait is bounded by the pool timeout and ends as
    the pool's would (`sqlalchemy.exc.TimeoutError`: 503 `pool_timeout`).
    """

    def __init__(self, width: int, timeout: float) -> None:
        self.width = width
        self.timeout = timeout
        self._free = width
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    async def enter(self) -> None:
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        loop = asyncio.get_running_loop()
        place: asyncio.Future[None] = loop.create_future()
        self._waiters.append(place)
        expiry = loop.call_later(self.timeout, _expire, place, self.timeout)
        try:
            await place
        except BaseException:
            if place.done() and not place.cancelled() and place.exception() is None:
                self.leave()  # handed a place while being cancelled: pass it on
            raise
        finally:
            expiry.cancel()

    @property
    def waiting(self) -> int:
        """Requests waiting for a connection now."""
        return sum(not place.done() for place in self._waiters)

    def leave(self) -> None:
        waiters = self._waiters
        while waiters:
            place = waiters.popleft()
            if not place.done():  # not cancelled, not expired
                place.set_result(None)
                return
        self._free += 1

    @asynccontextmanager
    async def admitted(self) -> AsyncIterator[None]:
        await self.enter()
        try:
            yield
        finally:
            self.leave()


def _expire(place: asyncio.Future[None], timeout: float) -> None:
    if not place.done():
        place.set_exception(
            PoolTimeout(f"no connection free within {timeout} s (TREEGATE_DB_POOL_TIMEOUT)")
        )


_GATES: weakref.WeakKeyDictionary[Engine, Gate] = weakref.WeakKeyDictionary()


def gate(engine: AsyncEngine) -> Gate:
    """The engine's `Gate`: every request's checkout passes it (`db.session`, the writes)."""
    return _GATES[engine.sync_engine]


def breaker(engine: AsyncEngine) -> Breaker:
    """The engine's breaker (`db.faults.Breaker`), which /readyz and the metrics read."""
    return _BREAKERS[engine.sync_engine]


_BREAKERS: weakref.WeakKeyDictionary[Engine, Breaker] = weakref.WeakKeyDictionary()


def _guard_connects(engine: AsyncEngine, guard: Breaker) -> None:
    """Every new connection passes the breaker: refused at once while the database is down."""
    _BREAKERS[engine.sync_engine] = guard

    def connect(
        dialect: Dialect, _record: ConnectionPoolEntry, cargs: Any, cparams: Any
    ) -> DBAPIConnection:
        guard.before_connect()
        try:
            connection = dialect.connect(*cargs, **cparams)
        except Exception as exc:
            guard.failed(fault_of(exc) or UNREACHABLE)
            raise
        except BaseException:  # cancelled: says nothing about the database
            guard.abandoned()
            raise
        guard.succeeded()
        return connection

    event.listen(engine.sync_engine, "do_connect", connect)


async def wait_until_reachable(
    engine: AsyncEngine, within_s: float, waiting: Callable[[Fault], None]
) -> None:
    """Return once the database accepts a connection; `waiting` is told (once) when the first
    attempt fails. After `within_s` seconds the last attempt's error is raised. Errors that are
    not about reaching the database (a wrong password, say) are raised at once."""
    deadline = time.monotonic() + within_s
    pause = 0.25
    told = False
    while True:
        try:
            async with engine.connect():
                return
        except Exception as exc:
            fault = fault_of(exc)
            if not is_connectivity(fault) or time.monotonic() >= deadline:
                raise
            if not told:
                waiting(fault or UNREACHABLE)
                told = True
        await asyncio.sleep(min(pause, max(0.0, deadline - time.monotonic())))
        pause = min(pause * 2, 2.0)


_OPENED_AT = "treegate_opened_at"
_STALE_BEFORE: weakref.WeakKeyDictionary[Engine, float] = weakref.WeakKeyDictionary()


def drop_connections_opened_before_now(engine: AsyncEngine) -> None:
    """Close, instead of lending, every pooled connection opened before now.

    A connection that broke in use means the database most likely restarted, and then every
    connection opened before is broken too. SQLAlchemy does this itself for a disconnect it
    sees; this is for the ones found under asyncpg, out of its sight (`db.session`), with the
    pool's public events: a checkout listener turns such a connection away, as a failed ping.
    """
    _STALE_BEFORE[engine.sync_engine] = time.monotonic()


def _drop_when_stale(engine: AsyncEngine) -> None:
    def on_connect(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info[_OPENED_AT] = time.monotonic()

    def on_checkout(_dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        stale_before = _STALE_BEFORE.get(engine.sync_engine)
        if stale_before is not None and record.info.get(_OPENED_AT, stale_before) < stale_before:
            raise DisconnectionError("opened before a connection was found broken")

    event.listen(engine.sync_engine, "connect", on_connect)
    event.listen(engine.sync_engine, "checkout", on_checkout)


_RETURNED_AT = "treegate_returned_at"


def _ping_when_idle(engine: AsyncEngine, idle_s: float) -> None:
    """Check a connection before use if it sat in the pool longer than `idle_s`.

    `pool_pre_ping` pings on every checkout: with asyncpg that is BEGIN, a query and ROLLBACK,
    three round trips in front of every request's first statement. A connection handed back
    moments ago is as alive as a ping would show (HikariCP skips its check within 500 ms for
    the same reason), so only connections idle longer are pinged. A failed ping makes the pool
    discard the connection and lend another (`DisconnectionError` from a checkout listener);
    a connection that dies while in use raises a disconnect error, which invalidates the pool.
    """

    def on_checkin(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info[_RETURNED_AT] = time.monotonic()

    def on_checkout(dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        returned = record.info.get(_RETURNED_AT)
        if returned is None or time.monotonic() - returned <= idle_s:
            return  # just connected, or back from use a moment ago
        try:
            dbapi_connection.ping()
        except Exception as exc:  # any failure: this connection is not to be lent
            raise DisconnectionError(f"connection failed its ping: {type(exc).__name__}") from exc

    event.listen(engine.sync_engine, "checkin", on_checkin)
    event.listen(engine.sync_engine, "checkout", on_checkout)


WRITE_OPTION = "treegate_write"
"""Execution option marking a connection whose transaction will write (see `write_connection`)."""


def _sqlite_on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # The driver's own implicit BEGIN is turned off so that SQLAlchemy's "begin" event below
    # decides how each transaction starts.
    dbapi_connection.isolation_level = None
    # WAL lets readers run beside a writer; foreign keys are off by default in SQLite.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_on_begin(connection: Connection) -> None:
    # A write transaction takes SQLite's write lock when it begins, so that what it reads
    # cannot change before it writes, across connections and processes alike (busy_timeout
    # makes the others wait). Read transactions stay deferred and never block writers (WAL).
    options = connection.get_execution_options()
    if options.get("isolation_level") == "AUTOCOMMIT":
        return  # statement by statement, as the caller asked
    write = options.get(WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


class _WriterQueue:
    """One process's SQLite writers, waiting in arrival order for their turn to BEGIN IMMEDIATE.

    SQLite's busy handler makes a blocked writer sleep and retry, with sleeps growing to
    100 ms. Writers that queued at the same moment retry in lockstep, so once many wait,
    each hand-over of the write lock costs about 100 ms whatever the transaction's length:
    fifty concurrent draws took 4-4.5 s of the 5 s busy_timeout, and eighty got "database is
    locked". Queueing a process's writers on an asyncio lock first hands the lock over at
    once; the busy handler is then left with writers of other processes only.
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    def lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = asyncio.Lock()
        return lock


WRITERS_BUSY = Fault(
    FaultKind.UNAVAILABLE, "writers_busy", "too many writers are waiting for the database"
)

_SQLITE_WRITERS: weakref.WeakKeyDictionary[Engine, _WriterQueue] = weakref.WeakKeyDictionary()


@asynccontextmanager
async def _turn_to_write(engine: AsyncEngine) -> AsyncIterator[None]:
    """Wait (at most the pool timeout) until no other writer of this process runs (SQLite)."""
    queue = _SQLITE_WRITERS.get(engine.sync_engine)
    if queue is None:
        yield
        return
    lock = queue.lock()
    try:
        async with asyncio.timeout(queue.timeout):
            await lock.acquire()
    except TimeoutError:
        raise DatabaseUnavailable(WRITERS_BUSY) from None
    try:
        yield
    finally:
        lock.release()


@asynccontextmanager
async def write_transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection in a transaction meant to write: committed on success, rolled back on error.

    On SQLite it holds the database's write lock from the start, and the process's writers
    take turns before asking for it (`_WriterQueue`); on PostgreSQL it is an ordinary READ
    COMMITTED transaction (writes there rely on compare-and-set and locks).
    """
    async with _turn_to_write(engine), gate(engine).admitted(), engine.connect() as conn:
        await conn.execution_options(**{WRITE_OPTION: True})
        async with conn.begin():
            yield conn


@asynccontextmanager
async def read_transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection in a transaction that only reads (a dry run's), rolled back at the end, so
    nothing done in it can stay; admitted through the pool's gate as every connection is."""
    async with gate(engine).admitted(), engine.connect() as conn:
        transaction = await conn.begin()
        try:
            yield conn
        finally:
            await transaction.rollback()
