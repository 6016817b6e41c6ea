"""Several root fields in one document share one request connection, resolved concurrently."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.states import TERMINAL_STATES, State
from domain.transitions import TRANSITIONS
from tests.api.support import Tree, filter_variable, ids, matches, ordered, seed
from tests.graphql import data

DOCUMENT = """
query Dashboard($id: UUID!, $missing: UUID!, $f: MessageTreeStateFilter) {
  byId: messageTreeStates(first: 5) {
    totalCount
    nodes { messageTreeId messageCount rootMessage { messageTreeId text } }
  }
  byDate: messageTreeStates(orderBy: WON_LOTTERY_DATE_DESC, first: 4, filter: $f) {
    totalCount
    pageInfo { hasNextPage }
    nodes { messageTreeId rootMessage { messageTreeId } }
  }
  perState: treeStateCounts { state count }
  perLangActive: treeStateCounts(groupBy: [LANG, ACTIVE], filter: $f) { lang active count }
  one: messageTreeState(messageTreeId: $id) { messageTreeId state messageCount }
  none: messageTreeState(messageTreeId: $missing) { messageTreeId }
  machine: stateMachine { terminalStates transitions { fromState toState } }
}
"""
FILTER: dict[str, Any] = {"states": [State.GROWING, State.RANKING, State.ABORTED_LOW_GRADE]}


def check(result: dict[str, Any], trees: list[Tree], target: Tree) -> None:
    by_id = {str(t.id): t for t in trees}
    wanted = [t for t in trees if matches(t, FILTER)]

    assert result["byId"]["totalCount"] == len(trees)
    nodes = result["byId"]["nodes"]
    assert [n["messageTreeId"] for n in nodes] == ids(ordered(trees, "MESSAGE_TREE_ID_ASC"))[:5]
    for node in nodes:
        assert node["messageCount"] == by_id[node["messageTreeId"]].messages
        assert node["rootMessage"]["messageTreeId"] == node["messageTreeId"]

    by_date = result["byDate"]
    assert by_date["totalCount"] == len(wanted)
    assert by_date["pageInfo"]["hasNextPage"] is (len(wanted) > 4)
    expected = ids(ordered(wanted, "WON_LOTTERY_DATE_DESC"))[:4]
    assert [n["messageTreeId"] for n in by_date["nodes"]] == expected
    assert [n["rootMessage"]["messageTreeId"] for n in by_date["nodes"]] == expected

    per_state = Counter(t.state.name for t in trees)
    assert {c["state"]: c["count"] for c in result["perState"]} == per_state
    per_lang_active = Counter((t.lang, t.active) for t in wanted)
    assert {(c["lang"], c["active"]): c["count"] for c in result["perLangActive"]} == (
        per_lang_active
    )

    assert result["one"] == {
        "messageTreeId": str(target.id),
        "state": target.state.name,
        "messageCount": target.messages,
    }
    assert result["none"] is None
    assert result["machine"]["terminalStates"] == [s.name for s in State if s in TERMINAL_STATES]
    assert len(result["machine"]["transitions"]) == len(TRANSITIONS)


def variables(target: Tree) -> dict[str, Any]:
    return {"id": str(target.id), "missing": str(uuid.uuid4()), "f": filter_variable(FILTER)}


async def test_many_root_fields_in_one_document(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    trees = await seed(engine, 40)
    target = trees[17]
    result = await data(client, DOCUMENT, variables(target))
    check(result, trees, target)


async def test_concurrent_requests(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    """Requests in flight together each get their own connection and correct answers."""
    trees = await seed(engine, 40)
    targets = trees[:12]
    results = await asyncio.gather(*(data(client, DOCUMENT, variables(t)) for t in targets))
    for result, target in zip(results, targets, strict=True):
        check(result, trees, target)
