"""GET /metrics (Prometheus text) and the access log, through the real app."""

from __future__ import annotations

import logging
import re
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from db import keys
from domain.outcomes import LotteryDrawn
from domain.states import State
from domain.transitions import Role
from domain.values import TreeState
from gql.settings import Settings
from resolvers.metrics import Metrics
from tests.factories import TreeSpec, add_tree
from tests.graphql import client_for

KEY = "metrics-moderator-key"
HALT = "mutation($id: UUID!) { haltTree(input: {messageTreeId: $id}) { __typename } }"


def value(text: str, sample: str) -> float:
    """The value of one sample line (`name{labels}`) of a Prometheus exposition."""
    match = re.search(rf"^{re.escape(sample)} (\S+)$", text, re.MULTILINE)
    assert match is not None, f"{sample} not in metrics:\n{text}"
    return float(match.group(1))


async def test_metrics_count_what_happened(
    settings: Settings, engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    async with engine.begin() as conn:
        tree = await add_tree(conn, TreeSpec(state=State.GROWING))
        await keys.insert(conn, "metrics-moderator", Role.MODERATOR, KEY, datetime.now(UTC))
    settings = Settings(database_url=settings.database_url, response_cache_s=60)
    async with client_for(settings) as client:
        with caplog.at_level(logging.INFO, logger="treegate.access"):
            named = {"query": "query Dashboard { treeStateCounts { count } }"}
            await client.post("/graphql", json=named)  # the compiled lane
            first = await client.get("/graphql", params=named)
            await client.get("/graphql", params=named)  # the shared answer
            await client.get(
                "/graphql", params=named, headers={"If-None-Match": first.headers["etag"]}
            )
            aliases = " ".join(f"a{i}: __typename" for i in range(16))
            await client.post("/graphql", json={"query": f"{{ {aliases} }}"})
            await client.post(
                "/graphql",
                json={"query": HALT, "variables": {"id": str(tree)}},
                headers={"Authorization": f"Bearer {KEY}"},
            )
        text = (await client.get("/metrics")).text
    assert value(text, 'treegate_requests_total{operation="Dashboard",outcome="ok"}') == 4
    assert value(text, 'treegate_requests_total{operation="anonymous",outcome="error"}') == 1
    assert value(text, 'treegate_limit_rejections_total{limit="ALIAS_LIMIT_EXCEEDED"}') == 1
    assert (
        value(
            text, 'treegate_transitions_total{from_state="GROWING",to_state="HALTED_BY_MODERATOR"}'
        )
        == 1
    )
    assert value(text, 'treegate_cache_requests_total{cache="responses",result="hit"}') == 2
    assert value(text, 'treegate_cache_requests_total{cache="responses",result="miss"}') == 1
    assert value(text, "treegate_not_modified_total") == 1
    assert value(text, 'treegate_request_duration_seconds_count{method="GET"}') == 3
    assert value(text, 'treegate_db_pool_connections{state="in_use"}') == 0
    assert value(text, "treegate_db_pool_size") >= 1
    lines = [r.getMessage() for r in caplog.records if r.name == "treegate.access"]
    assert len(lines) == 6
    assert re.match(
        r"request_id=[0-9a-f]{32} method=POST operation=Dashboard status=200 outcome=ok "
        r"duration_ms=\d+\.\d",
        lines[0],
    ), lines[0]


def test_draws_count_trees_and_their_transitions() -> None:
    metrics = Metrics()
    tree = TreeState(uuid.uuid4(), 12, 5, 2, State.GROWING, True, None, None, "de")
    metrics.committed(LotteryDrawn("de", (tree, tree), 0, 2, 10, "drew 2"))
    metrics.committed(LotteryDrawn("de", (), 2, 2, 10, "drew 0"))
    assert metrics.draws.labels("de")._value.get() == 2
    assert metrics.transitions.labels("PROMPT_LOTTERY_WAITING", "GROWING")._value.get() == 2


def test_operation_names_are_bounded() -> None:
    metrics = Metrics()
    assert metrics.operation(None) == "anonymous"
    assert metrics.operation("not a name!") == "other"
    names = {metrics.operation(f"Op{i}") for i in range(500)}
    assert len(names) == 201  # 200 names, then "other"
