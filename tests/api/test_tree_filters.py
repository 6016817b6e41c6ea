"""`messageTreeStates(filter:)`: every condition alone and combined, in every order."""

from __future__ import annotations

from datetime import timedelta, timezone
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.states import TERMINAL_STATES, State
from tests.api.support import (
    D0,
    ORDERS,
    check_page,
    fetch_all,
    fetch_page,
    filter_variable,
    ids,
    matches,
    ordered,
    seed,
)
from tests.graphql import data

S = State
PLUS_5 = timezone(timedelta(hours=5))

FILTERS: dict[str, dict[str, Any] | None] = {
    "none": None,
    "empty-object": {},
    "all-null": {
        "states": None,
        "langs": None,
        "active": None,
        "origin": None,
        "wonLotteryAfter": None,
        "wonLotteryBefore": None,
    },
    "one-state": {"states": [S.GROWING]},
    "several-states": {"states": [S.GROWING, S.RANKING, S.BACKLOG_RANKING]},
    "duplicate-states": {"states": [S.RANKING, S.RANKING]},
    "every-state": {"states": list(State)},
    "terminal-states": {"states": sorted(TERMINAL_STATES, key=lambda s: s.value)},
    "no-states": {"states": []},
    "one-lang": {"langs": ["de"]},
    "two-langs": {"langs": ["de", "es"]},
    "unknown-lang": {"langs": ["xx"]},
    "no-langs": {"langs": []},
    "active": {"active": True},
    "inactive": {"active": False},
    "origin": {"origin": "oasst-import"},
    "unknown-origin": {"origin": "nowhere"},
    "won-after": {"wonLotteryAfter": D0},
    "won-before": {"wonLotteryBefore": D0},
    "won-after-other-zone": {"wonLotteryAfter": D0.astimezone(PLUS_5)},
    "won-window": {
        "wonLotteryAfter": D0 - timedelta(days=5),
        "wonLotteryBefore": D0 + timedelta(microseconds=1),
    },
    "inverted-window": {"wonLotteryAfter": D0, "wonLotteryBefore": D0 - timedelta(days=1)},
    "states-langs-active": {
        "states": [S.GROWING, S.RANKING, S.SCORING_FAILED],
        "langs": ["en", "es"],
        "active": True,
    },
    "states-origin-after": {
        "states": [S.GROWING, S.READY_FOR_EXPORT, S.HALTED_BY_MODERATOR, S.RANKING],
        "origin": "backlog-2023",
        "wonLotteryAfter": D0 - timedelta(days=30),
    },
    "everything": {
        "states": list(State)[:7],
        "langs": ["en", "de"],
        "active": False,
        "origin": "oasst-import",
        "wonLotteryAfter": D0 - timedelta(days=30),
        "wonLotteryBefore": D0 + timedelta(days=30),
    },
    "empty-list-wins": {"states": [], "langs": ["en"], "active": True},
}


@pytest.mark.parametrize("name", FILTERS)
async def test_filter_in_every_order(
    client: httpx.AsyncClient, engine: AsyncEngine, name: str
) -> None:
    trees = await seed(engine, 60)
    f = FILTERS[name]
    wanted = [t for t in trees if matches(t, f)]
    for order in ORDERS:
        seen = await fetch_all(client, order=order, f=f, first=4, total=len(wanted))
        assert seen == ids(ordered(wanted, order)), order


async def test_filters_are_not_trivial(engine: AsyncEngine) -> None:
    """Each single-condition filter keeps some trees and drops others (so it is tested)."""
    trees = await seed(engine, 60)
    for name, f in FILTERS.items():
        kept = sum(matches(t, f) for t in trees)
        if name in ("none", "empty-object", "all-null", "every-state"):
            assert kept == len(trees), name
        elif name.startswith(("no-", "unknown-", "inverted", "empty-list")):
            assert kept == 0, name
        else:
            assert 0 < kept < len(trees), name


async def test_strict_bounds_on_lottery_dates(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    trees = await seed(engine, 16)
    at_d0 = {str(t.id) for t in trees if t.won == D0}
    assert at_d0
    for f in ({"wonLotteryAfter": D0}, {"wonLotteryBefore": D0}):
        page = await fetch_page(client, f=f, first=100)
        assert not at_d0 & set(check_page(page, first=100, after=None, total=page["totalCount"]))
    after_just_before = await fetch_page(
        client, f={"wonLotteryAfter": D0 - timedelta(microseconds=1)}, first=100
    )
    assert at_d0 <= {n["messageTreeId"] for n in after_just_before["nodes"]}


async def test_filter_given_inline(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    trees = await seed(engine, 30)
    f: dict[str, Any] = {
        "states": [S.GROWING, S.RANKING],
        "langs": ["de", "en"],
        "wonLotteryBefore": D0 + timedelta(days=1),
    }
    variable = filter_variable(f)
    assert variable is not None
    literal = (
        f'{{states: [{", ".join(variable["states"])}], langs: ["de", "en"], '
        f'wonLotteryBefore: "{variable["wonLotteryBefore"]}"}}'
    )
    result = await data(
        client,
        f"{{ messageTreeStates(filter: {literal}, first: 100) "
        "{ totalCount nodes { messageTreeId } } }",
    )
    wanted = [t for t in trees if matches(t, f)]
    assert result["messageTreeStates"]["totalCount"] == len(wanted)
    assert [n["messageTreeId"] for n in result["messageTreeStates"]["nodes"]] == ids(
        ordered(wanted, "MESSAGE_TREE_ID_ASC")
    )
