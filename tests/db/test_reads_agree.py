"""On PostgreSQL the hot reads run the statements of `db.trees` and `db.messages` twice over:
through SQLAlchemy (`CoreReads`) and as the SQL SQLAlchemy compiled for asyncpg (`PgReads`).
Generated filters, orders, cursors and column choices go through both; the answers must be
equal, and must match what the test data says they are."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from db import trees
from db.pg_reads import PgReads
from db.reads import CoreReads, Reads
from db.session import RequestConnection
from domain.states import State
from domain.values import CountDimension, Message, SortKey, TreeFilter, TreeOrder
from tests.api.support import LANGS, ORIGINS, WON_DATES, Tree, seed
from tests.databases import migrated_engine, postgres_database

RUNS = 150


@pytest.fixture
async def pg_engine() -> AsyncIterator[AsyncEngine]:
    """A PostgreSQL database of its own (SQLite has one way to read: `CoreReads`)."""
    async with postgres_database("treegate_reads") as url, migrated_engine(url) as engine:
        yield engine


@pytest.fixture
async def both(pg_engine: AsyncEngine) -> AsyncIterator[tuple[Reads, Reads]]:
    """`CoreReads` on an SQLAlchemy connection and `PgReads` on a raw asyncpg one."""
    connection = RequestConnection(pg_engine)
    async with pg_engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        async with connection.reads() as pg:
            assert isinstance(pg, PgReads)
            yield CoreReads(conn), pg
    await connection.close()


def a_filter(rng: random.Random) -> TreeFilter | None:
    if rng.random() < 0.2:
        return None
    dates = [d for d in WON_DATES if d is not None]

    def maybe(value: Any) -> Any:
        return value if rng.random() < 0.4 else None

    return TreeFilter(
        states=maybe(tuple(rng.sample(list(State), rng.randint(0, 4)))),
        langs=maybe(tuple(rng.sample([*LANGS, "zz"], rng.randint(0, 3)))),
        active=maybe(rng.random() < 0.5),
        origin=maybe(rng.choice([o for o in ORIGINS if o is not None])),
        won_lottery_after=maybe(rng.choice(dates) - timedelta(seconds=rng.choice([0, 1]))),
        won_lottery_before=maybe(rng.choice(dates) + timedelta(seconds=rng.choice([0, 1]))),
    )


def a_cursor(rng: random.Random, seeded: list[Tree]) -> SortKey | None:
    if rng.random() < 0.3:
        return None
    tree = rng.choice(seeded)
    return SortKey(tree.won, tree.id)


async def test_generated_reads_answer_the_same_through_core_and_asyncpg(
    both: tuple[Reads, Reads], pg_engine: AsyncEngine
) -> None:
    seeded = await seed(pg_engine, 45)
    core, pg = both
    rng = random.Random(20261206)
    nonempty = 0
    for _ in range(RUNS):
        tree_filter = a_filter(rng)
        order = rng.choice(list(TreeOrder))
        limit = rng.randint(1, 50)
        after = a_cursor(rng, seeded)
        case = (tree_filter, order, limit, after)
        page = await core.list_trees(tree_filter, order, limit, after)
        assert await pg.list_trees(tree_filter, order, limit, after) == page, case
        nonempty += bool(page)
        assert await pg.count_trees(tree_filter) == await core.count_trees(tree_filter), case
        dimensions = rng.sample(list(CountDimension), rng.randint(0, 3))
        counted = await core.count_by(dimensions, tree_filter)
        assert await pg.count_by(dimensions, tree_filter) == counted, (case, dimensions)
        assert sum(c.count for c in counted) == await core.count_trees(tree_filter)
    # The generator is not degenerate: most filters find trees.
    assert nonempty > RUNS // 2


async def test_trees_and_root_messages_by_id_answer_the_same(
    both: tuple[Reads, Reads], pg_engine: AsyncEngine
) -> None:
    seeded = await seed(pg_engine, 12)
    core, pg = both
    ids = [t.id for t in seeded]
    for tree_id in ids:
        tree = await core.get_tree(tree_id)
        assert tree is not None
        assert tree.state is seeded[ids.index(tree_id)].state
        assert await pg.get_tree(tree_id) == tree
    assert await pg.get_trees(ids[:5]) == await core.get_trees(ids[:5])
    assert await pg.root_messages(ids) == await core.root_messages(ids)
    columns = list(Message._fields)
    rng = random.Random(7)
    for _ in range(20):
        chosen = rng.sample(columns, rng.randint(1, len(columns)))
        assert await pg.root_message_columns(ids, chosen) == await core.root_message_columns(
            ids, chosen
        ), chosen


def test_the_asyncpg_sql_is_the_compiled_core_statement() -> None:
    """No hand-written SQL: what asyncpg runs is the Core statement's own compilation."""
    from db.statements import compiled

    query = trees.page_query(
        TreeFilter(states=(State.GROWING,), langs=("en",)),
        TreeOrder.MESSAGE_TREE_ID_ASC,
        10,
        pg=True,
    )
    sql = compiled(query.statement)
    assert sql.names == ("states", "langs", "limit")
    assert "ANY ($1" in sql.sql
    assert "ANY ($2" in sql.sql
    assert sql.sql.rstrip().endswith("LIMIT $3")
    # Built once per shape: the same statement object for other values of the same shape.
    again = trees.page_query(
        TreeFilter(states=(State.RANKING, State.GROWING), langs=("de",)),
        TreeOrder.MESSAGE_TREE_ID_ASC,
        50,
        pg=True,
    )
    assert again.statement is query.statement
