"""`treeStateCounts`: every grouping, with and without a filter, against Python's counts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.states import State
from tests.api.support import D0, Tree, filter_variable, matches, seed
from tests.graphql import data

GROUPINGS: list[list[str] | None] = [
    None,  # the default: [STATE]
    [],
    ["STATE"],
    ["LANG"],
    ["ACTIVE"],
    ["STATE", "LANG"],
    ["STATE", "ACTIVE"],
    ["LANG", "ACTIVE"],
    ["STATE", "LANG", "ACTIVE"],
    ["ACTIVE", "LANG", "STATE"],
    ["STATE", "STATE"],
    ["LANG", "ACTIVE", "LANG", "ACTIVE"],
]
FILTERS: list[dict[str, Any] | None] = [
    None,
    {"states": [State.GROWING, State.RANKING, State.HALTED_BY_MODERATOR], "langs": ["en", "de"]},
    {"active": True, "wonLotteryAfter": D0 - timedelta(days=5)},
    {"origin": "backlog-2023"},
    {"states": []},
]

Row = tuple[str | None, str | None, bool | None, int]


def expected_counts(
    trees: Sequence[Tree], group_by: list[str] | None, f: dict[str, Any] | None
) -> list[Row]:
    dims = set(["STATE"] if group_by is None else group_by)
    kept = [t for t in trees if matches(t, f)]
    counter = Counter(
        (
            t.state.name if "STATE" in dims else None,
            t.lang if "LANG" in dims else None,
            t.active if "ACTIVE" in dims else None,
        )
        for t in kept
    )
    if not dims:
        # No grouping: one row, the number of matching trees (zero included).
        return [(None, None, None, len(kept))]
    return sorted(((*key, n) for key, n in counter.items()), key=repr)


def as_rows(counts: list[dict[str, Any]]) -> list[Row]:
    return sorted(((c["state"], c["lang"], c["active"], c["count"]) for c in counts), key=repr)


async def fetch_counts(
    client: httpx.AsyncClient, group_by: list[str] | None, f: dict[str, Any] | None
) -> list[dict[str, Any]]:
    if group_by is None:
        query = """query($f: MessageTreeStateFilter) {
          treeStateCounts(filter: $f) { state lang active count } }"""
        variables: dict[str, Any] = {"f": filter_variable(f)}
    else:
        query = """query($g: [CountDimension!]!, $f: MessageTreeStateFilter) {
          treeStateCounts(groupBy: $g, filter: $f) { state lang active count } }"""
        variables = {"g": group_by, "f": filter_variable(f)}
    counts: list[dict[str, Any]] = (await data(client, query, variables))["treeStateCounts"]
    return counts


@pytest.mark.parametrize(
    "group_by", GROUPINGS, ids=lambda g: "default" if g is None else "-".join(g) or "empty"
)
async def test_counts_match_python(
    client: httpx.AsyncClient, engine: AsyncEngine, group_by: list[str] | None
) -> None:
    trees = await seed(engine, 50)
    for f in FILTERS:
        counts = await fetch_counts(client, group_by, f)
        assert as_rows(counts) == expected_counts(trees, group_by, f), f
        # Each group appears once.
        keys = [(c["state"], c["lang"], c["active"]) for c in counts]
        assert len(keys) == len(set(keys))


async def test_groups_add_up_to_the_filtered_total(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    trees = await seed(engine, 50)
    for f in FILTERS:
        total = sum(matches(t, f) for t in trees)
        for group_by in GROUPINGS:
            counts = await fetch_counts(client, group_by, f)
            assert sum(c["count"] for c in counts) == total, (group_by, f)
            assert all(c["count"] > 0 for c in counts) or group_by == []


async def test_counts_on_an_empty_table(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    assert await fetch_counts(client, ["STATE", "LANG"], None) == []
    assert await fetch_counts(client, [], None) == [
        {"state": None, "lang": None, "active": None, "count": 0}
    ]


async def test_counts_agree_with_total_count(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """The two ways of counting share one filter implementation; they must agree."""
    trees = await seed(engine, 30)
    query = """query($f: MessageTreeStateFilter) {
      treeStateCounts(groupBy: [], filter: $f) { count }
      messageTreeStates(filter: $f, first: 1) { totalCount } }"""
    for f in FILTERS:
        result = await data(client, query, {"f": filter_variable(f)})
        expected = sum(matches(t, f) for t in trees)
        assert result["treeStateCounts"] == [{"count": expected}]
        assert result["messageTreeStates"]["totalCount"] == expected
