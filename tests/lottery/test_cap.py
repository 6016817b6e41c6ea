"""The per-language cap, what a draw reports, bad input, and `lotteryStatus`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.states import State
from gql.app import create_app
from gql.settings import Settings
from tests.graphql import data, error_codes
from tests.lottery.support import (
    DRAW,
    GROWING,
    STATUS,
    WAITING,
    add_author,
    add_operator_key,
    add_trees,
    drawn_ids,
    log_rows,
    trees,
)

CAP_WORDS = "max_active_trees"
EMPTY_WORDS = "no more candidates"


async def draw(
    client: httpx.AsyncClient, headers: dict[str, str], lang: str, max_activate: int | None
) -> dict[str, Any]:
    variables: dict[str, Any] = {"lang": lang, "max": max_activate}
    response = await client.post(
        "/graphql", json={"query": DRAW, "variables": variables}, headers=headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def drawn(
    client: httpx.AsyncClient, headers: dict[str, str], lang: str, max_activate: int | None
) -> dict[str, Any]:
    body = await draw(client, headers, lang, max_activate)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["drawPromptLottery"]
    assert result["__typename"] == "LotteryDrawn", result
    return result


async def growing(engine: AsyncEngine, lang: str) -> int:
    return sum(1 for t in (await trees(engine)).values() if t.lang == lang and t.state is GROWING)


async def seed(engine: AsyncEngine, lang: str, *, waiting: int, growing: int) -> None:
    async with engine.begin() as conn:
        author = await add_author(conn)
        await add_trees(conn, waiting, author=author, lang=lang)
        await add_trees(conn, growing, author=author, lang=lang, state=GROWING)


@pytest.fixture
async def custom_client(
    settings: Settings, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app configured through the environment: a cap of 4, maxActivate <= 5."""
    monkeypatch.setenv("TREEGATE_MAX_ACTIVE_TREES", "4")
    monkeypatch.setenv("TREEGATE_MAX_ACTIVATE", "5")
    app = create_app(Settings(database_url=settings.database_url))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://treegate.test") as c:
            yield c


async def test_the_default_cap_of_ten(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    await seed(engine, "en", waiting=15, growing=3)
    await seed(engine, "de", waiting=5, growing=9)
    headers = await add_operator_key(engine, "op")

    first = await drawn(client, headers, "en", 5)
    assert len(drawn_ids(first)) == 5
    assert (first["growingBefore"], first["growingAfter"]) == (3, 8)
    assert first["maxActiveTrees"] == 10
    assert first["message"] == "drew 5 of 5 asked"

    second = await drawn(client, headers, "en", 5)
    assert len(drawn_ids(second)) == 2
    assert (second["growingBefore"], second["growingAfter"]) == (8, 10)
    assert second["message"].startswith("drew 2 of 5 asked: ")
    assert CAP_WORDS in second["message"]
    assert EMPTY_WORDS not in second["message"]

    third = await drawn(client, headers, "en", 1)
    assert drawn_ids(third) == []
    assert (third["growingBefore"], third["growingAfter"]) == (10, 10)
    assert third["message"].startswith("drew 0 of 1 asked: ")
    assert CAP_WORDS in third["message"]

    assert await growing(engine, "en") == 10
    assert await growing(engine, "de") == 9  # another language's slots are its own
    german = await drawn(client, headers, "de", 3)
    assert len(drawn_ids(german)) == 1
    assert CAP_WORDS in german["message"]
    assert await growing(engine, "de") == 10
    assert len(await log_rows(engine)) == 5 + 2 + 1


async def test_default_max_activate_is_one(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    await seed(engine, "en", waiting=4, growing=0)
    headers = await add_operator_key(engine, "op")
    result = await drawn(client, headers, "en", None)
    assert len(drawn_ids(result)) == 1
    assert result["message"] == "drew 1 of 1 asked"


async def test_a_language_already_over_the_cap(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """An imported database may hold more growing trees than the cap: nothing is drawn."""
    await seed(engine, "en", waiting=3, growing=12)
    headers = await add_operator_key(engine, "op")
    result = await drawn(client, headers, "en", 2)
    assert drawn_ids(result) == []
    assert (result["growingBefore"], result["growingAfter"]) == (12, 12)
    assert CAP_WORDS in result["message"]
    status = (await data(client, STATUS, {"lang": "en"}))["lotteryStatus"]
    assert status == [
        {"lang": "en", "waiting": 3, "growing": 12, "maxActiveTrees": 10, "freeSlots": 0}
    ]


async def test_fewer_candidates_than_asked(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    await seed(engine, "en", waiting=1, growing=2)
    async with engine.begin() as conn:  # waiting, but not candidates
        await add_trees(conn, 3, author=await add_author(conn, enabled=False))
    headers = await add_operator_key(engine, "op")
    result = await drawn(client, headers, "en", 3)
    assert len(drawn_ids(result)) == 1
    assert (result["growingBefore"], result["growingAfter"]) == (2, 3)
    assert result["message"].startswith("drew 1 of 3 asked: ")
    assert EMPTY_WORDS in result["message"]
    assert CAP_WORDS not in result["message"]


async def test_a_cap_set_in_the_environment(
    custom_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await seed(engine, "en", waiting=10, growing=1)
    headers = await add_operator_key(engine, "op")
    result = await drawn(custom_client, headers, "en", 5)
    assert len(drawn_ids(result)) == 3
    assert (result["growingBefore"], result["growingAfter"], result["maxActiveTrees"]) == (1, 4, 4)
    assert CAP_WORDS in result["message"]
    assert await growing(engine, "en") == 4
    status = (await data(custom_client, STATUS, {"lang": "en"}))["lotteryStatus"]
    assert status == [
        {"lang": "en", "waiting": 7, "growing": 4, "maxActiveTrees": 4, "freeSlots": 0}
    ]
    # TREEGATE_MAX_ACTIVATE=5 lowers the largest maxActivate accepted.
    assert error_codes(await draw(custom_client, headers, "en", 6)) == ["BAD_USER_INPUT"]


@pytest.mark.parametrize(
    ("lang", "max_activate"),
    [("en", 0), ("en", -1), ("en", 101), ("en", 10**6), ("", 1), ("e" * 33, 1)],
)
async def test_bad_input_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, engine: AsyncEngine, lang: str, max_activate: int
) -> None:
    await seed(engine, "en", waiting=3, growing=0)
    headers = await add_operator_key(engine, "op")
    before = await trees(engine)
    body = await draw(client, headers, lang, max_activate)
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["data"] is None
    assert await trees(engine) == before
    assert await log_rows(engine) == []


async def test_the_largest_accepted_values(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    """maxActivate = TREEGATE_MAX_ACTIVATE (100) and a 32-character language are accepted."""
    long_lang = "x" * 32
    await seed(engine, long_lang, waiting=2, growing=0)
    headers = await add_operator_key(engine, "op")
    result = await drawn(client, headers, long_lang, 100)
    assert len(drawn_ids(result)) == 2
    assert result["message"].startswith("drew 2 of 100 asked: ")


async def test_lottery_status(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    # (waiting, growing) per language, plus trees in other states that must not count.
    wanted = {"de": (4, 10), "en": (6, 3), "es": (0, 2), "fr": (5, 0)}
    async with engine.begin() as conn:
        author = await add_author(conn, enabled=False)  # counts ignore candidate rules
        for lang, (waiting, grown) in wanted.items():
            await add_trees(conn, waiting, author=author, lang=lang, state=WAITING)
            await add_trees(conn, grown, author=author, lang=lang, state=GROWING)
            await add_trees(conn, 2, author=author, lang=lang, state=State.RANKING)
        await add_trees(conn, 3, author=author, lang="ru", state=State.READY_FOR_EXPORT)

    every = (await data(client, STATUS))["lotteryStatus"]
    expected = [
        {
            "lang": lang,
            "waiting": waiting,
            "growing": grown,
            "maxActiveTrees": 10,
            "freeSlots": max(10 - grown, 0),
        }
        for lang, (waiting, grown) in sorted(wanted.items())
    ]
    assert [row["lang"] for row in every] == sorted(row["lang"] for row in every)
    assert [row for row in every if row["lang"] in wanted] == expected
    for row in every:  # "ru" has neither waiting nor growing trees: zeros if listed at all
        if row["lang"] not in wanted:
            assert row == {**row, "waiting": 0, "growing": 0, "freeSlots": 10}

    for row in expected:
        one = (await data(client, STATUS, {"lang": row["lang"]}))["lotteryStatus"]
        assert one == [row]
    nothing = (await data(client, STATUS, {"lang": "zz"}))["lotteryStatus"]
    assert nothing == [
        {"lang": "zz", "waiting": 0, "growing": 0, "maxActiveTrees": 10, "freeSlots": 10}
    ]
    for bad in ("", "q" * 33):
        assert error_codes(await client_status(client, bad)) == ["BAD_USER_INPUT"]


async def client_status(client: httpx.AsyncClient, lang: str) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": STATUS, "variables": {"lang": lang}})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body
