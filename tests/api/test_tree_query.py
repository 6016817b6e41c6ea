"""`messageTreeState`: one tree by id, every field of the contract."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from db.tables import message, message_tree_state
from domain.states import TERMINAL_STATES, State, is_active
from domain.transitions import allowed_targets
from tests.api.support import add_replies, insert_tree
from tests.factories import TreeSpec, add_tree, add_user
from tests.graphql import data, gql

MESSAGE_FIELDS = """
  id parentId messageTreeId userId role lang text createdDate depth deleted reviewCount
  reviewResult rank synthetic modelName
"""
TREE_QUERY = f"""
query($id: UUID!) {{
  messageTreeState(messageTreeId: $id) {{
    messageTreeId goalTreeSize maxDepth maxChildrenCount state active origin
    wonPromptLotteryDate lang isTerminal allowedTransitions messageCount
    rootMessage {{ {MESSAGE_FIELDS} }}
  }}
}}
"""


def parse_iso(value: str) -> datetime:
    """An API DateTime: ISO 8601 with an explicit UTC offset."""
    assert value.endswith("+00:00"), value
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None
    return parsed


async def test_every_field(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    # Instants given in other time zones come back as the same instant, in UTC.
    won = datetime(2023, 5, 1, 12, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2)))
    created = datetime(2023, 4, 30, 23, 0, 1, 500, tzinfo=timezone(timedelta(hours=-5)))
    spec = TreeSpec(
        state=State.GROWING,
        lang="de",
        origin="oasst-import",
        won_prompt_lottery_date=won,
        goal_tree_size=17,
        text="Wie spät ist es?",
        review_result=True,
        replies=3,
        created_date=created,
    )
    async with engine.begin() as conn:
        user_id = await add_user(conn)
        tree_id = (await insert_tree(conn, spec, user_id=user_id)).id
        await add_replies(conn, tree_id, 1, deleted=True)
        # Distinct values, so a swapped column cannot go unnoticed.
        await conn.execute(
            update(message_tree_state)
            .where(message_tree_state.c.message_tree_id == tree_id)
            .values(max_depth=5, max_children_count=7)
        )
        await conn.execute(
            update(message)
            .where(message.c.id == tree_id)
            .values(rank=2, synthetic=True, model_name="oasst-sft-1", review_count=4)
        )

    tree = (await data(client, TREE_QUERY, {"id": str(tree_id)}))["messageTreeState"]

    root = tree.pop("rootMessage")
    won_text, created_text = tree.pop("wonPromptLotteryDate"), root.pop("createdDate")
    assert parse_iso(won_text) == won
    assert won_text == won.astimezone(UTC).isoformat()
    assert parse_iso(created_text) == created
    assert tree == {
        "messageTreeId": str(tree_id),
        "goalTreeSize": 17,
        "maxDepth": 5,
        "maxChildrenCount": 7,
        "state": "GROWING",
        "active": True,
        "origin": "oasst-import",
        "lang": "de",
        "isTerminal": False,
        "allowedTransitions": [s.name for s in allowed_targets(State.GROWING)],
        "messageCount": 1 + 3,  # the deleted reply is not counted
    }
    assert root == {
        "id": str(tree_id),
        "parentId": None,
        "messageTreeId": str(tree_id),
        "userId": str(user_id),
        "role": "prompter",
        "lang": "de",
        "text": "Wie spät ist es?",
        "depth": 0,
        "deleted": False,
        "reviewCount": 4,
        "reviewResult": True,
        "rank": 2,
        "synthetic": True,
        "modelName": "oasst-sft-1",
    }


async def test_nullable_fields_come_back_null(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    spec = TreeSpec(state=State.INITIAL_PROMPT_REVIEW, origin=None, review_result=None)
    async with engine.begin() as conn:
        tree_id = await add_tree(conn, spec)
    tree = (await data(client, TREE_QUERY, {"id": str(tree_id)}))["messageTreeState"]
    assert tree["origin"] is None
    assert tree["wonPromptLotteryDate"] is None
    assert tree["messageCount"] == 1
    root = tree["rootMessage"]
    assert (root["userId"], root["reviewResult"], root["reviewCount"]) == (None, None, 0)
    assert (root["rank"], root["modelName"], root["synthetic"]) == (None, None, False)
    parse_iso(root["createdDate"])


async def test_unknown_id_is_null(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        existing = await add_tree(conn, TreeSpec())
    unknown = uuid.uuid4()
    body = await gql(
        client,
        "query($a: UUID!, $b: UUID!) { unknown: messageTreeState(messageTreeId: $a) "
        "{ messageTreeId } known: messageTreeState(messageTreeId: $b) { messageTreeId } }",
        {"a": str(unknown), "b": str(existing)},
    )
    assert "errors" not in body
    assert body["data"] == {"unknown": None, "known": {"messageTreeId": str(existing)}}


async def test_id_accepts_any_uuid_spelling(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        tree_id = await add_tree(conn, TreeSpec())
    for spelling in (str(tree_id).upper(), tree_id.hex):
        result = await data(
            client,
            "query($id: UUID!) { messageTreeState(messageTreeId: $id) { messageTreeId } }",
            {"id": spelling},
        )
        assert result["messageTreeState"] == {"messageTreeId": str(tree_id)}


@pytest.mark.parametrize("state", list(State), ids=lambda s: s.name)
async def test_derived_fields_for_every_state(
    client: httpx.AsyncClient, engine: AsyncEngine, state: State
) -> None:
    async with engine.begin() as conn:
        tree = await insert_tree(conn, TreeSpec(state=state))
        # A stored `active` that disagrees with the state is reported as stored, while
        # `isTerminal` still follows the state.
        odd = await insert_tree(conn, TreeSpec(state=state), active=not is_active(state))
    result = await data(
        client,
        "query($a: UUID!, $b: UUID!) {"
        " a: messageTreeState(messageTreeId: $a) { state active isTerminal allowedTransitions }"
        " b: messageTreeState(messageTreeId: $b) { state active isTerminal allowedTransitions } }",
        {"a": str(tree.id), "b": str(odd.id)},
    )
    expected = {
        "state": state.name,
        "isTerminal": state in TERMINAL_STATES,
        "allowedTransitions": [s.name for s in allowed_targets(state)],
    }
    assert result["a"] == {**expected, "active": state not in TERMINAL_STATES}
    assert result["b"] == {**expected, "active": state in TERMINAL_STATES}


async def test_message_count_per_tree(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        trees = [await insert_tree(conn, TreeSpec(replies=n)) for n in (0, 1, 4)]
        await add_replies(conn, trees[0].id, 2, deleted=True)
    fields = " ".join(
        f't{i}: messageTreeState(messageTreeId: "{t.id}") {{ messageCount }}'
        for i, t in enumerate(trees)
    )
    result = await data(client, f"{{ {fields} }}")
    assert [result[f"t{i}"]["messageCount"] for i in range(3)] == [t.messages for t in trees]
