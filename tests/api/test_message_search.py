"""Full-text search on both databases: the same web-search syntax finds the same messages, in
the order asked, with the same cursors; text that cannot be a search is BAD_USER_INPUT, never a
500; and the index follows inserts, edits and deletes made straight in the database."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncEngine

from db.tables import message
from tests.factories import payload
from tests.graphql import data, error_codes, gql
from tests.message_trees import Tree, insert_known

SEARCH = """query($filter: MessageFilter, $order: MessageOrder, $first: Int, $after: String) {
  messages(filter: $filter, orderBy: $order, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    nodes { id text }
  }
}"""


@pytest.fixture
async def known(engine: AsyncEngine) -> tuple[Tree, Tree]:
    return await insert_known(engine)


async def search(
    client: httpx.AsyncClient, text: str, order: str = "CREATED_DATE_DESC", **filter_: Any
) -> list[str]:
    variables = {"filter": {"search": text, **filter_}, "order": order, "first": 100}
    result = (await data(client, SEARCH, variables))["messages"]
    assert result["totalCount"] == len(result["nodes"])
    return [node["id"] for node in result["nodes"]]


@pytest.mark.parametrize(
    ("text", "filter_", "expected"),
    [
        # Case-insensitive words, newest first (the German root is the newest).
        ("python", {}, ["de:root", "en:a_tie_early", "en:root"]),
        ("PYTHON", {"langs": ["de"]}, ["de:root"]),
        # A phrase, its words in order (a stop word inside it still counts as a position).
        ('"sort in reverse"', {}, ["en:a_deep", "en:p_follow"]),
        # Exclusion.
        ("python -stable", {}, ["de:root", "en:root"]),
        # Either part; the deleted message only when deleted ones are asked for.
        ("watches or bubble", {}, ["en:p_spam"]),
        ("watches OR bubble", {"includeDeleted": True}, ["en:p_spam", "en:a_deleted"]),
        # Punctuation is ignored; plural and singular meet through stemming on both databases.
        ("watch!", {}, ["en:p_spam"]),
        ("list python", {"onlyRoots": True, "langs": ["en"]}, ["en:root"]),
        ("nothing-like-this-anywhere", {}, []),
    ],
)
async def test_search_finds_the_same_messages_on_both_databases(
    client: httpx.AsyncClient,
    known: tuple[Tree, Tree],
    text: str,
    filter_: dict[str, Any],
    expected: list[str],
) -> None:
    english, german = known
    names = {str(v): f"en:{k}" for k, v in english.ids.items()}
    names |= {str(v): f"de:{k}" for k, v in german.ids.items()}
    assert [names[i] for i in await search(client, text, **filter_)] == expected


async def test_search_results_paginate_with_the_same_cursors(
    client: httpx.AsyncClient, known: tuple[Tree, Tree]
) -> None:
    everything = await search(client, "sort or sorted or python", order="CREATED_DATE_ASC")
    assert len(everything) >= 5
    seen: list[str] = []
    after = None
    for _ in range(20):
        variables = {
            "filter": {"search": "sort or sorted or python"},
            "order": "CREATED_DATE_ASC",
            "first": 2,
            "after": after,
        }
        page = (await data(client, SEARCH, variables))["messages"]
        seen += [n["id"] for n in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == everything


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "-python",
        "-python or -sort",
        "!!! ???",
        '""',
        "'",
        "\\",
        "x" * 257,
        "nul\x00byte",
    ],
)
async def test_text_that_is_not_a_search_is_bad_user_input(
    client: httpx.AsyncClient, known: tuple[Tree, Tree], text: str
) -> None:
    body = await gql(client, SEARCH, {"filter": {"search": text}})
    assert error_codes(body) == ["BAD_USER_INPUT"], body
    assert body["errors"][0]["extensions"]["argument"] == "filter.search"
    assert body["data"] is None


OTHER_SYNTAX = (
    '"unclosed', "a AND", "NEAR(a b)", "col:python", "pyth*", "(python", "a^b", "python OR",
    "or python", "NOT python", "{x}", "python -", "ünïcödé sörted",
)  # fmt: skip


@pytest.mark.parametrize("text", OTHER_SYNTAX)
async def test_operators_of_either_engine_are_only_words(
    client: httpx.AsyncClient, known: tuple[Tree, Tree], text: str
) -> None:
    # FTS5 and tsquery syntax in a client's text is never read as such: each answers a list.
    body = await gql(client, SEARCH, {"filter": {"search": text}})
    assert "errors" not in body, body
    assert isinstance(body["data"]["messages"]["nodes"], list)


async def test_the_index_follows_writes_made_in_the_database(
    engine: AsyncEngine, client: httpx.AsyncClient, known: tuple[Tree, Tree]
) -> None:
    english, _ = known
    assert await search(client, "kangaroo") == []
    assert english["a_tie_late"] in await search(client, "new")
    async with engine.begin() as conn:
        await conn.execute(
            update(message)
            .where(message.c.id == english.ids["a_tie_late"])
            .values(payload=payload("A kangaroo sorts nothing."))
        )
    assert await search(client, "kangaroo") == [english["a_tie_late"]]
    assert english["a_tie_late"] not in await search(client, "new")
    async with engine.begin() as conn:
        await conn.execute(delete(message).where(message.c.id == english.ids["a_tie_late"]))
    assert await search(client, "kangaroo") == []
