from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.states import State
from tests.factories import TreeSpec, add_tree
from tests.graphql import data


async def test_tree_by_id(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        tree_id = await add_tree(conn, TreeSpec(state=State.RANKING, lang="de", text="Hallo?"))
    result = await data(
        client,
        "query($id: UUID!) { messageTreeState(messageTreeId: $id) "
        "{ messageTreeId state lang isTerminal rootMessage { text } } }",
        {"id": str(tree_id)},
    )
    assert result["messageTreeState"] == {
        "messageTreeId": str(tree_id),
        "state": "RANKING",
        "lang": "de",
        "isTerminal": False,
        "rootMessage": {"text": "Hallo?"},
    }
