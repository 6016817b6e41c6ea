"""What the prompt lottery reads: growing counts, candidate authors and their prompts."""

from __future__ import annotations

from functools import lru_cache
from typing import Any
from uuid import UUID

from sqlalchemy import (
    ColumnElement,
    Integer,
    Join,
    Select,
    String,
    and_,
    bindparam,
    case,
    func,
    literal_column,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from db.statements import Query, fetch_in_transaction
from db.tables import message, user, user_stats
from db.tables import message_tree_state as mts
from domain.lottery import MONTH, Author
from domain.states import State


async def lock_language(conn: AsyncConnection, lang: str) -> None:
    """Serialize draws of one language until the transaction ends, across processes.

    PostgreSQL: a transaction-scoped advisory lock on the language. SQLite: the transaction
    already holds the database's write lock (it began IMMEDIATE), so nothing more is needed.
    """
    if conn.dialect.name == "postgresql":
        await conn.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": f"treegate.lottery:{lang}"},
        )


async def count_growing(conn: AsyncConnection, lang: str) -> int:
    query = (
        select(func.count())
        .select_from(mts)
        .where(mts.c.lang == lang, mts.c.state == State.GROWING.value)
    )
    return int((await conn.execute(query)).scalar_one())


def _constant(value: str | int) -> Any:
    """A value written into the statement's text rather than bound as a parameter.

    The candidate queries run as prepared statements. After a few executions PostgreSQL may
    plan them once for any parameter values (a generic plan); with the state bound too, it
    could not see that the waiting trees are thousands, and its nested-loop plan took twice as
    long as the hash joins it picks knowing the state (measured: 205 ms against 106 ms for a
    language with 17,742 waiting trees), under the language's lock."""
    if isinstance(value, int):
        return literal_column(str(int(value)), Integer())
    return literal_column("'" + str(value).replace("'", "''") + "'", String())


def _candidates(lang: Any) -> tuple[ColumnElement[bool], ...]:
    """Waiting trees of the language whose root is accepted and not deleted, by an author who
    is enabled and not deleted (Open-Assistant's candidates)."""
    return (
        mts.c.lang == lang,
        mts.c.state == _constant(State.PROMPT_LOTTERY_WAITING.value),
        message.c.deleted.is_not(True),
        message.c.review_result.is_(True),
        user.c.enabled.is_(True),
        user.c.deleted.is_not(True),
    )


def _candidate_join() -> Join:
    return mts.join(message, message.c.id == mts.c.message_tree_id).join(
        user, user.c.id == message.c.user_id
    )


@lru_cache(maxsize=1)
def _authors() -> Select[Any]:
    joined = _candidate_join().outerjoin(
        user_stats,
        and_(user_stats.c.user_id == user.c.id, user_stats.c.time_frame == _constant(MONTH)),
    )
    return (
        select(user.c.id, func.coalesce(func.max(user_stats.c.reply_ranked_1), _constant(0)))
        .select_from(joined)
        .where(*_candidates(bindparam("lang")))
        .group_by(user.c.id)
    )


@lru_cache(maxsize=1)
def _prompts() -> Select[Any]:
    return (
        select(mts.c.message_tree_id)
        .select_from(_candidate_join())
        .where(*_candidates(bindparam("lang")), message.c.user_id == bindparam("user_id"))
    )


async def candidate_authors(conn: AsyncConnection, lang: str) -> list[Author]:
    """Distinct authors of the candidates, with this month's `reply_ranked_1` (0 if missing).

    Thousands of rows for a busy language, read on every draw: on PostgreSQL as asyncpg's
    records, within the connection's transaction (`db.statements.fetch_in_transaction`)."""
    rows = await fetch_in_transaction(conn, Query(_authors(), {"lang": lang}))
    return list(map(Author._make, rows))  # (id, count): both drivers give ints for the count


async def author_prompts(conn: AsyncConnection, lang: str, user_id: UUID) -> list[UUID]:
    """The author's candidate trees in the language."""
    rows = await fetch_in_transaction(conn, Query(_prompts(), {"lang": lang, "user_id": user_id}))
    return [row[0] for row in rows]


async def counts_by_language(conn: AsyncConnection, lang: str | None) -> dict[str, tuple[int, int]]:
    """(waiting, growing) trees per language, in one statement."""
    waiting = State.PROMPT_LOTTERY_WAITING.value
    growing = State.GROWING.value
    query = (
        select(
            mts.c.lang,
            func.sum(case((mts.c.state == waiting, 1), else_=0)),
            func.sum(case((mts.c.state == growing, 1), else_=0)),
        )
        .where(mts.c.state.in_([waiting, growing]))
        .group_by(mts.c.lang)
        .order_by(mts.c.lang)
    )
    if lang is not None:
        query = query.where(mts.c.lang == lang)
    return {row[0]: (int(row[1]), int(row[2])) for row in await conn.execute(query)}
