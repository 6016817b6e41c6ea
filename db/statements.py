"""Statements written once in SQLAlchemy Core, built once per shape, run by either driver.

A read's statement depends only on its *shape* (which filter fields are set, the order, the
kind of cursor, the columns), never on values: values go in named parameters. So each shape's
statement is built once (`functools.lru_cache` on the builders) and a request only fills a
dict of parameters, which makes a `Query`:

- `run_core` executes it through SQLAlchemy (every backend; the only path on SQLite);
- `fetch_asyncpg` / `fetchrow_asyncpg` execute the same statement's SQL on an asyncpg
  connection, compiled by SQLAlchemy's asyncpg dialect once per statement (`compiled`): no
  second hand-written copy, and asyncpg keeps each one prepared per connection;
  `fetch_in_transaction` picks one or the other for a connection inside a write.

Lists are bound as one parameter: `= ANY($n)` with an array on PostgreSQL, so a statement's
text does not depend on how many values a list has; an expanding `IN` elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.engine import Result
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.expression import Executable

Driver = Any
"""An asyncpg connection."""

_ASYNCPG = PGDialect_asyncpg()  # type: ignore[no-untyped-call]

traced: Callable[[str], AbstractContextManager[Any]] | None = None
"""Set only while tracing is on (`gql.tracing`): a span around each statement run on asyncpg
itself, which SQLAlchemy's events (so its instrumentation) never see. None otherwise: a
statement then costs one check more."""


def member(column: ColumnElement[Any], name: str, *, pg: bool) -> ColumnElement[bool]:
    """`column` is one of the list bound as parameter `name`."""
    if pg:
        return column == any_(bindparam(name, type_=ARRAY(column.type)))
    return column.in_(bindparam(name, expanding=True))


@dataclass(frozen=True, slots=True)
class Query:
    """A statement (built once for its shape) and one request's parameter values."""

    statement: Executable
    params: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Compiled:
    sql: str
    names: tuple[str, ...]
    """The parameters in `$n` order."""
    constants: dict[str, Any]
    """Values the statement binds itself (e.g. the keys of a JSON path)."""


@lru_cache(maxsize=1024)
def compiled(statement: Executable) -> Compiled:
    """The statement's SQL for asyncpg, compiled once (statements are built once per shape)."""
    result = statement.compile(dialect=_ASYNCPG)  # type: ignore[attr-defined]
    names = tuple(result.positiontup or ())
    constants = {
        name: value
        for name, value in result.construct_params(_check=False).items()
        if value is not None
    }
    return Compiled(str(result), names, constants)


def _arguments(query: Query) -> list[Any]:
    found = compiled(query.statement)
    params = query.params
    constants = found.constants
    return [params[n] if n in params else constants[n] for n in found.names]


async def fetch_asyncpg(driver: Driver, query: Query) -> Sequence[Any]:
    """The rows (asyncpg records, read by position)."""
    sql = compiled(query.statement).sql
    if traced is None:
        return await driver.fetch(sql, *_arguments(query))  # type: ignore[no-any-return]
    with traced(sql):
        return await driver.fetch(sql, *_arguments(query))  # type: ignore[no-any-return]


async def fetchrow_asyncpg(driver: Driver, query: Query) -> Any:
    sql = compiled(query.statement).sql
    if traced is None:
        return await driver.fetchrow(sql, *_arguments(query))
    with traced(sql):
        return await driver.fetchrow(sql, *_arguments(query))


async def fetch_in_transaction(conn: AsyncConnection, query: Query) -> Sequence[Any]:
    """The rows of `query` on `conn`, inside the transaction it is in: on PostgreSQL run on
    asyncpg itself (its records, read by position; no SQLAlchemy row processing, which costs
    more than the query for thousands of rows), elsewhere through SQLAlchemy."""
    if conn.dialect.name == "postgresql":
        driver: Driver = (await conn.get_raw_connection()).driver_connection
        # SQLAlchemy begins the transaction with its first statement: until it has, asyncpg
        # would run this one outside it.
        if driver.is_in_transaction():
            return await fetch_asyncpg(driver, query)
    return list(await run_core(conn, query))


async def run_core(conn: AsyncConnection, query: Query) -> Result[Any]:
    """The rows through SQLAlchemy (rows read by position or by name)."""
    return await conn.execute(query.statement, query.params)
