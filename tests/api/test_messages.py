"""The messages API on both databases, against trees whose answers are known
(`tests/message_trees.py`): a message, a tree's messages, children, parent, conversation,
descendants, the longest conversation, the message with the most children, emojis, pages of
messages with every filter, and their cursors."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.graphql import data, error_codes, gql
from tests.message_trees import KNOWN, T0, Tree, insert_known

FIELDS = "id parentId role text depth rank deleted reviewResult"

TREE = """query($id: UUID!, $deleted: Boolean, $spam: Boolean) {
  messageTreeState(messageTreeId: $id) {
    state
    messages(includeDeleted: $deleted, includeSpam: $spam) { id }
    longestConversation { id }
    messageWithMostChildren { id childrenCount }
  }
}"""

MESSAGE = """query($id: UUID!) {
  message(id: $id) {
    id role text depth rank
    parent { id }
    children { id }
    deleted: children(includeDeleted: true) { id }
    childrenCount
    conversation { id }
    descendants { id }
    allDescendants: descendants(includeDeleted: true) { id }
    treeState { messageTreeId state }
    emojis { emoji count }
  }
}"""

PAGE = """query($filter: MessageFilter, $order: MessageOrder, $first: Int, $after: String) {
  messages(filter: $filter, orderBy: $order, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage endCursor }
    edges { cursor node { id } }
  }
}"""


@pytest.fixture
async def known(engine: AsyncEngine) -> tuple[Tree, Tree]:
    return await insert_known(engine)


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [item["id"] for item in items]


async def tree(client: httpx.AsyncClient, english: Tree, **variables: Any) -> dict[str, Any]:
    result = await data(client, TREE, {"id": str(english.id), **variables})
    found: dict[str, Any] = result["messageTreeState"]
    return found


async def test_a_trees_messages_are_depth_first_in_rank_order(
    client: httpx.AsyncClient, known: tuple[Tree, Tree]
) -> None:
    english, _ = known
    found = await tree(client, english)
    assert english.names(ids(found["messages"])) == [
        "root", "a_best", "p_spam", "a_under_spam", "a_second", "p_follow", "a_deep",
        "a_tie_early", "a_tie_late",
    ]  # fmt: skip
    assert english.names(ids(found["longestConversation"])) == [
        "root", "a_second", "p_follow", "a_deep",
    ]  # fmt: skip
    assert found["messageWithMostChildren"] == {"id": english["root"], "childrenCount": 4}


async def test_deleted_and_rejected_messages_follow_open_assistant(
    client: httpx.AsyncClient, known: tuple[Tree, Tree]
) -> None:
    english, _ = known
    with_deleted = await tree(client, english, deleted=True)
    assert english.names(ids(with_deleted["messages"])) == [
        "root", "a_best", "p_spam", "a_under_spam", "a_second", "p_follow", "a_deep",
        "a_tie_early", "a_deleted", "a_tie_late",
    ]  # fmt: skip
    # Only accepted messages: the rejected prompt hides the reply below it.
    accepted = await tree(client, english, spam=False)
    assert english.names(ids(accepted["messages"])) == [
        "root", "a_best", "a_second", "p_follow", "a_deep", "a_tie_early", "a_tie_late",
    ]  # fmt: skip
    # null means the default, as for any argument with one.
    assert await tree(client, english, deleted=None, spam=None) == await tree(client, english)


async def test_one_message_and_everything_around_it(
    client: httpx.AsyncClient, known: tuple[Tree, Tree]
) -> None:
    english, _ = known
    root = (await data(client, MESSAGE, {"id": english["root"]}))["message"]
    assert root["text"] == KNOWN[0].text
    assert (root["role"], root["depth"], root["rank"], root["parent"]) == (
        "prompter",
        0,
        None,
        None,
    )
    assert english.names(ids(root["children"])) == [
        "a_best",
        "a_second",
        "a_tie_early",
        "a_tie_late",
    ]
    assert english.names(ids(root["deleted"])) == [
        "a_best", "a_second", "a_tie_early", "a_deleted", "a_tie_late",
    ]  # fmt: skip
    assert root["childrenCount"] == 4
    assert english.names(ids(root["conversation"])) == ["root"]
    assert len(root["descendants"]) == 9
    assert len(root["allDescendants"]) == 10
    assert root["treeState"] == {"messageTreeId": english["root"], "state": "GROWING"}
    assert root["emojis"] == [{"emoji": "+1", "count": 3}, {"emoji": "red_flag", "count": 1}]

    deep = (await data(client, MESSAGE, {"id": english["a_under_spam"]}))["message"]
    assert deep["parent"] == {"id": english["p_spam"]}
    assert english.names(ids(deep["conversation"])) == ["root", "a_best", "p_spam", "a_under_spam"]
    assert english.names(ids(deep["descendants"])) == ["a_under_spam"]
    assert (deep["children"], deep["childrenCount"], deep["emojis"]) == ([], 0, [])

    best = (await data(client, MESSAGE, {"id": english["a_best"]}))["message"]
    assert english.names(ids(best["descendants"])) == ["a_best", "p_spam", "a_under_spam"]

    # A deleted message asked for by id is served, itself first among its descendants.
    gone = (await data(client, MESSAGE, {"id": english["a_deleted"]}))["message"]
    assert english.names(ids(gone["descendants"])) == ["a_deleted"]

    missing = await data(client, MESSAGE, {"id": "00000000-0000-4000-8000-000000000000"})
    assert missing == {"message": None}


def expected_order(tree_rows: list[tuple[Any, str]], descending: bool) -> list[str]:
    return [i for _, i in sorted(tree_rows, reverse=descending)]


async def pages(
    client: httpx.AsyncClient, filter_: dict[str, Any] | None, order: str, first: int
) -> tuple[list[str], int]:
    seen: list[str] = []
    after = None
    total = -1
    for _ in range(50):
        page = (
            await data(
                client, PAGE, {"filter": filter_, "order": order, "first": first, "after": after}
            )
        )["messages"]
        total = page["totalCount"]
        seen += [edge["node"]["id"] for edge in page["edges"]]
        assert page["pageInfo"]["hasPreviousPage"] == (after is not None)
        if not page["pageInfo"]["hasNextPage"]:
            return seen, total
        after = page["pageInfo"]["endCursor"]
        assert after == page["edges"][-1]["cursor"]
    raise AssertionError("pagination did not end")


async def test_pages_of_messages_in_both_orders(
    client: httpx.AsyncClient, known: tuple[Tree, Tree]
) -> None:
    english, german = known
    by_date = [
        (T0 + timedelta(minutes=r.minute), t[r.name])
        for t in (english, german)
        for r in t.rows
        if not r.deleted
    ]
    for order, descending in (("CREATED_DATE_ASC", False), ("CREATED_DATE_DESC", True)):
        seen, total = await pages(client, None, order, 3)
        assert seen == expected_order(by_date, descending)
        assert total == len(by_date) == 11


@pytest.mark.parametrize(
    ("filter_", "expected"),
    [
        ({"onlyRoots": True}, {"en:root", "de:root"}),
        ({"role": "prompter", "langs": ["en"]}, {"en:root", "en:p_spam", "en:p_follow"}),
        ({"langs": ["de"]}, {"de:root", "de:answer"}),
        ({"langs": []}, set()),
        ({"includeDeleted": True, "langs": ["en"]}, {f"en:{r.name}" for r in KNOWN}),
        (
            {"createdAfter": (T0 + timedelta(minutes=8)).isoformat(),
             "createdBefore": (T0 + timedelta(minutes=21)).isoformat()},
            {"en:a_deep", "en:a_tie_late", "de:root"},
        ),
        ({"messageTreeId": "german", "onlyRoots": True}, {"de:root"}),
    ],
)  # fmt: skip
async def test_message_filters(
    client: httpx.AsyncClient,
    known: tuple[Tree, Tree],
    filter_: dict[str, Any],
    expected: set[str],
) -> None:
    english, german = known
    trees = {"en": english, "de": german}
    if filter_.get("messageTreeId") == "german":
        filter_ = {**filter_, "messageTreeId": str(german.id)}
    seen, total = await pages(client, filter_, "CREATED_DATE_ASC", 2)
    names = {f"{lang}:{name}" for lang, t in trees.items() for name in t.names(
        [i for i in seen if i in {str(v) for v in t.ids.values()}])}  # fmt: skip
    assert names == expected
    assert total == len(seen) == len(expected)


async def test_messages_by_user(engine: AsyncEngine, client: httpx.AsyncClient) -> None:
    from tests.factories import add_user
    from tests.message_trees import GERMAN, insert

    async with engine.begin() as conn:
        author = await add_user(conn)
        mine = await insert(conn, GERMAN, lang="de", user_id=author)
        await insert(conn, KNOWN)
    seen, total = await pages(client, {"userId": str(author)}, "CREATED_DATE_ASC", 5)
    assert seen == [mine["root"], mine["answer"]]
    assert total == 2


@pytest.mark.parametrize(
    ("variables", "argument"),
    [
        ({"filter": {"role": "moderator"}}, "filter.role"),
        ({"filter": {"createdAfter": "2023-05-02T09:00:00"}}, "filter.createdAfter"),
        ({"first": 0}, "first"),
        ({"first": 101}, "first"),
        ({"after": "not-a-cursor"}, "after"),
    ],
)
async def test_bad_message_queries_are_bad_user_input(
    client: httpx.AsyncClient, variables: dict[str, Any], argument: str
) -> None:
    body = await gql(client, PAGE, variables)
    assert error_codes(body) == ["BAD_USER_INPUT"], body
    assert body["errors"][0]["extensions"]["argument"] == argument


async def test_a_cursor_of_one_order_is_refused_in_the_other(
    client: httpx.AsyncClient, known: tuple[Tree, Tree]
) -> None:
    first = (await data(client, PAGE, {"first": 2, "order": "CREATED_DATE_ASC"}))["messages"]
    body = await gql(
        client,
        PAGE,
        {"first": 2, "order": "CREATED_DATE_DESC", "after": first["pageInfo"]["endCursor"]},
    )
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert "CREATED_DATE_ASC" in body["errors"][0]["message"]
    # A trees' cursor is not a messages' one either.
    trees = await data(client, "{ messageTreeStates(first: 1) { pageInfo { endCursor } } }")
    cursor = trees["messageTreeStates"]["pageInfo"]["endCursor"]
    body = await gql(client, PAGE, {"first": 2, "after": cursor})
    assert error_codes(body) == ["BAD_USER_INPUT"]
