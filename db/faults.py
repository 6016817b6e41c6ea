"""Database faults: what a failure means for the client, and when to stop asking the database.

Drivers report trouble in many shapes (asyncpg's exceptions, SQLAlchemy's wrappers around them,
`OSError`, sqlite3's `OperationalError`, the pool's `TimeoutError`). `fault_of` reads any of
them as one `Fault`:

- `Fault.kind` says what the client can do: `UNAVAILABLE` faults (the database is unreachable
  or went away, the pool had no connection free in time, a statement ran past its timeout) are
  answered 503 with `Retry-After`; `CONFLICT` faults (serialization failure, deadlock, lock
  timeout, SQLite busy) end one transaction only, which is retried as a whole
  (`resolvers.idempotent`), and become 503 once the retries are spent.
- `Fault.reason` is a short word for logs, metrics and `extensions.reason`.

`Breaker` keeps requests from waiting on a database that is known to be down: after a failed
connection attempt, new connections are refused at once (`DatabaseUnavailable`) except for one
probe every `probe_interval` seconds, and the first successful connection closes it again.
"""

from __future__ import annotations

import enum
import random
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg
from sqlalchemy import exc as sa_exc

RETRY_AFTER_S = 1
"""What `Retry-After` tells a client refused for a database fault: a second is enough for a
probe to find a restarted database, and spreads the retries of many clients a little."""


class FaultKind(enum.Enum):
    UNAVAILABLE = "unavailable"
    CONFLICT = "conflict"


@dataclass(frozen=True, slots=True)
class Fault:
    kind: FaultKind
    reason: str
    """`unreachable`, `connection_lost`, `pool_timeout`, `statement_timeout`, `overloaded`,
    `serialization_failure`, `deadlock`, `lock_timeout`, `busy` or `conflict`."""
    message: str


class DatabaseUnavailable(Exception):
    """Raised by Treegate itself when it will not ask the database (breaker open, retries
    spent); carries the `Fault` the client is told about."""

    def __init__(self, fault: Fault) -> None:
        super().__init__(fault.message)
        self.fault = fault


UNREACHABLE = Fault(FaultKind.UNAVAILABLE, "unreachable", "the database cannot be reached")
CONNECTION_LOST = Fault(
    FaultKind.UNAVAILABLE, "connection_lost", "the connection to the database was lost"
)
POOL_TIMEOUT = Fault(
    FaultKind.UNAVAILABLE,
    "pool_timeout",
    "no database connection became free in time (the server is busy)",
)
STATEMENT_TIMEOUT = Fault(
    FaultKind.UNAVAILABLE, "statement_timeout", "the database did not answer in time"
)
OVERLOADED = Fault(
    FaultKind.UNAVAILABLE, "overloaded", "the database refuses more connections for now"
)

_CONFLICT_STATES = {
    "40001": ("serialization_failure", "a concurrent transaction conflicted with this one"),
    "40P01": ("deadlock", "a deadlock with a concurrent transaction"),
    "55P03": ("lock_timeout", "a row stayed locked by another transaction too long"),
}
_UNAVAILABLE_STATES = {
    "57P01": CONNECTION_LOST,  # admin_shutdown: terminated, or the server shuts down
    "57P02": CONNECTION_LOST,  # crash_shutdown
    "57P03": UNREACHABLE,  # cannot_connect_now: starting up or shutting down
    "57P05": CONNECTION_LOST,  # idle_session_timeout
    "25P03": CONNECTION_LOST,  # idle_in_transaction_session_timeout
    "08000": CONNECTION_LOST,
    "08003": CONNECTION_LOST,
    "08006": CONNECTION_LOST,
    "08001": UNREACHABLE,
    "08004": UNREACHABLE,
    "53300": OVERLOADED,  # too_many_connections
    "53400": OVERLOADED,  # configuration_limit_exceeded
    "57014": STATEMENT_TIMEOUT,  # query_canceled: statement_timeout (Treegate cancels nothing)
}
_CONNECTION_ERRORS = (
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.InterfaceError,  # "connection is closed", "another operation is in progress", ...
    asyncpg.InternalClientError,  # the protocol state after the server dropped the connection
    asyncpg.PostgresConnectionError,
)


def causes(error: BaseException) -> list[BaseException]:
    """The error, what it wraps (`orig`) and what caused it, each once."""
    seen: list[BaseException] = []
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop(0)
        if current is None or any(current is s for s in seen) or len(seen) > 8:
            continue
        seen.append(current)
        pending += [getattr(current, "orig", None), current.__cause__, current.__context__]
    return seen


def _sqlstate(error: BaseException) -> str | None:
    state = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    return state if isinstance(state, str) else None


def fault_of(error: BaseException) -> Fault | None:
    """What `error` means as a database fault, or None if it is not one."""
    chain = causes(error)
    for current in chain:
        if isinstance(current, DatabaseUnavailable):
            return current.fault
    for current in chain:
        state = _sqlstate(current)
        if state in _CONFLICT_STATES:
            reason, message = _CONFLICT_STATES[state]
            return Fault(FaultKind.CONFLICT, reason, message)
        if state in _UNAVAILABLE_STATES:
            return _UNAVAILABLE_STATES[state]
    for current in chain:
        if isinstance(current, sa_exc.TimeoutError):  # the pool's checkout timeout
            return POOL_TIMEOUT
        if isinstance(current, sa_exc.DBAPIError) and current.connection_invalidated:
            return CONNECTION_LOST
        if isinstance(current, sqlite3.OperationalError):
            return _sqlite_fault(current)
        if isinstance(current, _CONNECTION_ERRORS):
            return CONNECTION_LOST
        if isinstance(current, ConnectionRefusedError | TimeoutError):
            return UNREACHABLE
        if isinstance(current, OSError):
            return CONNECTION_LOST
    return None


def fault_reason(error: BaseException) -> str:
    """A failure in a word for a log line or a status: its fault's reason, else its type's name."""
    fault = fault_of(error)
    return fault.reason if fault is not None else type(error).__name__


# SQLite's primary result codes (https://www.sqlite.org/rescode.html); an extended code
# carries its primary one in the low byte.
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_IOERR, _SQLITE_CANTOPEN = 5, 6, 10, 14


def _sqlite_fault(error: sqlite3.OperationalError) -> Fault | None:
    code = getattr(error, "sqlite_errorcode", None)
    primary = None if code is None else code & 0xFF
    if primary in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return Fault(FaultKind.CONFLICT, "busy", "the database stayed locked by another writer")
    if primary in (_SQLITE_IOERR, _SQLITE_CANTOPEN):
        return UNREACHABLE
    return None


def is_connectivity(fault: Fault | None) -> bool:
    """A fault of the connection itself (not of one statement or of the pool)."""
    return fault is not None and fault.reason in ("unreachable", "connection_lost", "overloaded")


@dataclass(frozen=True, slots=True)
class Backoff:
    """Jittered exponential backoff ("full jitter"): attempt n waits U(0, min(cap, base*2^n))."""

    attempts: int = 3
    """Tries in all, the first included."""
    base: float = 0.05
    cap: float = 1.0

    def delay(self, attempt: int) -> float:
        return random.uniform(0, min(self.cap, self.base * 2**attempt))


class Breaker:
    """Refuses new database connections at once while the database is known to be down.

    Closed: every connection attempt goes ahead. A failed attempt opens it: attempts are then
    refused with `DatabaseUnavailable` (in microseconds, whatever the connect timeout), except
    one probe at a time, at most every `probe_interval` seconds. A successful attempt closes it.
    All calls come from the event loop's thread (SQLAlchemy's pool runs there for asyncio
    drivers), so there is no lock.
    """

    def __init__(self, probe_interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.probe_interval = probe_interval
        self._clock = clock
        self.open = False
        self.last_fault: Fault | None = None
        self._next_probe = 0.0
        self._probing = False

    def before_connect(self) -> None:
        if not self.open:
            return
        now = self._clock()
        if self._probing or now < self._next_probe:
            raise DatabaseUnavailable(self.last_fault or UNREACHABLE)
        self._probing = True
        self._next_probe = now + self.probe_interval

    def failed(self, fault: Fault) -> None:
        self._probing = False
        self.open = True
        self.last_fault = fault
        self._next_probe = self._clock() + self.probe_interval

    def abandoned(self) -> None:
        """A probe that ended without an answer (cancelled): the next one may go."""
        self._probing = False

    def succeeded(self) -> None:
        self._probing = False
        self.open = False
