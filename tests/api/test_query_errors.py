"""Bad input: a coded GraphQL error with a clear message, never a crash."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from gql.app import create_app
from gql.settings import Settings
from tests.api.support import ORDERS, check_page, fetch_page, ids, ordered, seed
from tests.graphql import error_codes, gql

PAGE = """query($first: Int, $after: String, $orderBy: MessageTreeStateOrder) {
  messageTreeStates(first: $first, after: $after, orderBy: $orderBy) {
    nodes { messageTreeId } } }"""


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def assert_bad_input(body: dict[str, Any], field: str, *words: str) -> str:
    """One BAD_USER_INPUT error on `field`, which resolves to null; returns the message."""
    assert error_codes(body) == ["BAD_USER_INPUT"], body
    error = body["errors"][0]
    assert error["path"] == [field]
    assert (body.get("data") or {}).get(field) is None
    message: str = error["message"]
    for word in words:
        assert word in message, message
    assert "Traceback" not in message
    assert "SELECT" not in message
    return message


@pytest.mark.parametrize("first", [0, -1, 101, 1000, 100_000, 2**31 - 1])
async def test_first_out_of_range(
    client: httpx.AsyncClient, engine: AsyncEngine, first: int
) -> None:
    body = await gql(client, PAGE, {"first": first})
    assert_bad_input(body, "messageTreeStates", "`first`", "between 1 and 100", str(first))


@pytest.mark.parametrize(
    "query",
    [
        "{ messageTreeStates(first: 100000) { totalCount } }",
        "{ messageTreeStates(first: 100000) { nodes { transitions(first: 100000) { at } } } }",
    ],
)
async def test_a_literal_first_over_the_page_size_is_a_page_size_error(
    client: httpx.AsyncClient, engine: AsyncEngine, query: str
) -> None:
    """Not "estimated cost is 10000100001": the field says what is wrong with `first`."""
    body = await gql(client, query)
    assert_bad_input(body, "messageTreeStates", "`first` must be between 1 and 100", "100000")


@pytest.mark.parametrize(
    ("query", "column"),
    [
        ('{ messageTreeState(messageTreeId: "nope") { state } }', 35),
        ('{ messageTreeStates(filter: {wonLotteryAfter: "soon"}) { totalCount } }', 29),
    ],
)
async def test_an_invalid_literal_is_located(
    client: httpx.AsyncClient, query: str, column: int
) -> None:
    body = await gql(client, query)
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert error["locations"] == [{"line": 1, "column": column}]


async def test_first_at_the_bounds_is_accepted(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    trees = await seed(engine, 101)
    expected = ids(ordered(trees, "MESSAGE_TREE_ID_ASC"))
    for first in (1, 100):
        page = await fetch_page(client, first=first)
        assert check_page(page, first=first, after=None, total=101) == expected[:first]


async def _valid_cursor(client: httpx.AsyncClient, order: str) -> str:
    page = await fetch_page(client, order=order, first=1)
    cursor: str = page["pageInfo"]["endCursor"]
    return cursor


def _junk_cursors(valid: str, tree_hex: str) -> dict[str, str]:
    def js(value: object) -> str:
        return b64(json.dumps(value).encode())

    return {
        "garbage": "not a cursor!!",
        "empty": "",
        "non-ascii": "é" + valid,
        "base64-of-text": b64(b"hello world"),
        "base64-of-invalid-utf8": b64(b"\xff\xfe\xfd"),
        "json-object": js({"a": 1, "b": 2, "c": 3, "d": 4}),
        "json-null": js(None),
        "json-number": js(12),
        "json-string": js("abcd"),
        "too-short": js([1, "ia"]),
        "too-long": js([1, "ia", tree_hex, None, 5]),
        "other-version": js([2, "ia", tree_hex, None]),
        "unknown-order": js([1, "zz", tree_hex, None]),
        "unhashable-order": js([1, ["ia"], tree_hex, None]),
        "bad-uuid": js([1, "ia", "not-hex", None]),
        "numeric-uuid": js([1, "ia", 12345, None]),
        "list-uuid": js([1, "ia", [tree_hex], None]),
        "bad-date": js([1, "wa", tree_hex, "yesterday"]),
        "numeric-date": js([1, "wa", tree_hex, 20230401]),
        "naive-date": js([1, "wa", tree_hex, "2023-04-01T12:00:00"]),
        "deeply-nested": b64(b"[" * 50_000 + b"]" * 50_000),
        "nested-at-the-length-limit": b64(b"[" * 96 + b"]" * 96),
        "truncated": valid[: len(valid) // 2],
        "truncated-by-one": valid[:-1],
        "extended": valid + "AAAA",
    }


@pytest.mark.parametrize("order", ORDERS)
async def test_malformed_cursors(
    client: httpx.AsyncClient, engine: AsyncEngine, order: str
) -> None:
    trees = await seed(engine, 3)
    valid = await _valid_cursor(client, order)
    failures: dict[str, str] = {}
    for name, cursor in _junk_cursors(valid, trees[0].id.hex).items():
        body = await gql(client, PAGE, {"first": 2, "after": cursor, "orderBy": order})
        try:
            assert_bad_input(body, "messageTreeStates", "`after`", "cursor")
        except AssertionError as exc:
            failures[name] = str(exc)[:200]
    assert not failures, failures


async def test_cursor_from_another_order(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    await seed(engine, 3)
    for made_under in ORDERS:
        cursor = await _valid_cursor(client, made_under)
        for used_under in ORDERS:
            body = await gql(client, PAGE, {"first": 2, "after": cursor, "orderBy": used_under})
            if used_under == made_under:
                assert "errors" not in body
                continue
            message = assert_bad_input(body, "messageTreeStates", "`after`", made_under)
            assert used_under in message


async def test_error_on_one_field_leaves_the_others(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    trees = await seed(engine, 2)
    body = await gql(
        client,
        "query($id: UUID!) { bad: messageTreeStates(first: 0) { totalCount }"
        " good: messageTreeState(messageTreeId: $id) { messageTreeId } }",
        {"id": str(trees[0].id)},
    )
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["path"] == ["bad"]
    # `bad` is non-null, so the error nulls the whole `data` (GraphQL's null propagation).
    assert body["data"] is None


async def test_syntax_error(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    response = await client.post("/graphql", json={"query": "{ messageTreeStates(first: 1 { "})
    body = response.json()
    assert error_codes(body) == ["GRAPHQL_PARSE_FAILED"]
    assert body["errors"][0]["message"].startswith("Syntax Error")
    assert body.get("data") is None


async def test_unknown_field(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    response = await client.post(
        "/graphql", json={"query": "{ messageTreeStates { nodes { noSuchField } } }"}
    )
    body = response.json()
    assert error_codes(body) == ["GRAPHQL_VALIDATION_FAILED"]
    assert "noSuchField" in body["errors"][0]["message"]
    assert body.get("data") is None


@pytest.mark.parametrize(
    ("query", "variables", "words"),
    [
        (
            "query($id: UUID!) { messageTreeState(messageTreeId: $id) { state } }",
            {"id": "not-a-uuid"},
            ("$id",),
        ),
        (
            "query($id: UUID!) { messageTreeState(messageTreeId: $id) { state } }",
            {"id": 42},
            ("$id",),
        ),
        (
            "query($f: MessageTreeStateFilter) { messageTreeStates(filter: $f) { totalCount } }",
            {"f": {"states": ["NOT_A_STATE"]}},
            ("$f", "NOT_A_STATE"),
        ),
        (
            "query($f: MessageTreeStateFilter) { messageTreeStates(filter: $f) { totalCount } }",
            {"f": {"wonLotteryAfter": "yesterday"}},
            ("$f",),
        ),
        (
            "query($n: Int) { messageTreeStates(first: $n) { totalCount } }",
            {"n": 2**40},
            ("$n",),
        ),
        (
            "query($g: [CountDimension!]!) { treeStateCounts(groupBy: $g) { count } }",
            {"g": ["COLOUR"]},
            ("$g",),
        ),
    ],
    ids=["uuid", "uuid-number", "state", "datetime", "int-overflow", "dimension"],
)
async def test_invalid_variables(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    query: str,
    variables: dict[str, Any],
    words: tuple[str, ...],
) -> None:
    body = await gql(client, query, variables)
    assert error_codes(body) == ["BAD_USER_INPUT"], body
    for word in words:
        assert word in body["errors"][0]["message"]
    assert body.get("data") is None


@pytest.mark.parametrize("field", ["wonLotteryAfter", "wonLotteryBefore"])
async def test_datetime_without_time_zone(
    client: httpx.AsyncClient, engine: AsyncEngine, field: str
) -> None:
    """The contract's DateTime carries a time zone: a naive one is the client's mistake."""
    await seed(engine, 3)
    for root in ("messageTreeStates", "treeStateCounts"):
        selection = "{ totalCount }" if root == "messageTreeStates" else "{ count }"
        body = await gql(
            client,
            f"query($f: MessageTreeStateFilter) {{ {root}(filter: $f) {selection} }}",
            {"f": {field: "2023-04-01T12:00:00"}},
        )
        assert_bad_input(body, root, field, "time zone")


@pytest.fixture
async def small_pages_client(
    database_url: URL, engine: AsyncEngine
) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        database_url=database_url.render_as_string(hide_password=False),
        max_page_size=10,
        default_page_size=4,
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://treegate.test") as c:
            yield c


async def test_configured_page_sizes(
    small_pages_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    trees = await seed(engine, 12)
    expected = ids(ordered(trees, "MESSAGE_TREE_ID_ASC"))
    page = await fetch_page(small_pages_client, first=10)
    assert check_page(page, first=10, after=None, total=12) == expected[:10]
    default = await fetch_page(small_pages_client, first=None)
    assert check_page(default, first=4, after=None, total=12) == expected[:4]
    for first in (11, 100):
        body = await gql(small_pages_client, PAGE, {"first": first})
        assert_bad_input(body, "messageTreeStates", "between 1 and 10", str(first))


# Found by fuzzing (tests/e2e/test_fuzz.py): PostgreSQL's text cannot hold NUL, and an instant
# whose UTC form falls outside years 1-9999 cannot be sent to either database.
@pytest.mark.parametrize(
    ("condition", "words"),
    [
        ('langs: ["e\\u0000n"]', ("filter.langs", "NUL")),
        ('origin: "x\\u0000"', ("filter.origin", "NUL")),
        ('wonLotteryAfter: "0001-01-01T00:00:00+05:00"', ("filter.wonLotteryAfter", "range")),
        ('wonLotteryBefore: "9999-12-31T23:59:59-05:00"', ("filter.wonLotteryBefore", "range")),
    ],
)
async def test_filter_values_no_database_can_take(
    client: httpx.AsyncClient, engine: AsyncEngine, condition: str, words: tuple[str, ...]
) -> None:
    await seed(engine, 3)
    for field, query in (
        ("treeStateCounts", f"{{ treeStateCounts(filter: {{{condition}}}) {{ count }} }}"),
        ("messageTreeStates", f"{{ messageTreeStates(filter: {{{condition}}}) {{ totalCount }} }}"),
    ):
        assert_bad_input(await gql(client, query), field, *words)


async def test_a_field_error_beside_shared_loads_is_answered(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """Found by fuzzing: a bad `first` nulls the page while the same root messages are being
    loaded for `edges` and `nodes`; graphql-core cancels the siblings, and the loader's shared
    future must survive that for the other awaiter (it used to surface as a bare 500)."""
    await seed(engine, 5)
    query = (
        "{ messageTreeStates(first: 3) { edges { node { rootMessage { reviewResult } } } "
        "nodes { maxDepth rootMessage { text } transitions(first: -572) { sequence } } } }"
    )
    for _ in range(5):
        response = await client.post("/graphql", json={"query": query})
        assert response.status_code == 200
        assert error_codes(response.json()) == ["BAD_USER_INPUT"]
