"""The compiled read path answers exactly as the full Strawberry execution does.

Documents are generated (seeded): random root fields, field subsets in random order, aliases,
`__typename`, root messages, a tree's messages (with their arguments as literals, variables,
nulls or defaults, on trees with ranks, ties, deleted and rejected messages), filters, orders,
cursors, variables and literals, and bad input. Each runs with the compiled path on and off;
the responses must be identical.
"""

from __future__ import annotations

import json
import logging
import random
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from gql.settings import Settings
from schema.fast.plan import Fallback, Plan
from schema.fast.run import FastPath
from tests.api.support import LANGS, ORDERS, seed
from tests.graphql import app_client, error_codes
from tests.message_trees import KNOWN, Row, insert, insert_known

TREE_FIELDS = [
    "messageTreeId", "goalTreeSize", "maxDepth", "maxChildrenCount", "state", "active", "origin",
    "wonPromptLotteryDate", "lang", "isTerminal", "allowedTransitions", "__typename",
]  # fmt: skip
MESSAGE_FIELDS = [
    "id", "parentId", "messageTreeId", "userId", "role", "lang", "text", "createdDate", "depth",
    "deleted", "reviewCount", "reviewResult", "rank", "synthetic", "modelName", "__typename",
]  # fmt: skip
FLAGS = ["true", "false", "null"]
LEFT_OUT = object()
"""A variable declared but not given: its argument's default applies."""
STATES = ["GROWING", "READY_FOR_EXPORT", "PROMPT_LOTTERY_WAITING", "HALTED_BY_MODERATOR"]
RUNS = 120
FAST = True


def pick(rng: random.Random, fields: list[str], low: int = 1) -> list[str]:
    chosen = rng.sample(fields, rng.randint(low, len(fields)))
    return [f"a{i}: {f}" if rng.random() < 0.2 else f for i, f in enumerate(chosen)]


def message_list_arguments(rng: random.Random, variables: dict[str, Any]) -> str:
    """`messages`' arguments: none, literals (null included) or variables (null, or left out
    so that the default applies)."""
    arguments = []
    for name in ("includeDeleted", "includeSpam"):
        chance = rng.random()
        if chance < 0.3:
            arguments.append(f"{name}: {rng.choice(FLAGS)}")
        elif chance < 0.5:
            variable = f"flag{len(variables)}"
            variables[variable] = rng.choice([True, False, None, LEFT_OUT])
            arguments.append(f"{name}: ${variable}")
    return f"({', '.join(arguments)})" if arguments else ""


def tree_selection(rng: random.Random, variables: dict[str, Any]) -> str:
    fields = pick(rng, TREE_FIELDS)
    if rng.random() < 0.5:
        message = " ".join(pick(rng, MESSAGE_FIELDS))
        fields.insert(rng.randint(0, len(fields)), f"rootMessage {{ {message} }}")
    for _ in range(rng.choice([0, 0, 1, 1, 2])):
        alias = f"m{len(fields)}_{len(variables)}: " if rng.random() < 0.3 else ""
        listed = pick(rng, MESSAGE_FIELDS)
        if rng.random() < 0.05:
            listed.append("childrenCount")  # not compiled: the document falls back
        arguments = message_list_arguments(rng, variables)
        selection = f"{alias}messages{arguments} {{ {' '.join(listed)} }}"
        fields.insert(rng.randint(0, len(fields)), selection)
    return " ".join(fields)


def a_filter(rng: random.Random) -> str:
    parts = []
    if rng.random() < 0.5:
        parts.append(f"states: [{', '.join(rng.sample(STATES, rng.randint(0, 2)))}]")
    if rng.random() < 0.4:
        parts.append(f"langs: {json.dumps(rng.sample(LANGS, rng.randint(1, 2)))}")
    if rng.random() < 0.3:
        parts.append(f"active: {rng.choice(['true', 'false'])}")
    if rng.random() < 0.2:
        parts.append('wonLotteryAfter: "2023-03-30T00:00:00+00:00"')
    if rng.random() < 0.05:
        parts.append('wonLotteryBefore: "2023-04-01T00:00:00"')  # no zone: BAD_USER_INPUT
    return "{" + ", ".join(parts) + "}"


def page_field(rng: random.Random, cursor: str | None, variables: dict[str, Any]) -> str:
    first = rng.choice([0, 2, 30, 101]) if rng.random() < 0.1 else rng.choice([1, 3, 7])
    arguments = [f"first: {first}"]
    if rng.random() < 0.6:
        arguments.append(f"orderBy: {rng.choice(ORDERS)}")
    if rng.random() < 0.5:
        arguments.append(f"filter: {a_filter(rng)}")
    if cursor and rng.random() < 0.5:
        arguments.append(f'after: "{cursor}"')
    if rng.random() < 0.05:
        arguments.append('after: "not-a-cursor"')
    parts = []
    kinds = ["totalCount", "nodes", "edges", "pageInfo", "__typename"]
    for part in rng.sample(kinds, rng.randint(1, 5)):
        if part == "nodes":
            parts.append(f"nodes {{ {tree_selection(rng, variables)} }}")
        elif part == "edges":
            parts.append(f"edges {{ cursor node {{ {tree_selection(rng, variables)} }} }}")
        elif part == "pageInfo":
            info = pick(rng, ["hasNextPage", "hasPreviousPage", "startCursor", "endCursor"])
            parts.append(f"pageInfo {{ {' '.join(info)} }}")
        else:
            parts.append(part)
    return f"messageTreeStates({', '.join(arguments)}) {{ {' '.join(parts)} }}"


def document(rng: random.Random, ids: list[str], cursor: str | None) -> tuple[str, dict[str, Any]]:
    roots: list[str] = []
    variables: dict[str, Any] = {}
    for i in range(rng.randint(1, 3)):
        kind = rng.choice(["tree", "page", "counts", "typename"])
        if kind == "tree":
            tree_id = rng.choice([*ids, "00000000-0000-4000-8000-000000000000"])
            if rng.random() < 0.5:
                variables[f"id{i}"] = tree_id
                argument = f"$id{i}"
            else:
                argument = f'"{tree_id}"'
            selection = tree_selection(rng, variables)
            roots.append(f"r{i}: messageTreeState(messageTreeId: {argument}) {{ {selection} }}")
        elif kind == "page":
            roots.append(f"r{i}: {page_field(rng, cursor, variables)}")
        elif kind == "counts":
            dims = ", ".join(rng.sample(["STATE", "LANG", "ACTIVE"], rng.randint(0, 3)))
            condition = f", filter: {a_filter(rng)}" if rng.random() < 0.5 else ""
            fields = " ".join(pick(rng, ["state", "lang", "active", "count", "__typename"]))
            roots.append(f"r{i}: treeStateCounts(groupBy: [{dims}]{condition}) {{ {fields} }}")
        else:
            roots.append(f"r{i}: __typename")
    declared = ", ".join(
        f"${name}: {'Boolean' if name.startswith('flag') else 'UUID!'}" for name in variables
    )
    header = f"query Generated({declared})" if declared else "query Generated"
    given = {name: value for name, value in variables.items() if value is not LEFT_OUT}
    return f"{header} {{ {' '.join(roots)} }}", given


async def answer(
    client: httpx.AsyncClient, app: Starlette, query: str, variables: dict[str, Any], fast: bool
) -> Any:
    app.state.schema.fast_path_enabled = fast
    try:
        response = await client.post("/graphql", json={"query": query, "variables": variables})
    finally:
        app.state.schema.fast_path_enabled = True
    return response.status_code, response.json()


async def test_generated_documents_answer_the_same(
    client: httpx.AsyncClient, app: Starlette, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    trees = await seed(engine, 30)
    english, german = await insert_known(engine)
    # The trees of known shape (ranks, ties, deleted and rejected messages) drawn more often.
    ids = [str(t.id) for t in trees] + [str(english.id), str(german.id)] * 8
    served = 0
    original = FastPath.run

    async def counting(self: FastPath, *args: Any) -> Any:
        nonlocal served
        result = await original(self, *args)
        served += 1
        return result

    monkeypatch.setattr(FastPath, "run", counting)
    rng = random.Random(20261126)
    cursor = None
    for _ in range(RUNS):
        query, variables = document(rng, ids, cursor)
        fast = await answer(client, app, query, variables, fast=FAST)
        slow = await answer(client, app, query, variables, fast=False)
        assert fast == slow, query
        for value in (slow[1].get("data") or {}).values():
            if isinstance(value, dict) and (value.get("pageInfo") or {}).get("endCursor"):
                cursor = value["pageInfo"]["endCursor"]
    # Most documents are served by the compiled path (bad input falls back, as it must).
    assert served >= RUNS * 0.7, served


async def test_documents_outside_the_compiled_subset_fall_back(
    client: httpx.AsyncClient, app: Starlette, engine: AsyncEngine
) -> None:
    await seed(engine, 5)
    schema = app.state.schema
    for query, reason in (
        ("{ stateMachine { states { value } } }", "unsupported_field"),
        (
            "{ messageTreeStates(first: 2) { nodes { messageCount transitions { sequence } } } }",
            "unsupported_field",
        ),
        ("query { ...on Query { treeStateCounts { count } } }", "fragments_or_directives"),
        ("{ a: treeStateCounts { count } a: treeStateCounts { count } }", "field_merging"),
        ("{ treeStateCounts @include(if: true) { count } }", "fragments_or_directives"),
        ("query A { __typename } query B { __typename }", "several_operations"),
        (
            "{ messageTreeStates(first: 2) { nodes { messages { id parent { id } } } } }",
            "unsupported_field",
        ),
    ):
        found = schema.fast_path.plan(query)
        assert isinstance(found, Fallback), query
        assert found.reason == reason, query
    # A mutation is not the compiled lane's business: no plan, and no fallback either.
    mutation = (
        'mutation { haltTree(input: {messageTreeId: "00000000-0000-4000-8000-000000000000"}) '
        "{ __typename } }"
    )
    assert schema.fast_path.plan(mutation) is None
    assert isinstance(schema.fast_path.plan("{ treeStateCounts { count } }"), Plan)
    query = "{ stateMachine { states { value } } }"
    response = await client.post("/graphql", json={"query": query})
    assert len(response.json()["data"]["stateMachine"]["states"]) == 10


def fallbacks(app: Starlette) -> dict[str, float]:
    registry = app.state.endpoint.caches.metrics.registry
    return {
        sample.labels["reason"]: sample.value
        for metric in registry.collect()
        if metric.name == "treegate_compiled_fallbacks"
        for sample in metric.samples
        if sample.name.endswith("_total")
    }


async def test_fallbacks_are_counted_by_reason_and_logged_once_per_document(
    client: httpx.AsyncClient,
    app: Starlette,
    engine: AsyncEngine,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await seed(engine, 3)
    before = fallbacks(app)
    not_compiled = "query Machine { stateMachine { terminalStates } }"
    # Compiled, but this request's variable does not coerce: the full path reports the error.
    bad_variable = "query One($id: UUID!) { messageTreeState(messageTreeId: $id) { lang } }"
    mutation = (
        'mutation { resumeTree(input: {messageTreeId: "00000000-0000-4000-8000-000000000000"}) '
        "{ __typename } }"
    )
    with caplog.at_level(logging.INFO, logger="treegate.schema"):
        for _ in range(3):
            await client.post("/graphql", json={"query": not_compiled})
            response = await client.post(
                "/graphql", json={"query": bad_variable, "variables": {"id": "not a uuid"}}
            )
            assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
            await client.post("/graphql", json={"query": mutation})
    after = fallbacks(app)
    grown = {reason: after.get(reason, 0) - before.get(reason, 0) for reason in after}
    assert grown == {"unsupported_field": 3, "variables": 3}
    logged = [r.getMessage() for r in caplog.records if "full execution path" in r.getMessage()]
    assert len(logged) == 2, logged
    assert "operation Machine" in logged[0]
    assert "unsupported_field" in logged[0]
    assert "operation One" in logged[1]
    assert "variables" in logged[1]


TREE_MESSAGES = """query Messages($id: UUID!, $deleted: Boolean) {
  messageTreeState(messageTreeId: $id) {
    messages { id parentId role text depth rank }
    all: messages(includeDeleted: $deleted, includeSpam: true) { id deleted }
  }
}"""
MAX_TREE = 12


async def test_a_tree_s_messages_are_compiled_and_a_tree_too_large_falls_back(
    settings: Settings, engine: AsyncEngine
) -> None:
    extra = tuple(
        Row(f"extra-{i}", "root", "assistant", 30 + i, f"Extra reply {i}.")
        for i in range(MAX_TREE + 1 - len(KNOWN))
    )
    async with engine.begin() as conn:
        known = await insert(conn, KNOWN)
        large = await insert(conn, (*KNOWN, *extra))
    async with app_client(settings, max_tree_messages=MAX_TREE) as (app, client):
        assert isinstance(app.state.schema.fast_path.plan(TREE_MESSAGES), Plan)
        before = fallbacks(app)
        answers = {}
        for tree in (known, large):
            variables = {"id": str(tree.id), "deleted": True}
            fast = await answer(client, app, TREE_MESSAGES, variables, fast=True)
            slow = await answer(client, app, TREE_MESSAGES, variables, fast=False)
            assert fast == slow
            answers[tree.id] = fast[1]
        after = fallbacks(app)
    # The known tree was answered by its plan; the one over the limit by the full path.
    assert {reason: after[reason] - before.get(reason, 0) for reason in after} == {"error": 1}
    found = answers[known.id]["data"]["messageTreeState"]
    assert known.names([m["id"] for m in found["messages"]]) == [
        "root", "a_best", "p_spam", "a_under_spam", "a_second", "p_follow", "a_deep",
        "a_tie_early", "a_tie_late",
    ]  # fmt: skip
    assert found["messages"][1] == {
        "id": known["a_best"],
        "parentId": known["root"],
        "role": "assistant",
        "text": "Call list.sort() to sort in place.",
        "depth": 1,
        "rank": 0,
    }
    assert [m["deleted"] for m in found["all"]].count(True) == 1
    assert error_codes(answers[large.id]) == ["TREE_TOO_LARGE"]
    assert answers[large.id]["data"] == {"messageTreeState": None}
