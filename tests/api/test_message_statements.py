"""The messages API runs a bounded number of statements: a page of trees with their messages
and every nested message field costs the same statements for 1 tree as for 100. Trees larger
than the most a request reads answer TREE_TOO_LARGE, and the cost limit counts the lists."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from gql.settings import Settings
from schema.limits import COST_LIMIT
from tests.api.support import count_statements
from tests.graphql import client_for, data, error_codes, gql
from tests.message_trees import KNOWN, Row, insert

NESTED = """query($first: Int) {
  messageTreeStates(first: $first) {
    nodes {
      messageTreeId
      messages {
        id text childrenCount
        parent { id }
        children { id }
        treeState { state }
        emojis { emoji count }
        conversation { id }
        descendants { id }
      }
      longestConversation { id }
      messageWithMostChildren { id }
    }
  }
}"""
PAGE = """query($first: Int) {
  messages(first: $first, orderBy: CREATED_DATE_ASC) {
    nodes { id parent { id } children { id } treeState { state } emojis { emoji } }
  }
}"""
MAX_TREE = 12


@pytest.fixture
def settings(database_url: URL) -> Settings:
    return Settings(
        database_url=database_url.render_as_string(hide_password=False),
        count_cache_s=0,
        response_cache_s=0,
        max_cost=10_000_000,
        max_tree_messages=MAX_TREE,
    )


async def seed_trees(engine: AsyncEngine, n: int) -> None:
    async with engine.begin() as conn:
        for _ in range(n):
            await insert(conn, KNOWN)


async def statements_of(
    client: httpx.AsyncClient, app: Starlette, query: str, first: int
) -> tuple[dict[str, object], int]:
    async with count_statements(app) as statements:
        result = await data(client, query, {"first": first})
    return result, len(statements)


async def test_nested_message_fields_do_not_grow_with_the_page(
    client: httpx.AsyncClient, app: Starlette, engine: AsyncEngine
) -> None:
    await seed_trees(engine, 100)
    await data(client, NESTED, {"first": 1})  # the pool's first connection is not the page's
    counts = {}
    for first in (100, 10, 1):
        result, counts[first] = await statements_of(client, app, NESTED, first)
        nodes = result["messageTreeStates"]["nodes"]  # type: ignore[index]
        assert len(nodes) == first
        assert all(len(node["messages"]) == 9 for node in nodes)
        assert all(len(node["longestConversation"]) == 4 for node in nodes)
    # The page; the trees' messages; parents; children; counts; tree states; emojis.
    assert counts[100] == counts[10] == counts[1], counts
    assert counts[100] <= 7, counts

    page = {}
    for first in (100, 10):
        _, page[first] = await statements_of(client, app, PAGE, first)
    assert page[100] == page[10] <= 5, page


def with_replies(n: int) -> tuple[Row, ...]:
    extra = (Row(f"extra-{i}", "root", "assistant", 30 + i, f"Extra reply {i}.") for i in range(n))
    return (*KNOWN, *extra)


TREE_QUERY = """query($id: UUID!) {
  messageTreeState(messageTreeId: $id) { state messages { id } }
  message(id: $id) { id descendants { id } }
}"""


async def test_a_tree_larger_than_the_limit_is_an_error_not_a_partial_list(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    async with engine.begin() as conn:
        full = await insert(conn, with_replies(MAX_TREE - len(KNOWN)))
        over = await insert(conn, with_replies(MAX_TREE - len(KNOWN) + 1))
    found = await data(client, TREE_QUERY, {"id": str(full.id)})
    assert len(found["messageTreeState"]["messages"]) == MAX_TREE - 1  # one is deleted
    assert len(found["message"]["descendants"]) == MAX_TREE - 1

    body = await gql(client, TREE_QUERY, {"id": str(over.id)})
    assert error_codes(body) == ["TREE_TOO_LARGE", "TREE_TOO_LARGE"], body
    assert body["data"] == {"messageTreeState": None, "message": None}
    error = body["errors"][0]
    assert error["extensions"]["limit"] == MAX_TREE
    assert f"more than {MAX_TREE} messages" in error["message"]
    # Fields that do not read the whole tree still answer.
    shallow = await data(client, "query($id: UUID!) { message(id: $id) { childrenCount } }",
                         {"id": str(over.id)})  # fmt: skip
    assert shallow == {"message": {"childrenCount": MAX_TREE - len(KNOWN) + 1 + 4}}


@pytest.fixture
async def default_client(
    database_url: URL, engine: AsyncEngine
) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(database_url=database_url.render_as_string(hide_password=False))
    async with client_for(settings) as client:
        yield client


async def test_the_cost_limit_counts_a_trees_messages(default_client: httpx.AsyncClient) -> None:
    # 100 trees of up to 1,000 messages each (the default most a request reads of one tree).
    body = await gql(
        default_client, "{ messageTreeStates(first: 100) { nodes { messages { id } } } }"
    )
    assert error_codes(body) == [COST_LIMIT], body
    # One tree's messages with their children is within it.
    one = (
        "query($id: UUID!) { messageTreeState(messageTreeId: $id) "
        "{ messages { id children { id } } } }"
    )
    body = await gql(default_client, one, {"id": "00000000-0000-4000-8000-000000000000"})
    assert body == {"data": {"messageTreeState": None}}
