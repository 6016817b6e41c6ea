"""Shared helpers of the read-API tests: seeded trees, and their Python-side model.

Every expectation in the API tests is computed here from what the test inserted: filters,
orders and counts are re-implemented in plain Python, never read back from the API.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
from sqlalchemy import event, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from starlette.applications import Starlette

from db.tables import message, message_tree_state
from domain.states import State, is_active
from tests.factories import TreeSpec, add_tree, payload
from tests.graphql import data

LANGS = ("en", "de", "es")
ORIGINS = (None, "oasst-import", "backlog-2023")
D0 = datetime(2023, 4, 1, 12, 0, tzinfo=UTC)
# Shared dates, a one-microsecond neighbour, and an instant given in another time zone.
WON_DATES: tuple[datetime | None, ...] = (
    D0,
    D0,
    None,
    D0 + timedelta(microseconds=1),
    D0 - timedelta(days=3),
    datetime(2023, 4, 2, 9, 30, tzinfo=timezone(timedelta(hours=2))),
    None,
    D0 + timedelta(days=10, seconds=7),
)
ORDERS = (
    "MESSAGE_TREE_ID_ASC",
    "MESSAGE_TREE_ID_DESC",
    "WON_LOTTERY_DATE_ASC",
    "WON_LOTTERY_DATE_DESC",
)


@dataclass(frozen=True)
class Tree:
    """What a test inserted, as the API should report it."""

    id: uuid.UUID
    state: State
    lang: str
    origin: str | None
    won: datetime | None
    active: bool
    messages: int  # non-deleted messages in the tree


async def insert_tree(
    conn: AsyncConnection,
    spec: TreeSpec,
    *,
    active: bool | None = None,
    tree_id: uuid.UUID | None = None,
    user_id: uuid.UUID | None = None,
) -> Tree:
    """Add a tree with the factory; `active` overrides the stored column, `tree_id` the id."""
    # The factory's reply rows lack `children_count`, which breaks its multi-row insert:
    # add the root with it, and the replies here.
    new_id = await add_tree(conn, replace(spec, replies=0), user_id=user_id)
    if tree_id is not None:
        # The factory picks random ids: move the root and the state row to the one wanted.
        mts = message_tree_state
        row = (await conn.execute(select(mts).where(mts.c.message_tree_id == new_id))).one()
        await conn.execute(mts.delete().where(mts.c.message_tree_id == new_id))
        await conn.execute(
            update(message)
            .where(message.c.id == new_id)
            .values(id=tree_id, message_tree_id=tree_id)
        )
        await conn.execute(mts.insert().values({**row._mapping, "message_tree_id": tree_id}))
        new_id = tree_id
    await add_replies(conn, new_id, spec.replies, lang=spec.lang, user_id=user_id)
    stored_active = is_active(spec.state) if active is None else active
    if stored_active != is_active(spec.state):
        await conn.execute(
            update(message_tree_state)
            .where(message_tree_state.c.message_tree_id == new_id)
            .values(active=stored_active)
        )
    return Tree(
        id=new_id,
        state=spec.state,
        lang=spec.lang,
        origin=spec.origin,
        won=spec.won_prompt_lottery_date,
        active=stored_active,
        messages=1 + spec.replies,
    )


async def add_replies(
    conn: AsyncConnection,
    tree_id: uuid.UUID,
    n: int,
    *,
    lang: str = "en",
    user_id: uuid.UUID | None = None,
    deleted: bool = False,
) -> None:
    """`n` accepted (or deleted) replies to the root of a tree."""
    if n == 0:
        return
    rows = [
        {
            "id": uuid.uuid4(),
            "parent_id": tree_id,
            "message_tree_id": tree_id,
            "user_id": user_id,
            "role": "assistant",
            "payload_type": "MessagePayload",
            "payload": payload(f"Reply {i}."),
            "lang": lang,
            "depth": 1,
            "review_count": 3,
            "review_result": True,
            "deleted": deleted,
        }
        for i in range(n)
    ]
    await conn.execute(message.insert(), rows)


async def seed(engine: AsyncEngine, n: int = 40) -> list[Tree]:
    """`n` varied trees: every state, several languages, origins and (shared) lottery dates.

    A few trees store an `active` that disagrees with their state (as an imported database
    may), so filters and counts on `active` are seen to read the column.
    """
    states = list(State)
    trees: list[Tree] = []
    async with engine.begin() as conn:
        for i in range(n):
            spec = TreeSpec(
                state=states[i % len(states)],
                lang=LANGS[i % len(LANGS)],
                origin=ORIGINS[(i // 2) % len(ORIGINS)],
                won_prompt_lottery_date=WON_DATES[i % len(WON_DATES)],
                replies=i % 3,
            )
            active = (not is_active(spec.state)) if i % 11 == 5 else None
            trees.append(await insert_tree(conn, spec, active=active))
    return trees


# --- the Python model of filters and orders -------------------------------------------------


def matches(tree: Tree, f: dict[str, Any] | None) -> bool:
    """Whether `tree` passes a filter given with Python values (State, datetime, ...)."""
    if f is None:
        return True
    if f.get("states") is not None and tree.state not in f["states"]:
        return False
    if f.get("langs") is not None and tree.lang not in f["langs"]:
        return False
    if f.get("active") is not None and tree.active is not f["active"]:
        return False
    if f.get("origin") is not None and tree.origin != f["origin"]:
        return False
    after, before = f.get("wonLotteryAfter"), f.get("wonLotteryBefore")
    if after is not None and (tree.won is None or not tree.won > after):
        return False
    return before is None or (tree.won is not None and tree.won < before)


def filter_variable(f: dict[str, Any] | None) -> dict[str, Any] | None:
    """The filter as a GraphQL variable (enum names, ISO 8601 strings)."""
    if f is None:
        return None
    out: dict[str, Any] = {}
    for key, value in f.items():
        if key == "states" and value is not None:
            out[key] = [s.name for s in value]
        elif isinstance(value, datetime):
            out[key] = value.isoformat()
        else:
            out[key] = value
    return out


def ordered(trees: Sequence[Tree], order: str) -> list[Tree]:
    """`trees` in an API order: dates with nulls last, ids breaking ties."""
    if order == "MESSAGE_TREE_ID_ASC":
        return sorted(trees, key=lambda t: t.id)
    if order == "MESSAGE_TREE_ID_DESC":
        return sorted(trees, key=lambda t: t.id, reverse=True)
    descending = order == "WON_LOTTERY_DATE_DESC"
    dated = sorted(
        (t for t in trees if t.won is not None),
        key=lambda t: (t.won, t.id),
        reverse=descending,
    )
    undated = sorted((t for t in trees if t.won is None), key=lambda t: t.id, reverse=descending)
    return dated + undated


def ids(trees: Sequence[Tree]) -> list[str]:
    return [str(t.id) for t in trees]


# --- fetching pages -------------------------------------------------------------------------

PAGE_QUERY = """
query Page($filter: MessageTreeStateFilter, $orderBy: MessageTreeStateOrder,
           $first: Int, $after: String) {
  messageTreeStates(filter: $filter, orderBy: $orderBy, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { messageTreeId wonPromptLotteryDate } }
    nodes { messageTreeId }
  }
}
"""


async def fetch_page(
    client: httpx.AsyncClient,
    *,
    order: str | None = None,
    f: dict[str, Any] | None = None,
    first: int | None = None,
    after: str | None = None,
) -> dict[str, Any]:
    variables: dict[str, Any] = {"filter": filter_variable(f), "first": first, "after": after}
    if order is not None:
        variables["orderBy"] = order
    page: dict[str, Any] = (await data(client, PAGE_QUERY, variables))["messageTreeStates"]
    return page


def check_page(page: dict[str, Any], *, first: int, after: str | None, total: int) -> list[str]:
    """The invariants of every page; returns its tree ids."""
    edges, info = page["edges"], page["pageInfo"]
    page_ids = [e["node"]["messageTreeId"] for e in edges]
    assert page["totalCount"] == total
    assert [n["messageTreeId"] for n in page["nodes"]] == page_ids
    assert len(edges) <= first
    if info["hasNextPage"]:
        assert len(edges) == first
    assert info["hasPreviousPage"] is (after is not None)
    assert info["startCursor"] == (edges[0]["cursor"] if edges else None)
    assert info["endCursor"] == (edges[-1]["cursor"] if edges else None)
    assert len({e["cursor"] for e in edges}) == len(edges)
    return page_ids


async def fetch_all(
    client: httpx.AsyncClient, *, order: str, f: dict[str, Any] | None, first: int, total: int
) -> list[str]:
    """Every page in turn; checks each page's invariants and returns all ids in order."""
    seen: list[str] = []
    after: str | None = None
    for _ in range(total // first + 2):
        page = await fetch_page(client, order=order, f=f, first=first, after=after)
        seen += check_page(page, first=first, after=after, total=total)
        if not page["pageInfo"]["hasNextPage"]:
            return seen
        after = page["pageInfo"]["endCursor"]
    raise AssertionError(f"pagination did not end: {len(seen)} rows of {total}")


# --- counting statements --------------------------------------------------------------------


@asynccontextmanager
async def count_statements(app: Starlette) -> AsyncIterator[list[str]]:
    """The SQL statements the app's engine runs inside the block.

    Those sent through SQLAlchemy, and on PostgreSQL also those sent to asyncpg directly
    (`db.pg_reads`), seen by a query logger on every connection lent meanwhile.
    """
    statements: list[str] = []
    sync_engine = app.state.engine.sync_engine
    logged: list[Any] = []

    def record(statement: str) -> None:
        # Transaction control (SQLite's explicit BEGIN) is not a query.
        if statement.split(None, 1)[0].upper() not in {"BEGIN", "COMMIT", "ROLLBACK"}:
            statements.append(statement)

    def listener(*args: Any) -> None:
        record(str(args[2]))

    def driver_logger(query: Any) -> None:
        record(query.query)

    def on_checkout(dbapi_connection: Any, *_args: Any) -> None:
        driver = dbapi_connection.driver_connection
        if hasattr(driver, "add_query_logger"):
            driver.add_query_logger(driver_logger)
            logged.append(driver)

    event.listen(sync_engine, "before_cursor_execute", listener)
    event.listen(sync_engine, "checkout", on_checkout)
    try:
        yield statements
        # asyncpg calls its query loggers soon after a statement, not at once.
        await asyncio.sleep(0)
    finally:
        event.remove(sync_engine, "before_cursor_execute", listener)
        event.remove(sync_engine, "checkout", on_checkout)
        for driver in logged:
            driver.remove_query_logger(driver_logger)
