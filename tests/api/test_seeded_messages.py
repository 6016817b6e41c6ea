"""The messages API over the seeded demo trees, on both databases: each tree's messages,
longest conversation and busiest message, recomputed from the seeder's own rows."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from db.seed import generate, seed
from tests.graphql import data

TREES = 60
# A literal `first`: the cost limit counts each tree's lists as up to 1,000 messages.
QUERY = """query($after: String) {
  messageTreeStates(first: 5, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes {
      messageTreeId
      messages(includeDeleted: true) { id }
      live: messages { id }
      longestConversation { id }
    }
  }
}"""

Row = dict[str, Any]


def _key(row: Row) -> tuple[bool, int, Any, Any]:
    rank = row["rank"]
    return (rank is None, 0 if rank is None else rank, row["created_date"], row["id"])


def depth_first(children: dict[Any, list[Row]], row: Row, keep: Any) -> Iterator[Row]:
    if not keep(row):
        return
    yield row
    for child in sorted(children.get(row["id"], []), key=_key):
        yield from depth_first(children, child, keep)


async def test_seeded_trees_read_back_as_the_seeder_wrote_them(
    engine: AsyncEngine, client: httpx.AsyncClient
) -> None:
    await seed(engine, TREES, seed=5)
    rows = [row for batch in generate(TREES, seed=5) for row in batch.messages]
    by_id = {str(row["id"]): row for row in rows}
    children: dict[Any, list[Row]] = {}
    for row in rows:
        if row["parent_id"] is not None:
            children.setdefault(row["parent_id"], []).append(row)

    seen = 0
    after = None
    while True:
        page = (await data(client, QUERY, {"after": after}))["messageTreeStates"]
        for node in page["nodes"]:
            root = by_id[node["messageTreeId"]]
            everything = [str(r["id"]) for r in depth_first(children, root, lambda r: True)]
            assert [m["id"] for m in node["messages"]] == everything
            live = [str(r["id"]) for r in depth_first(children, root, lambda r: not r["deleted"])]
            assert [m["id"] for m in node["live"]] == live
            accepted = list(
                depth_first(
                    children, root, lambda r: not r["deleted"] and r["review_result"] is True
                )
            )
            longest = node["longestConversation"]
            if accepted:
                assert len(longest) == 1 + max(r["depth"] for r in accepted) - root["depth"]
                assert longest[0]["id"] == str(root["id"])
            else:
                assert longest == []
            seen += 1
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == TREES
