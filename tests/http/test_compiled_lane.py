"""Over HTTP, the compiled path (schema/fast) answers as the full path does, or leaves it to it.

Each request is sent twice, with the compiled path on and off, and the two HTTP responses must
be the same: status, content type and body, byte for byte. Requests the compiled path must not
answer (other content types, bad JSON, unknown keys, callers without the reader role, documents it
has no plan for, errors while its plan runs) are checked to get the full path's answer.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from db import keys
from domain.states import State
from domain.transitions import Role
from gql.settings import Settings
from tests.factories import TreeSpec, add_tree
from tests.graphql import client_for

WITH_TEXT = "Wie heißt der höchste Berg? 🏔️ «quotes» \u2028 and a </script> tag"


@pytest.fixture
async def trees(engine: AsyncEngine) -> list[str]:
    """Trees whose strings need escaping and non-ASCII output, and one lottery date."""
    ids = []
    async with engine.begin() as conn:
        for i, (lang, origin) in enumerate([("de", "импорт"), ("ja", None), ("en", 'a "b"')]):
            spec = TreeSpec(
                state=State.GROWING if i else State.READY_FOR_EXPORT,
                lang=lang,
                origin=origin,
                text=f"{WITH_TEXT} {i}",
                won_prompt_lottery_date=datetime(2023, 3, 1, 12, 30, 5, 123456, tzinfo=UTC),
            )
            ids.append(str(await add_tree(conn, spec)))
    return ids


async def both(
    client: httpx.AsyncClient, app: Starlette, **request: Any
) -> tuple[httpx.Response, httpx.Response]:
    app.state.schema.fast_path_enabled = True
    fast = await client.post("/graphql", **request)
    app.state.schema.fast_path_enabled = False
    try:
        slow = await client.post("/graphql", **request)
    finally:
        app.state.schema.fast_path_enabled = True
    return fast, slow


def same(fast: httpx.Response, slow: httpx.Response) -> None:
    assert fast.status_code == slow.status_code
    assert fast.headers["content-type"] == slow.headers["content-type"]
    assert fast.content == slow.content
    assert int(fast.headers["content-length"]) == len(fast.content)


PAGE = """query Page($first: Int) {
  messageTreeStates(first: $first, orderBy: WON_LOTTERY_DATE_DESC) {
    totalCount
    edges { cursor node { messageTreeId state lang origin wonPromptLotteryDate
      rootMessage { text lang createdDate } } }
    pageInfo { hasNextPage endCursor }
  }
}"""


async def test_answers_are_the_full_paths_byte_for_byte(
    client: httpx.AsyncClient, app: Starlette, trees: list[str], served: list[int]
) -> None:
    requests: list[dict[str, Any]] = [
        {"query": PAGE, "variables": {"first": 2}},
        {"query": PAGE, "variables": {"first": 2}, "operationName": "Page"},
        {
            "query": "query($id: UUID!) { messageTreeState(messageTreeId: $id) "
            "{ messageTreeId origin lang wonPromptLotteryDate } }",
            "variables": {"id": trees[0]},
        },
        {"query": "{ t: treeStateCounts(groupBy: [LANG, STATE]) { lang state count } }"},
    ]
    for body in requests:
        fast, slow = await both(client, app, json=body)
        assert fast.status_code == 200
        assert "errors" not in fast.json()
        same(fast, slow)
    assert len(served) == len(requests)  # the compiled path answered the first of each pair
    # orjson writes UTF-8, escaping only what JSON requires: the text comes back whole.
    page = (await client.post("/graphql", json=requests[0])).json()
    texts = {e["node"]["rootMessage"]["text"] for e in page["data"]["messageTreeStates"]["edges"]}
    assert texts <= {f"{WITH_TEXT} {i}" for i in range(3)}
    assert texts


async def test_the_clients_request_id_is_echoed(
    client: httpx.AsyncClient, app: Starlette, trees: list[str], served: list[int]
) -> None:
    body = {"query": "{ treeStateCounts { count } }"}
    response = await client.post("/graphql", json=body, headers={"X-Request-ID": "poll-42"})
    assert response.headers["x-request-id"] == "poll-42"
    generated = await client.post("/graphql", json=body, headers={"X-Request-ID": "bad id!"})
    assert generated.headers["x-request-id"] != "bad id!"
    assert len(generated.headers["x-request-id"]) == 32
    assert len(served) == 2


@pytest.mark.parametrize(
    ("content", "headers"),
    [
        # Another content type: the full path decides (and refuses).
        ('{"query": "{ treeStateCounts { count } }"}', {"Content-Type": "text/plain"}),
        # Not JSON, and JSON that is not a request.
        ('{"query": ', {"Content-Type": "application/json"}),
        ('["{ treeStateCounts { count } }"]', {"Content-Type": "application/json"}),
        ('{"query": 7}', {"Content-Type": "application/json"}),
        # A plan exists, but the operation named is not the document's.
        (
            '{"query": "query A { treeStateCounts { count } }", "operationName": "B"}',
            {"Content-Type": "application/json"},
        ),
        # Bad input found while the plan runs: the full path reports it.
        (
            '{"query": "{ messageTreeStates(first: 1000) { totalCount } }"}',
            {"Content-Type": "application/json"},
        ),
        (
            '{"query": "query($id: UUID!) { messageTreeState(messageTreeId: $id) { lang } }",'
            ' "variables": {"id": "not-a-uuid"}}',
            {"Content-Type": "application/json"},
        ),
    ],
)
async def test_what_the_compiled_path_leaves_to_the_full_path(
    client: httpx.AsyncClient,
    app: Starlette,
    trees: list[str],
    served: list[int],
    content: str,
    headers: dict[str, str],
) -> None:
    fast, slow = await both(client, app, content=content, headers=headers)
    same(fast, slow)
    assert fast.status_code != 200 or "errors" in fast.json()
    assert served == []


async def test_a_large_body_is_read_whole(
    client: httpx.AsyncClient, app: Starlette, trees: list[str], served: list[int]
) -> None:
    padded = "{ treeStateCounts(groupBy: []) { count } }" + " " * 64 * 1024
    response = await client.post("/graphql", json={"query": padded})
    assert response.status_code == 200
    assert response.json()["data"]["treeStateCounts"] == [{"count": len(trees)}]
    # Answered by the schema's compiled path.
    assert len(served) == 1


async def test_callers_the_app_turns_away_are_turned_away(
    engine: AsyncEngine, database_url: URL, served: list[int]
) -> None:
    async with engine.begin() as conn:
        await keys.insert(conn, "lane-reader", Role.READER, "lane-reader-key", datetime.now(UTC))
    settings = Settings(database_url=database_url.render_as_string(hide_password=False))
    production = Settings(
        database_url=database_url.render_as_string(hide_password=False), env="production"
    )
    body = json.dumps({"query": "{ treeStateCounts { count } }"})
    json_type = {"Content-Type": "application/json"}
    async with client_for(settings) as client:
        unknown = await client.post(
            "/graphql", content=body, headers={**json_type, "X-API-Key": "no-such-key"}
        )
        assert unknown.status_code == 401
        assert unknown.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    async with client_for(production) as client:
        anonymous = await client.post("/graphql", content=body, headers=json_type)
        assert anonymous.status_code == 401
        keyed = await client.post(
            "/graphql",
            content=body,
            headers={**json_type, "Authorization": "Bearer lane-reader-key"},
        )
        assert keyed.status_code == 200
        assert "errors" not in keyed.json()
    assert len(served) == 1  # only the reader's request
