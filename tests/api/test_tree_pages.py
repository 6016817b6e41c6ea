"""`messageTreeStates`: orders, keyset paging, pageInfo and totalCount."""

from __future__ import annotations

import uuid
from datetime import UTC, timedelta

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.states import State
from tests.api.support import (
    D0,
    ORDERS,
    Tree,
    check_page,
    fetch_all,
    fetch_page,
    ids,
    insert_tree,
    ordered,
    seed,
)
from tests.factories import TreeSpec
from tests.graphql import data


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("first", [1, 3, 7, 100])
async def test_paging_yields_the_sorted_list(
    client: httpx.AsyncClient, engine: AsyncEngine, order: str, first: int
) -> None:
    trees = await seed(engine, 23)
    seen = await fetch_all(client, order=order, f=None, first=first, total=len(trees))
    assert seen == ids(ordered(trees, order))


@pytest.mark.parametrize("order", ["WON_LOTTERY_DATE_ASC", "WON_LOTTERY_DATE_DESC"])
async def test_shared_dates_nulls_last_and_id_tie_break(
    client: httpx.AsyncClient, engine: AsyncEngine, order: str
) -> None:
    async with engine.begin() as conn:
        same = [await insert_tree(conn, TreeSpec(won_prompt_lottery_date=D0)) for _ in range(4)]
        undated = [await insert_tree(conn, TreeSpec()) for _ in range(3)]
        early = await insert_tree(conn, TreeSpec(won_prompt_lottery_date=D0 - timedelta(hours=1)))
        late = await insert_tree(
            conn, TreeSpec(won_prompt_lottery_date=D0 + timedelta(microseconds=1))
        )
    # Pages of two split the group of shared dates: the cursor must break the tie by id.
    seen = await fetch_all(client, order=order, f=None, first=2, total=9)
    by_id = sorted(same, key=lambda t: t.id)
    nulls = sorted(undated, key=lambda t: t.id)
    if order == "WON_LOTTERY_DATE_ASC":
        expected: list[Tree] = [early, *by_id, late, *nulls]
    else:
        expected = [late, *reversed(by_id), early, *reversed(nulls)]
    assert seen == ids(expected)


async def test_default_order_and_page_size(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    trees = await seed(engine, 53)
    expected = ids(ordered(trees, "MESSAGE_TREE_ID_ASC"))
    for first in (None, 50):
        page = await fetch_page(client, first=first)  # orderBy omitted: the default
        assert check_page(page, first=50, after=None, total=53) == expected[:50]
        assert page["pageInfo"]["hasNextPage"] is True
    omitted = await data(client, "{ messageTreeStates { nodes { messageTreeId } } }")
    assert [n["messageTreeId"] for n in omitted["messageTreeStates"]["nodes"]] == expected[:50]
    explicit_null = await fetch_page(client, order=None, first=None)
    assert [n["messageTreeId"] for n in explicit_null["nodes"]] == expected[:50]


async def test_page_info_at_the_edges(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    trees = await seed(engine, 6)
    expected = ids(ordered(trees, "MESSAGE_TREE_ID_ASC"))

    exact = await fetch_page(client, first=6)
    assert check_page(exact, first=6, after=None, total=6) == expected
    assert exact["pageInfo"]["hasNextPage"] is False

    one_short = await fetch_page(client, first=5)
    assert check_page(one_short, first=5, after=None, total=6) == expected[:5]
    assert one_short["pageInfo"]["hasNextPage"] is True

    last = await fetch_page(client, first=5, after=one_short["pageInfo"]["endCursor"])
    assert check_page(last, first=5, after="given", total=6) == expected[5:]
    assert last["pageInfo"]["hasNextPage"] is False

    # After the last row: an empty page, still counting every tree.
    beyond = await fetch_page(client, first=5, after=last["pageInfo"]["endCursor"])
    assert check_page(beyond, first=5, after="given", total=6) == []
    assert beyond["pageInfo"] == {
        "hasNextPage": False,
        "hasPreviousPage": True,
        "startCursor": None,
        "endCursor": None,
    }


async def test_empty_table(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    page = await fetch_page(client, first=10)
    assert check_page(page, first=10, after=None, total=0) == []
    assert page["pageInfo"]["hasNextPage"] is False


async def test_edge_cursors_resume_after_their_node(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    trees = await seed(engine, 12)
    for order in ORDERS:
        expected = ids(ordered(trees, order))
        page = await fetch_page(client, order=order, first=12)
        assert [e["node"]["messageTreeId"] for e in page["edges"]] == expected
        for i, edge in enumerate(page["edges"]):
            rest = await fetch_page(client, order=order, first=12, after=edge["cursor"])
            assert [n["messageTreeId"] for n in rest["nodes"]] == expected[i + 1 :], (order, i)


def _neighbours(tree: Tree) -> tuple[uuid.UUID, uuid.UUID]:
    return uuid.UUID(int=tree.id.int - 1), uuid.UUID(int=tree.id.int + 1)


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("cursor_on", ["dated", "undated"])
async def test_rows_inserted_between_pages(
    client: httpx.AsyncClient, engine: AsyncEngine, order: str, cursor_on: str
) -> None:
    async with engine.begin() as conn:
        before = [
            await insert_tree(conn, TreeSpec(won_prompt_lottery_date=D0 + timedelta(days=i % 3)))
            for i in range(8)
        ]
        before += [await insert_tree(conn, TreeSpec()) for _ in range(4)]
    old = ordered(before, order)
    # The first page ends on a row with a lottery date, or on one without (in date orders,
    # once every dated row is behind).
    want_dated = cursor_on == "dated"
    first = 1 + next(i for i, t in enumerate(old) if i >= 2 and (t.won is not None) is want_dated)
    page1 = await fetch_page(client, order=order, first=first)
    assert check_page(page1, first=first, after=None, total=12) == ids(old[:first])
    cursor_tree = old[first - 1]

    # New rows on both sides of the cursor: adjacent ids, the same date, nearby dates.
    low, high = _neighbours(cursor_tree)
    async with engine.begin() as conn:
        added = [
            await insert_tree(
                conn, TreeSpec(won_prompt_lottery_date=cursor_tree.won), tree_id=tree_id
            )
            for tree_id in (low, high)
        ]
        added.append(await insert_tree(conn, TreeSpec()))
        if cursor_tree.won is not None:
            for delta in (timedelta(microseconds=-1), timedelta(microseconds=1)):
                spec = TreeSpec(won_prompt_lottery_date=cursor_tree.won + delta)
                added.append(await insert_tree(conn, spec))
    now = ordered(before + added, order)
    position = now.index(cursor_tree)
    rest = await fetch_all_after(client, order, page1["pageInfo"]["endCursor"], len(now))

    assert rest == ids(now[position + 1 :])
    seen = ids(old[:first]) + rest
    assert len(seen) == len(set(seen)), "a row was returned twice"
    assert set(ids(before)) <= set(seen), "a row that existed before was skipped"
    added_after = {str(t.id) for t in now[position + 1 :]} & set(ids(added))
    assert added_after, "the scenario must place new rows after the cursor"
    assert added_after <= set(rest)
    assert not (set(ids(added)) - added_after) & set(rest)


async def fetch_all_after(
    client: httpx.AsyncClient, order: str, after: str, total: int
) -> list[str]:
    seen: list[str] = []
    cursor: str | None = after
    while True:
        page = await fetch_page(client, order=order, first=3, after=cursor)
        seen += check_page(page, first=3, after=cursor, total=total)
        if not page["pageInfo"]["hasNextPage"]:
            return seen
        cursor = page["pageInfo"]["endCursor"]
        assert len(seen) <= total


async def test_nodes_match_stored_rows_in_every_order(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    trees = await seed(engine, 15)
    by_id = {str(t.id): t for t in trees}
    query = """query($o: MessageTreeStateOrder) { messageTreeStates(orderBy: $o, first: 15) {
      edges { node { messageTreeId state lang origin active wonPromptLotteryDate } } } }"""
    for order in ORDERS:
        edges = (await data(client, query, {"o": order}))["messageTreeStates"]["edges"]
        for edge in edges:
            node = edge["node"]
            tree = by_id[node["messageTreeId"]]
            assert State[node["state"]] is tree.state
            assert (node["lang"], node["origin"], node["active"]) == (
                tree.lang,
                tree.origin,
                tree.active,
            )
            expected_won = None if tree.won is None else tree.won.astimezone(UTC).isoformat()
            assert node["wonPromptLotteryDate"] == expected_won
