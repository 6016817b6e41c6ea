"""Reading the transition log: per tree (newest first, batched) and as a polled feed."""

from __future__ import annotations

import asyncio
import base64
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from domain.states import State
from tests.api.support import count_statements
from tests.graphql import data, error_codes, gql
from tests.mutations.conftest import ApiKeys
from tests.mutations.support import TRANSITION, log_of, make_tree, mutate

S = State
WON = datetime(2023, 4, 1, 12, 0, tzinfo=UTC)
STATE = "query($id: UUID!) { messageTreeState(messageTreeId: $id) { state } }"
FIELDS = "sequence messageTreeId fromState toState operation actor reason at"
TREE = "query($id: UUID!%s) { messageTreeState(messageTreeId: $id) { transitions%s { %s } } }"
FEED = """query($after: String, $first: Int, $id: UUID) {
  transitionLog(after: $after, first: $first, messageTreeId: $id) {
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { sequence } }
    nodes { FIELDS }
  }
}""".replace("FIELDS", FIELDS)

NEXT = {S.RANKING: S.READY_FOR_SCORING, S.READY_FOR_SCORING: S.SCORING_FAILED}
NEXT[S.SCORING_FAILED] = S.RANKING  # round and round, without guards


async def move(client: httpx.AsyncClient, key: str, tree_id: uuid.UUID, steps: int) -> None:
    """`steps` transitions of a tree, around RANKING -> READY_FOR_SCORING -> SCORING_FAILED."""
    state = State[(await data(client, STATE, {"id": str(tree_id)}))["messageTreeState"]["state"]]
    for i in range(steps):
        state = NEXT[state]
        result = await mutate(
            client,
            TRANSITION,
            {"messageTreeId": str(tree_id), "to": state.name, "reason": f"step {i}"},
            key,
        )
        assert result["__typename"] == "TransitionApplied"


def as_nodes(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Log rows as the API renders them."""
    return [
        {
            "sequence": str(r["sequence"]),
            "messageTreeId": str(r["message_tree_id"]),
            "fromState": r["from_state"].upper(),
            "toState": r["to_state"].upper(),
            "operation": "TRANSITION_TREE",
            "actor": r["actor"],
            "reason": r["reason"],
            "at": r["at"].isoformat(),
        }
        for r in rows
    ]


async def feed(client: httpx.AsyncClient, **variables: Any) -> dict[str, Any]:
    page: dict[str, Any] = (await data(client, FEED, variables))["transitionLog"]
    assert [e["node"]["sequence"] for e in page["edges"]] == [n["sequence"] for n in page["nodes"]]
    return page


async def test_tree_transitions_newest_first(
    client: httpx.AsyncClient, engine: AsyncEngine, api_keys: ApiKeys
) -> None:
    tree_id = await make_tree(engine, S.RANKING, won=WON)
    quiet = await make_tree(engine, S.RANKING, won=WON)
    await move(client, api_keys.admin, tree_id, 5)
    newest_first = as_nodes(await log_of(engine, tree_id))[::-1]
    assert len(newest_first) == 5

    def query(first: str) -> str:
        return TREE % (", $first: Int" if first else "", first, FIELDS)

    everything = await data(client, query(""), {"id": str(tree_id)})  # default first: 20
    assert everything["messageTreeState"]["transitions"] == newest_first
    three = await data(client, query("(first: $first)"), {"id": str(tree_id), "first": 3})
    assert three["messageTreeState"]["transitions"] == newest_first[:3]
    none = await data(client, query("(first: $first)"), {"id": str(quiet), "first": 20})
    assert none["messageTreeState"]["transitions"] == []
    for bad in (0, -1, 101):
        answer = await gql(client, query("(first: $first)"), {"id": str(tree_id), "first": bad})
        assert error_codes(answer) == ["BAD_USER_INPUT"]


PAGE = """query($first: Int) { messageTreeStates(first: $first) {
  nodes { messageTreeId transitions(first: 2) { sequence toState } } } }"""


async def test_tree_transitions_are_batched(
    client: httpx.AsyncClient, app: Starlette, engine: AsyncEngine, api_keys: ApiKeys
) -> None:
    trees = [await make_tree(engine, S.RANKING, won=WON) for _ in range(8)]
    for i, tree_id in enumerate(trees):
        await move(client, api_keys.admin, tree_id, i % 4)
    expected = {}
    for tree_id in trees:
        rows = (await log_of(engine, tree_id))[::-1][:2]
        expected[str(tree_id)] = [
            {"sequence": str(r["sequence"]), "toState": r["to_state"].upper()} for r in rows
        ]
    await data(client, "{ treeStateCounts { count } }")  # the pool's first connection
    counts = {}
    for first in (8, 2):
        async with count_statements(app) as statements:
            nodes = (await data(client, PAGE, {"first": first}))["messageTreeStates"]["nodes"]
        assert len(nodes) == first
        for node in nodes:
            assert node["transitions"] == expected[node["messageTreeId"]]
        counts[first] = len(statements)
    assert counts[8] == counts[2], counts


async def test_feed_pages_and_polling(
    client: httpx.AsyncClient, engine: AsyncEngine, api_keys: ApiKeys
) -> None:
    assert (await feed(client))["pageInfo"] == {
        "hasNextPage": False,
        "hasPreviousPage": False,
        "startCursor": None,
        "endCursor": None,
    }
    a = await make_tree(engine, S.RANKING, won=WON)
    b = await make_tree(engine, S.RANKING, won=WON)
    await move(client, api_keys.admin, a, 3)
    await move(client, api_keys.operator, b, 2)
    await move(client, api_keys.admin, a, 2)
    everything = as_nodes(await log_of(engine))
    assert len(everything) == 7

    seen: list[dict[str, Any]] = []
    after = None
    for expected_size, more in ((3, True), (3, True), (1, False)):
        page = await feed(client, after=after, first=3)
        assert len(page["nodes"]) == expected_size
        info = page["pageInfo"]
        assert info["hasNextPage"] is more
        assert info["hasPreviousPage"] is (after is not None)
        assert info["startCursor"] == page["edges"][0]["cursor"]
        assert info["endCursor"] == page["edges"][-1]["cursor"]
        seen += page["nodes"]
        after = info["endCursor"]
    assert seen == everything  # oldest first, nothing skipped or repeated

    # A poller at the end gets an empty page that keeps its place ...
    empty = await feed(client, after=after, first=3)
    assert empty["nodes"] == []
    assert empty["pageInfo"]["endCursor"] == after
    assert empty["pageInfo"]["startCursor"] is None
    assert empty["pageInfo"]["hasNextPage"] is False
    # ... and the next poll from there returns exactly the new rows.
    await move(client, api_keys.admin, b, 1)
    fresh = await feed(client, after=empty["pageInfo"]["endCursor"])
    assert fresh["nodes"] == as_nodes(await log_of(engine))[7:]
    assert len(fresh["nodes"]) == 1


async def test_feed_of_one_tree(
    client: httpx.AsyncClient, engine: AsyncEngine, api_keys: ApiKeys
) -> None:
    a = await make_tree(engine, S.RANKING, won=WON)
    b = await make_tree(engine, S.RANKING, won=WON)
    for _ in range(2):
        await move(client, api_keys.admin, a, 2)
        await move(client, api_keys.admin, b, 2)
        await move(client, api_keys.admin, a, 1)
    only_a = as_nodes(await log_of(engine, a))
    page = await feed(client, id=str(a), first=50)
    assert page["nodes"] == only_a
    # Positions are global sequences: a cursor of the whole feed works on a tree's feed.
    whole = await feed(client, first=2)
    rest = await feed(client, id=str(a), after=whole["pageInfo"]["endCursor"])
    cut = int(whole["nodes"][-1]["sequence"])
    assert rest["nodes"] == [n for n in only_a if int(n["sequence"]) > cut]
    unknown = await feed(client, id=str(uuid.uuid4()))
    assert unknown["nodes"] == []


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    ["garbage!", "", b64("log:-1"), b64("log:abc"), b64("tree:5"), b64("log:1") + "A" * 80,
     b64("\xff"), "%%%"],
)  # fmt: skip
async def test_malformed_cursor(client: httpx.AsyncClient, cursor: str) -> None:
    answer = await gql(client, FEED, {"after": cursor})
    assert error_codes(answer) == ["BAD_USER_INPUT"]
    assert answer["errors"][0]["extensions"]["argument"] == "after"


async def test_a_tree_page_cursor_is_not_a_log_cursor(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await make_tree(engine, S.RANKING)
    await make_tree(engine, S.RANKING)
    trees = await data(client, "{ messageTreeStates(first: 1) { pageInfo { endCursor } } }")
    cursor = trees["messageTreeStates"]["pageInfo"]["endCursor"]
    assert error_codes(await gql(client, FEED, {"after": cursor})) == ["BAD_USER_INPUT"]


async def test_feed_first_bounds(
    client: httpx.AsyncClient, engine: AsyncEngine, api_keys: ApiKeys
) -> None:
    tree_id = await make_tree(engine, S.RANKING, won=WON)
    await move(client, api_keys.admin, tree_id, 3)
    for bad in (0, -1, 101):
        answer = await gql(client, FEED, {"first": bad})
        assert error_codes(answer) == ["BAD_USER_INPUT"]
        assert answer["errors"][0]["extensions"]["argument"] == "first"
    assert len((await feed(client, first=100))["nodes"]) == 3
    assert len((await feed(client, first=1))["nodes"]) == 1
    assert len((await feed(client, first=None))["nodes"]) == 3  # null: the default page size
    beyond = await feed(client, after=b64("log:1000000"))
    assert beyond["nodes"] == []
    assert beyond["pageInfo"]["endCursor"] == b64("log:1000000")


async def test_a_poller_misses_no_row_written_concurrently(
    client: httpx.AsyncClient, engine: AsyncEngine, api_keys: ApiKeys
) -> None:
    """Sequences follow commit order: polling "after the last row seen" while writers commit
    in any order still sees every row exactly once."""
    trees = [await make_tree(engine, S.RANKING, won=WON) for _ in range(8)]
    seen: list[str] = []
    done = asyncio.Event()

    async def poll() -> None:
        after = None
        while True:
            finished = done.is_set()
            page = await feed(client, after=after, first=5)
            seen.extend(n["sequence"] for n in page["nodes"])
            after = page["pageInfo"]["endCursor"]
            if finished and not page["pageInfo"]["hasNextPage"]:
                return
            await asyncio.sleep(0)

    async def write() -> None:
        await asyncio.gather(*(move(client, api_keys.admin, t, 3) for t in trees))
        done.set()

    await asyncio.gather(poll(), write())
    logged = [str(r["sequence"]) for r in await log_of(engine)]
    assert len(logged) == 24
    assert seen == logged
