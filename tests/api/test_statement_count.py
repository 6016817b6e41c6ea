"""How many SQL statements a request runs: batched, never one per tree."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from tests.api.support import Tree, count_statements, ids, ordered, seed
from tests.graphql import data

PAGE = """query($first: Int, $orderBy: MessageTreeStateOrder) {
  messageTreeStates(first: $first, orderBy: $orderBy) {
    totalCount
    pageInfo { hasNextPage endCursor }
    nodes {
      messageTreeId state isTerminal allowedTransitions messageCount
      rootMessage { id messageTreeId text role lang createdDate reviewResult deleted }
    }
  }
}"""
COUNTS = """query($g: [CountDimension!]!) {
  treeStateCounts(groupBy: $g, filter: {active: true}) { state lang active count } }"""


async def warm_up(client: httpx.AsyncClient) -> None:
    """Open a pooled connection first: the engine's one-time setup is not the request's.

    That includes asyncpg's introspection of the types a connection first binds (the arrays
    of `db.pg_reads`), three statements once per connection.
    """
    await data(client, "{ treeStateCounts { count } }")
    await data(client, PAGE, {"first": 1, "orderBy": "MESSAGE_TREE_ID_ASC"})


async def run_counted(
    client: httpx.AsyncClient, app: Starlette, query: str, variables: dict[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    async with count_statements(app) as statements:
        result = await data(client, query, variables)
    return result, list(statements)


def check_nodes(nodes: list[dict[str, Any]], trees: list[Tree]) -> None:
    by_id = {str(t.id): t for t in trees}
    for node in nodes:
        tree = by_id[node["messageTreeId"]]
        assert node["messageCount"] == tree.messages
        root = node["rootMessage"]
        assert root["id"] == root["messageTreeId"] == node["messageTreeId"]
        assert root["text"].startswith("Prompt number")


async def test_page_statements_do_not_grow_with_the_page(
    client: httpx.AsyncClient, app: Starlette, engine: AsyncEngine
) -> None:
    trees = await seed(engine, 120)
    await warm_up(client)
    expected = ids(ordered(trees, "WON_LOTTERY_DATE_DESC"))
    counts: dict[int, int] = {}
    for first in (100, 10, 1):
        result, statements = await run_counted(
            client, app, PAGE, {"first": first, "orderBy": "WON_LOTTERY_DATE_DESC"}
        )
        nodes = result["messageTreeStates"]["nodes"]
        assert [n["messageTreeId"] for n in nodes] == expected[:first]
        check_nodes(nodes, trees)
        counts[first] = len(statements)
    # The page, its total, the root messages and the message counts: one statement each.
    assert counts[100] == counts[10] == counts[1], counts
    assert counts[100] <= 4, counts


async def test_statements_without_nested_fields(
    client: httpx.AsyncClient, app: Starlette, engine: AsyncEngine
) -> None:
    await seed(engine, 30)
    await warm_up(client)
    _, statements = await run_counted(
        client, app, "{ messageTreeStates(first: 30) { nodes { messageTreeId state } } }", {}
    )
    assert len(statements) == 1, statements


async def test_trees_by_id_are_batched(
    client: httpx.AsyncClient, app: Starlette, engine: AsyncEngine
) -> None:
    trees = await seed(engine, 15)  # 15 aliases: the default TREEGATE_MAX_ALIASES
    await warm_up(client)
    fields = " ".join(
        f't{i}: messageTreeState(messageTreeId: "{t.id}") '
        "{ messageTreeId messageCount rootMessage { id messageTreeId text } }"
        for i, t in enumerate(trees)
    )
    result, statements = await run_counted(client, app, f"{{ {fields} }}", {})
    check_nodes([result[f"t{i}"] for i in range(len(trees))], trees)
    assert [result[f"t{i}"]["messageTreeId"] for i in range(len(trees))] == ids(trees)
    # Trees, root messages, message counts.
    assert len(statements) <= 3, statements


@pytest.mark.parametrize(
    "group_by", [[], ["STATE"], ["LANG"], ["ACTIVE"], ["STATE", "LANG", "ACTIVE"]]
)
async def test_counts_run_one_statement(
    client: httpx.AsyncClient, app: Starlette, engine: AsyncEngine, group_by: list[str]
) -> None:
    trees = await seed(engine, 25)
    await warm_up(client)
    result, statements = await run_counted(client, app, COUNTS, {"g": group_by})
    assert len(statements) == 1, statements
    assert sum(c["count"] for c in result["treeStateCounts"]) == sum(t.active for t in trees)


async def test_listener_is_removed(
    client: httpx.AsyncClient, app: Starlette, engine: AsyncEngine
) -> None:
    await warm_up(client)
    async with count_statements(app) as during:
        await data(client, "{ treeStateCounts { count } }")
    await warm_up(client)
    assert len(during) == 1
