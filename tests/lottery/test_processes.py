"""Three `treegate serve` processes on one PostgreSQL database draw at once.

No in-process lock can help here: only the database (the advisory lock on the language)
keeps a tree from being drawn twice and the language under its cap. Fifty requests go
round-robin to the three servers, over loopback, in a few rounds; drawn trees are put back
to waiting between rounds.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from db.engine import create_engine
from tests.databases import PostgresUnavailable, postgres_database
from tests.e2e.server import clean_env, client_limits, run_cli, serving
from tests.lottery.invariants import LANG, Draw, all_at_once, from_api, prepare, violations
from tests.lottery.support import DRAW, add_operator_key, last_sequence, put_back, trees

pytestmark = pytest.mark.e2e

SERVERS = 3
REQUESTS = 50
ROUNDS = 3
CAP = 20
WAITING = 40
KEYS = [f"operator-{k}" for k in range(SERVERS)]


def asked(i: int) -> int:
    return 1 + i % 3  # 99 trees asked per round: more than the 18 free slots


@pytest.fixture
async def database() -> AsyncIterator[tuple[dict[str, str], URL]]:
    """A fresh, migrated PostgreSQL database, and the environment the servers run with."""
    env = clean_env()
    try:
        async with postgres_database("treegate_lottery_e2e") as url:
            env |= {
                "TREEGATE_DATABASE_URL": url.render_as_string(hide_password=False),
                "TREEGATE_MAX_ACTIVE_TREES": str(CAP),
                # 3 x (8 + 4) connections at most: room on a server with max_connections 100
                # shared with other test runs.
                "TREEGATE_DB_POOL_SIZE": "8",
                "TREEGATE_DB_MAX_OVERFLOW": "4",
            }
            migrated = await asyncio.to_thread(run_cli, env, "migrate")
            assert migrated.returncode == 0, migrated.stderr
            yield env, url
    except PostgresUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
async def shared_engine(database: tuple[dict[str, str], URL]) -> AsyncIterator[AsyncEngine]:
    """The test's own connection to the servers' database, to seed and to check."""
    own = create_engine(database[1])
    try:
        yield own
    finally:
        await own.dispose()


@pytest.fixture
def servers(database: tuple[dict[str, str], URL], tmp_path: Path) -> Iterator[list[str]]:
    """Three servers on free ports, started side by side; every one that started is stopped
    (SIGTERM, then kill) whatever happens, and one that fails to start stops itself."""
    env, _ = database
    managers = [serving(env, tmp_path / f"server-{n}.log") for n in range(SERVERS)]
    with contextlib.ExitStack() as stack:
        with ThreadPoolExecutor(SERVERS) as starter:
            starts = [starter.submit(m.__enter__) for m in managers]
        for manager, start in zip(managers, starts, strict=True):
            if start.exception() is None:
                stack.push(manager.__exit__)
        yield [start.result() for start in starts]  # re-raises a failed start


async def fire(bases: list[str], headers: dict[str, dict[str, str]]) -> list[Draw]:
    """Fifty drawPromptLottery requests at once, round-robin over the servers."""
    timeout = httpx.Timeout(30.0, connect=5.0)
    limits = client_limits(REQUESTS)
    async with httpx.AsyncClient(timeout=timeout, limits=limits, trust_env=False) as client:

        async def post(i: int) -> Draw:
            name = KEYS[i % len(KEYS)]
            response = await client.post(
                f"{bases[i % len(bases)]}/graphql",
                json={"query": DRAW, "variables": {"lang": LANG, "max": asked(i)}},
                headers=headers[name],
            )
            return from_api(name, asked(i), response)

        return await all_at_once((post(i) for i in range(REQUESTS)), 60)


async def test_three_server_processes_draw_at_once(
    shared_engine: AsyncEngine, servers: list[str]
) -> None:
    assert len(set(servers)) == SERVERS
    engine = shared_engine
    headers = {name: await add_operator_key(engine, name) for name in KEYS}
    pool = await prepare(engine, WAITING)
    totals = []
    for round_ in range(ROUNDS):
        draws = await fire(servers, headers)
        assert await violations(engine, pool, CAP, draws) == [], f"round {round_}"
        drawn = [tree_id for d in draws for tree_id in d.drawn]
        totals.append(len(drawn))
        async with engine.begin() as conn:
            await put_back(conn, drawn)
        pool.before = await trees(engine)
        pool.sequence = await last_sequence(engine)
    assert totals == [min(CAP - pool.growing, WAITING)] * ROUNDS
    print(
        f"\n[lottery] {SERVERS} processes, PostgreSQL: {ROUNDS} rounds x {REQUESTS} requests, "
        f"drawn per round {totals}, violations 0"
    )
