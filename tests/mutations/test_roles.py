"""Who may do what: every (operation x caller) cell, keys sent either way, and refusals that
change nothing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from db import keys
from domain.states import State
from gql.app import create_app
from gql.settings import Settings
from tests.mutations.conftest import ApiKeys, actor
from tests.mutations.support import (
    DRAW,
    HALT,
    RESUME,
    TRANSITION,
    log_of,
    make_tree,
    post,
    snapshot,
)

S = State
WON = datetime(2023, 4, 1, 12, 0, tzinfo=UTC)
# docs/design.md, "Roles and keys": each role includes the ones before it.
RANK = {"reader": 1, "operator": 2, "moderator": 3, "admin": 4}
QUERY = """query($id: UUID!) { result: messageTreeState(messageTreeId: $id) { __typename state }
  log: transitionLog { nodes { sequence } } }"""


@dataclass(frozen=True)
class World:
    growing: uuid.UUID
    halted: uuid.UUID
    waiting: uuid.UUID


@pytest.fixture
async def world(engine: AsyncEngine) -> World:
    return World(
        growing=await make_tree(engine, S.GROWING, won=WON),
        halted=await make_tree(engine, S.HALTED_BY_MODERATOR, won=WON),
        waiting=await make_tree(engine, S.PROMPT_LOTTERY_WAITING),
    )


# operation: (least role, document, input, the member an allowed caller gets, rows it logs)
def operations(w: World) -> dict[str, tuple[str, str, dict[str, Any] | None, str, int]]:
    return {
        "transitionTree": (
            "operator",
            TRANSITION,
            {"messageTreeId": str(w.growing), "to": "ABORTED_LOW_GRADE"},
            "TransitionApplied",
            1,
        ),
        "drawPromptLottery": ("operator", DRAW, {"lang": "en"}, "LotteryDrawn", 1),
        "haltTree": ("moderator", HALT, {"messageTreeId": str(w.growing)}, "TransitionApplied", 1),
        "resumeTree": (
            "moderator",
            RESUME,
            {"messageTreeId": str(w.halted)},
            "TransitionApplied",
            1,
        ),
        "query": ("reader", QUERY, None, "MessageTreeState", 0),
    }


OPERATIONS = ["transitionTree", "drawPromptLottery", "haltTree", "resumeTree", "query"]
CALLERS = [("anonymous", "none")] + [
    (caller, header)
    for caller in (*RANK, "unknown", "revoked")
    for header in ("bearer", "x-api-key")
]
CASES = [(op, caller, header) for op in OPERATIONS for caller, header in CALLERS]


def key_of(caller: str, keys: ApiKeys) -> str | None:
    if caller == "anonymous":
        return None
    if caller == "unknown":
        return "tg_" + "x" * 43  # well formed, never created
    return keys[caller]


def check_401(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    answer = response.json()
    assert [e["extensions"]["code"] for e in answer["errors"]] == ["UNAUTHENTICATED"]
    assert answer.get("data") is None


@pytest.mark.parametrize(("operation", "caller", "header"), CASES)
async def test_role_matrix(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    api_keys: ApiKeys,
    world: World,
    operation: str,
    caller: str,
    header: str,
) -> None:
    needed, document, input, member, logged = operations(world)[operation]
    variables = {"input": input} if input is not None else {"id": str(world.growing)}
    before = await snapshot(engine)

    response = await post(client, document, variables, key=key_of(caller, api_keys), header=header)

    after = await snapshot(engine)
    if caller in ("unknown", "revoked"):
        check_401(response)
        assert after == before
        return
    assert response.status_code == 200, response.text
    answer = response.json()
    role = "reader" if caller == "anonymous" else caller  # anonymous: reader in development
    if RANK[role] >= RANK[needed]:
        assert "errors" not in answer, answer["errors"]
        assert answer["data"]["result"]["__typename"] == member
        assert after.log_rows == before.log_rows + logged
        if logged:
            assert after.trees != before.trees
            assert [row["actor"] for row in await log_of(engine)] == [actor(caller)]
        return
    code = "UNAUTHENTICATED" if caller == "anonymous" else "FORBIDDEN"
    assert [e["extensions"]["code"] for e in answer["errors"]] == [code]
    assert needed in answer["errors"][0]["message"]
    assert answer["data"] is None
    assert after == before


async def test_bearer_wins_over_x_api_key(
    client: httpx.AsyncClient, engine: AsyncEngine, api_keys: ApiKeys, world: World
) -> None:
    before = await snapshot(engine)
    response = await client.post(
        "/graphql",
        json={"query": HALT, "variables": {"input": {"messageTreeId": str(world.growing)}}},
        headers={"Authorization": f"Bearer {api_keys.reader}", "X-API-Key": api_keys.admin},
    )
    assert [e["extensions"]["code"] for e in response.json()["errors"]] == ["FORBIDDEN"]
    assert await snapshot(engine) == before


async def test_a_key_revoked_after_use_is_refused(
    client: httpx.AsyncClient, engine: AsyncEngine, api_keys: ApiKeys, world: World
) -> None:
    variables = {"id": str(world.growing)}
    assert (await post(client, QUERY, variables, key=api_keys.operator)).status_code == 200
    async with engine.begin() as conn:
        assert await keys.revoke(conn, actor("operator"), datetime.now(UTC))
    check_401(await post(client, QUERY, variables, key=api_keys.operator))


# --- production: no anonymous access -------------------------------------------------------


@asynccontextmanager
async def serve(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://treegate.test") as c:
            yield c


def production(settings: Settings, **fields: Any) -> Settings:
    return Settings(database_url=settings.database_url, env="production", **fields)


async def test_production_refuses_anonymous_reads_and_writes(
    settings: Settings, engine: AsyncEngine, api_keys: ApiKeys, world: World
) -> None:
    before = await snapshot(engine)
    variables = {"id": str(world.growing)}
    async with serve(production(settings)) as client:
        check_401(await post(client, QUERY, variables))
        check_401(
            await client.get("/graphql", params={"query": "{ stateMachine { states { value } } }"})
        )
        check_401(await post(client, "{ __typename }"))
        halt = {"input": {"messageTreeId": str(world.growing)}}
        check_401(await post(client, HALT, halt))
        assert await snapshot(engine) == before

        # A key of any role reads; the GraphiQL page is off in production (HTML alone: 406).
        for header in ("bearer", "x-api-key"):
            answer = await post(client, QUERY, variables, key=api_keys.reader, header=header)
            assert answer.status_code == 200
            assert answer.json()["data"]["result"]["state"] == "GROWING"
        page = await client.get("/graphql", headers={"Accept": "text/html"})
        assert page.status_code == 406
        assert "graphiql" not in page.text.lower()
        written = await post(client, HALT, halt, key=api_keys.moderator)
        assert written.json()["data"]["result"]["__typename"] == "TransitionApplied"


@pytest.mark.parametrize(
    ("env", "anonymous_role", "allowed"),
    [
        ("development", "none", False),
        ("production", "reader", True),
        ("production", None, False),
        ("development", None, True),
    ],
)
async def test_anonymous_role_setting(
    settings: Settings,
    engine: AsyncEngine,
    world: World,
    env: str,
    anonymous_role: str | None,
    allowed: bool,
) -> None:
    configured = Settings(
        database_url=settings.database_url, env=env, anonymous_role=anonymous_role
    )
    async with serve(configured) as client:
        response = await post(client, QUERY, {"id": str(world.growing)})
    if allowed:
        assert response.status_code == 200
        assert response.json()["data"]["result"]["state"] == "GROWING"
    else:
        check_401(response)
