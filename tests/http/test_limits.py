"""Every document limit rejects before execution, with a code naming the limit, on the real app.

Each test also shows the defence matters: the same request within the limit (or with the limit
raised) is answered normally.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import DocumentNode, GraphQLError, build_schema

from gql.settings import Settings
from schema.build import build_schema as build_treegate_schema
from schema.limits import COST_LIMIT, DocumentGuard, DocumentLimits
from tests.e2e.server import clean_env, migrate_and_seed, serving
from tests.graphql import client_for
from tests.test_readme import examples

TYPENAME = "{ __typename }"


@pytest.fixture
def database_url_text(settings: Settings) -> str:
    return settings.database_url


def app_client(database_url: str, **fields: Any) -> AbstractAsyncContextManager[httpx.AsyncClient]:
    return client_for(Settings(database_url=database_url, **fields))


def code_of(response: httpx.Response) -> str:
    errors = response.json()["errors"]
    assert len(errors) == 1, errors
    assert "data" not in response.json()
    code: str = errors[0]["extensions"]["code"]
    return code


def aliases(n: int) -> str:
    return "{ " + " ".join(f"a{i}: __typename" for i in range(n)) + " }"


def nested(depth: int) -> str:
    # Unknown fields: the depth check runs before validation, so they never reach it.
    return "{ " + "f { " * (depth - 1) + "x" + " }" * depth


def langs(n: int) -> str:
    # A long list argument: a valid document of about n tokens (commas are not tokens).
    return "{ treeStateCounts(filter: {langs: [" + '"en" ' * n + "]}) { count } }"


def directives(n: int) -> str:
    # One directive per (merged) field: a field may carry @include only once.
    return "{ " + "__typename @include(if: true) " * n + "}"


@pytest.mark.parametrize(
    ("document", "code", "within"),
    [
        (aliases(16), "ALIAS_LIMIT_EXCEEDED", aliases(15)),
        (nested(11), "DEPTH_LIMIT_EXCEEDED", None),
        (directives(11), "DIRECTIVE_LIMIT_EXCEEDED", directives(10)),
        (
            langs(2_000),  # 2,009 tokens
            "TOKEN_LIMIT_EXCEEDED",
            langs(1_980),  # 1,997 tokens
        ),
    ],
    ids=["aliases", "depth", "directives", "tokens"],
)
async def test_a_document_over_a_limit_is_refused_with_its_code(
    database_url_text: str, document: str, code: str, within: str | None
) -> None:
    async with app_client(database_url_text) as client:
        for accept, status in (
            ("application/graphql-response+json", 400),
            ("application/json", 200),
        ):
            response = await client.post(
                "/graphql", json={"query": document}, headers={"Accept": accept}
            )
            assert response.status_code == status
            assert code_of(response) == code
        if within is not None:
            ok = await client.post("/graphql", json={"query": within})
            assert ok.status_code == 200
            assert "errors" not in ok.json(), ok.json()


async def test_depth_within_the_limit_reaches_validation(database_url_text: str) -> None:
    async with app_client(database_url_text) as client:
        response = await client.post("/graphql", json={"query": nested(10)})
    assert code_of(response) == "GRAPHQL_VALIDATION_FAILED"  # past the depth check


async def test_limits_apply_to_compiled_reads_too(database_url_text: str) -> None:
    # A document the compiled lane could serve, one alias over the limit.
    fields = " ".join(f"c{i}: treeStateCounts {{ count }}" for i in range(16))
    async with app_client(database_url_text) as client:
        response = await client.post("/graphql", json={"query": f"{{ {fields} }}"})
        assert code_of(response) == "ALIAS_LIMIT_EXCEEDED"
    async with app_client(database_url_text, max_aliases=16) as client:
        raised = await client.post("/graphql", json={"query": f"{{ {fields} }}"})
        assert len(raised.json()["data"]) == 16


async def test_the_cost_limit_counts_pages(database_url_text: str) -> None:
    page = (
        "query{declare} {{ messageTreeStates(first: {first}) {{ nodes {{ messageTreeId "
        "transitions(first: {inner}) {{ sequence fromState toState at actor reason }} }} }} }}"
    )
    async with app_client(database_url_text, max_cost=5_000) as client:
        small = await client.post(
            "/graphql", json={"query": page.format(declare="", first=10, inner=20)}
        )
        assert "errors" not in small.json(), small.json()
        big = await client.post(
            "/graphql", json={"query": page.format(declare="", first=100, inner=20)}
        )
        assert code_of(big) == COST_LIMIT
        # `first` from a variable counts as the largest page.
        variable = await client.post(
            "/graphql",
            json={
                "query": page.format(declare="($n: Int)", first="$n", inner=20),
                "variables": {"n": 1},
            },
        )
        assert code_of(variable) == COST_LIMIT


def test_the_readme_queries_are_within_the_default_cost_and_a_nested_list_is_not() -> None:
    schema = build_treegate_schema()
    for query, _answer in examples():
        assert not isinstance(schema.check_document(query), list), query
    # Treegate's schema has no cycle, so no list nests ten deep in it: the cost rule is checked
    # on a schema that lets lists nest, with the default limits.
    recursive = build_schema(
        "type Query { items(first: Int = 10): [Item!]! } "
        "type Item { name: String items(first: Int = 10): [Item!]! }"
    )
    # The default cost limit; depth raised, or the depth limit would stop it first.
    guard = DocumentGuard(recursive, DocumentLimits(max_depth=20))
    ten_deep = "{ " + "items(first: 3) { " * 10 + "name" + " }" * 10 + " }"
    error = guard.check(ten_deep)
    assert isinstance(error, GraphQLError)
    assert (error.extensions or {})["code"] == COST_LIMIT
    assert isinstance(guard.check("{ items(first: 3) { items(first: 3) { name } } }"), DocumentNode)


async def test_a_body_over_the_size_limit_gets_413_unread(database_url_text: str) -> None:
    async with app_client(database_url_text, max_body_bytes=4096) as client:
        big = await client.post("/graphql", json={"query": TYPENAME + " " * 5000})
        assert big.status_code == 413
        assert code_of(big) == "BODY_TOO_LARGE"
        assert (await client.post("/graphql", json={"query": TYPENAME})).status_code == 200


async def test_batches_are_off_by_default_and_bounded_when_on(database_url_text: str) -> None:
    batch = [{"query": TYPENAME}] * 10
    async with app_client(database_url_text) as client:
        refused = await client.post("/graphql", json=batch)
        assert refused.status_code == 400
        assert code_of(refused) == "BATCH_LIMIT_EXCEEDED"
    async with app_client(database_url_text, max_batch=10) as client:
        answered = await client.post("/graphql", json=batch)
        assert answered.json() == [{"data": {"__typename": "Query"}}] * 10
        over = await client.post("/graphql", json=[*batch, {"query": TYPENAME}])
        assert code_of(over) == "BATCH_LIMIT_EXCEEDED"


async def test_bombs_are_rejected_while_other_requests_keep_answering(tmp_path: Path) -> None:
    """A 2 MB token bomb and a 1,000-alias document against a real server process, beside a
    stream of normal queries: the bombs get their limit's error, every normal query answers."""
    env = {
        **clean_env(),
        "TREEGATE_DATABASE_URL": f"sqlite:///{tmp_path / 'bombs.db'}",
        # Let the 2 MB body in, so that the token limit is what stops it.
        "TREEGATE_MAX_BODY_BYTES": str(4 * 1024 * 1024),
    }
    migrate_and_seed(env, 20)
    token_bomb = "{ " + "__typename " * 200_000 + "}"  # 2.2 MB
    alias_bomb = aliases(1_000)
    normal = {"query": "{ treeStateCounts { state count } }"}
    with serving(env, tmp_path / "server.log") as base:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:

            async def bomb(document: str, code: str) -> float:
                started = time.perf_counter()
                response = await client.post("/graphql", json={"query": document})
                elapsed = time.perf_counter() - started
                assert code_of(response) == code
                return elapsed

            async def normal_queries() -> list[int]:
                statuses = []
                for _ in range(40):
                    response = await client.post("/graphql", json=normal)
                    assert "errors" not in response.json()
                    statuses.append(response.status_code)
                return statuses

            statuses = normal_queries()
            bombs = [bomb(token_bomb, "TOKEN_LIMIT_EXCEEDED") for _ in range(3)]
            bombs += [bomb(alias_bomb, "TOKEN_LIMIT_EXCEEDED") for _ in range(3)]
            answered, *timings = await asyncio.gather(statuses, *bombs)
    assert answered == [200] * 40
    seconds = [float(t) for t in timings]  # type: ignore[arg-type]
    print(
        f"rejected beside normal queries: 2.2 MB token bomb in {max(seconds[:3]) * 1000:.0f} ms,"
        f" 1,000 aliases (3,000 tokens) in {max(seconds[3:]) * 1000:.0f} ms (slowest of 3 each)"
    )


async def test_a_thousand_aliases_are_refused_by_the_alias_limit(database_url_text: str) -> None:
    async with app_client(database_url_text, max_tokens=10_000) as client:
        started = time.perf_counter()
        response = await client.post("/graphql", json={"query": aliases(1_000)})
        elapsed = time.perf_counter() - started
    assert code_of(response) == "ALIAS_LIMIT_EXCEEDED"
    print(f"1,000 aliases refused by the alias limit in {elapsed * 1000:.1f} ms")
