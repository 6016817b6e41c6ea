"""Read replicas against a real streaming replica: a throwaway primary and a standby made from it
with `pg_basebackup -R`, both from the local PostgreSQL binaries, each on its own port.

Queries read from the replica and mutations (with their reads) from the primary; the read header
reads from the primary; a replica stopped under load costs no client an error, its reads move to
the primary and come back when it does; a replica whose replay is paused past the maximum lag is
taken out of rotation once a check sees it, and back in once replay resumes. Every wait is for an
event (a metric, a replica's replay position), bounded.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from db.replicas import PRIMARY, replay_lag, replica_name
from gql.app import create_app
from gql.settings import Settings
from tests.e2e.server import free_port, run_cli, server_process
from tests.faults.cluster import ThrowawayCluster
from tests.faults.deployment import Deployment, deploy
from tests.faults.mixed_load import HALT, PAGE, TREE, tree_states

TREES = 50
CHECK_S = 0.1
WAIT_S = 30.0
"""The most any awaited event may take (each is expected within a second or two)."""
READ_HEADER = {"X-Treegate-Read": "primary"}
HALTED = "HALTED_BY_MODERATOR"
"""The state `haltTree` moves a tree to, as the API names it."""


@dataclass(frozen=True)
class Replication:
    primary: ThrowawayCluster
    standby: ThrowawayCluster
    deployment: Deployment

    @property
    def replica_url(self) -> str:
        return self.standby.url(self.deployment.url.rsplit("/", 1)[1])

    @property
    def replica(self) -> str:
        """The replica's name in metrics and /readyz."""
        return replica_name(self.replica_url)


@pytest.fixture(scope="module")
def replication() -> Iterator[Replication]:
    with ThrowawayCluster.create() as primary:
        primary.start()
        deployment = deploy(primary, "treegate_replicas", TREES)
        with ThrowawayCluster.create_standby(primary) as standby:
            standby.start()
            yield Replication(primary, standby, deployment)


@pytest.fixture
async def trees(replication: Replication) -> list[str]:
    """Trees no test has halted yet (the tests share the database)."""
    states = await tree_states(replication.deployment.url)
    return sorted(t for t, s in states.items() if s != "halted_by_moderator")


def settings_for(replication: Replication, **fields: Any) -> Settings:
    defaults: dict[str, Any] = {
        "database_url": replication.deployment.url,
        "read_database_urls": replication.replica_url,
        "replica_check_s": CHECK_S,
        "db_pool_size": 4,
        "count_cache_s": 0,
        "response_cache_s": 0,
    }
    return Settings(**(defaults | fields))


@asynccontextmanager
async def serving(settings: Settings, key: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://treegate.test",
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        ) as client,
    ):
        yield client


async def metric(client: httpx.AsyncClient, name: str, **labels: str) -> float:
    """A sample's value in /metrics (0 when it is not there yet)."""
    text = (await client.get("/metrics")).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


async def reads_on(client: httpx.AsyncClient, target: str) -> float:
    return await metric(client, "treegate_reads_total", target=target)


async def healthy(client: httpx.AsyncClient, replica: str) -> bool:
    return await metric(client, "treegate_replica_healthy", replica=replica) == 1


async def wait_until(what: str, check: Callable[[], Awaitable[bool]]) -> float:
    """Poll `check` until it holds; return when it did (`time.monotonic()`)."""
    deadline = time.monotonic() + WAIT_S
    while not await check():
        assert time.monotonic() < deadline, f"not within {WAIT_S} s: {what}"
        await asyncio.sleep(0.02)
    return time.monotonic()


async def tree_state(
    client: httpx.AsyncClient, tree: str, headers: dict[str, str] | None = None
) -> str:
    answer = await client.post(
        "/graphql", json={"query": TREE, "variables": {"id": tree}}, headers=headers
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert "errors" not in body, body
    state: str = body["data"]["messageTreeState"]["state"]
    return state


async def halt(client: httpx.AsyncClient, tree: str) -> dict[str, Any]:
    answer = await client.post(
        "/graphql", json={"query": HALT, "variables": {"input": {"messageTreeId": tree}}}
    )
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()["data"]["result"]
    assert result["__typename"] == "TransitionApplied", result
    return result


async def caught_up(replication: Replication) -> bool:
    """Whether the standby has replayed everything the primary has written."""
    primary = await asyncpg.connect(replication.deployment.url)
    standby = await asyncpg.connect(replication.replica_url)
    try:
        written = await primary.fetchval("SELECT pg_current_wal_lsn()")
        return bool(
            await standby.fetchval("SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn", written)
        )
    finally:
        await primary.close()
        await standby.close()


@asynccontextmanager
async def replay_paused(replication: Replication) -> AsyncIterator[None]:
    """The standby's replay paused (it still receives WAL), resumed on every way out."""
    standby = await asyncpg.connect(replication.replica_url)
    try:
        await standby.execute("SELECT pg_wal_replay_pause()")
        yield
    finally:
        await standby.execute("SELECT pg_wal_replay_resume()")
        await standby.close()


def test_replay_lag_is_the_time_since_the_primary_first_held_unreplayed_wal() -> None:
    samples = [(10.0, 100), (11.0, 150), (14.0, 200)]
    assert replay_lag(samples, 200, now=100.0) == 0  # everything replayed: idle is not lag
    assert replay_lag(samples, 250, now=100.0) == 0
    assert replay_lag(samples, 150, now=15.5) == 1.5  # 200 was first seen at 14
    assert replay_lag(samples, 120, now=15.5) == 4.5
    assert replay_lag(samples, 50, now=15.5) == 5.5  # behind everything known: at least this
    assert replay_lag([], 50, now=15.5) == 0


def test_replica_names_carry_no_credentials() -> None:
    assert replica_name("postgresql://u:secret@db-r1:5433/oasst") == "db-r1:5433/oasst"
    assert replica_name("postgresql://db-r2/oasst") == "db-r2:5432/oasst"


def test_serve_refuses_read_replicas_on_sqlite(tmp_path: Path) -> None:
    env = {
        "TREEGATE_DATABASE_URL": f"sqlite:///{tmp_path / 'treegate.db'}",
        "TREEGATE_READ_DATABASE_URLS": "postgresql://replica.internal/oasst",
    }
    refused = run_cli(env, "serve")
    assert refused.returncode == 78, refused.stderr
    assert "TREEGATE_READ_DATABASE_URLS" in refused.stderr
    assert "read replicas need PostgreSQL" in refused.stderr


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled-lane", "strawberry"])
async def test_queries_read_from_the_replica_writes_and_the_read_header_from_the_primary(
    replication: Replication, trees: list[str], compiled: bool
) -> None:
    replica = replication.replica
    settings = settings_for(
        replication, compiled_reads=compiled, replica_max_lag_s=600, response_cache_s=600
    )
    tree = trees[0]
    async with serving(settings, replication.deployment.key) as client:
        await wait_until("the replica in rotation", lambda: healthy(client, replica))
        before = (await reads_on(client, replica), await reads_on(client, PRIMARY))
        fallbacks = await metric(client, "treegate_compiled_fallbacks_total")
        for _ in range(10):
            assert await tree_state(client, tree) != HALTED
        after = (await reads_on(client, replica), await reads_on(client, PRIMARY))
        assert after == (before[0] + 10, before[1])
        # With compiled reads on, the compiled lane answered them all (none fell back to
        # Strawberry's execution, which answers everything with them off).
        assert await metric(client, "treegate_compiled_fallbacks_total") == fallbacks

        params = {"query": TREE, "variables": f'{{"id": "{tree}"}}'}
        async with replay_paused(replication):
            stale_get = await client.get("/graphql", params=params)
            # The mutation's own reads, after its write, are the primary's.
            applied = await halt(client, tree)
            assert applied["tree"]["state"] == HALTED
            # The replica has not replayed the write: a query does not see it...
            assert await tree_state(client, tree) != HALTED
            # ...a query with the read header does.
            assert await tree_state(client, tree, READ_HEADER) == HALTED
            # GET: the shared answer (the replica's) is never handed to a primary read, and its
            # ETag does not make the primary's answer a 304.
            cached = await client.get("/graphql", params=params)
            fresh = await client.get(
                "/graphql",
                params=params,
                headers=READ_HEADER | {"If-None-Match": stale_get.headers["etag"]},
            )
            assert cached.status_code == fresh.status_code == 200
            assert cached.json()["data"]["messageTreeState"]["state"] != HALTED
            assert fresh.json()["data"]["messageTreeState"]["state"] == HALTED
            assert fresh.headers["etag"] != cached.headers["etag"]
            assert "X-Treegate-Read" in fresh.headers["vary"]
            ready = await client.get("/readyz")
            assert ready.status_code == 200
            (detail,) = ready.json()["replicas"]
            assert detail["name"] == replica
            assert detail["healthy"] is True
        # Replay resumed: the replica catches up and the query sees the write.
        await wait_until(
            "the replica shows the write", lambda: halted_on_replica(client, replica, tree)
        )


async def halted_on_replica(client: httpx.AsyncClient, replica: str, tree: str) -> bool:
    on_replica = await reads_on(client, replica)
    state = await tree_state(client, tree)
    assert await reads_on(client, replica) == on_replica + 1
    return state == HALTED


@dataclass
class Answer:
    status: int
    errors: Any
    at: float


async def read_load(
    client: httpx.AsyncClient, trees: list[str], done: asyncio.Event, workers: int = 4
) -> list[Answer]:
    """`workers` clients reading in a loop until `done` (at most 6,000 reads in all)."""
    answers: list[Answer] = []

    async def worker(n: int) -> None:
        i = n
        while not done.is_set() and len(answers) < 6_000:
            request: dict[str, Any]
            if i % 2:
                request = {"query": PAGE}
            else:
                request = {"query": TREE, "variables": {"id": trees[i % len(trees)]}}
            response = await client.post("/graphql", json=request)
            answers.append(
                Answer(response.status_code, response.json().get("errors"), time.monotonic())
            )
            i += workers

    await asyncio.gather(*(worker(n) for n in range(workers)))
    return answers


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_a_replica_stopped_under_load_costs_no_client_an_error_and_reads_move_back(
    replication: Replication, trees: list[str], mode: str
) -> None:
    replica = replication.replica
    standby = replication.standby
    settings = settings_for(replication, replica_max_lag_s=5)
    try:
        async with serving(settings, replication.deployment.key) as client:
            await wait_until("the replica in rotation", lambda: healthy(client, replica))
            start = (await reads_on(client, replica), await reads_on(client, PRIMARY))
            done = asyncio.Event()
            load = asyncio.create_task(read_load(client, trees, done))
            try:
                await wait_until(
                    "20 reads on the replica",
                    lambda: more_reads(client, replica, start[0] + 20),
                )
                stop_asked = time.monotonic()
                stopped = await asyncio.to_thread(standby.stop, mode)  # type: ignore[arg-type]
                assert stopped is not None
                out = await wait_until("the replica out", lambda: not_healthy(client, replica))
                at_out = await reads_on(client, PRIMARY)
                await wait_until(
                    "20 more reads on the primary",
                    lambda: more_reads(client, PRIMARY, at_out + 20),
                )
                on_replica_while_down = await reads_on(client, replica)
                retries = await metric(
                    client, "treegate_replica_read_retries_total", replica=replica
                )
                ready = await client.get("/readyz")
                start_asked = time.monotonic()
                await asyncio.to_thread(standby.start)
                back = await wait_until("the replica back", lambda: healthy(client, replica))
                await wait_until(
                    "20 reads on the replica again",
                    lambda: more_reads(client, replica, on_replica_while_down + 20),
                )
            finally:
                done.set()
                answers = await load
            end = (await reads_on(client, replica), await reads_on(client, PRIMARY))
    finally:
        if not standby.is_running():
            standby.start()
    failed = [a for a in answers if a.status != 200 or a.errors]
    print(
        f"replica stopped ({mode}) under load: {len(answers)} reads, {len(failed)} failed; "
        f"replica {end[0] - start[0]:.0f}, primary {end[1] - start[1]:.0f}, "
        f"{retries:.0f} retried on the primary; out of rotation {out - stop_asked:.3f} s after "
        f"the stop was asked ({out - stopped:.3f} s after it stopped), back "
        f"{back - start_asked:.3f} s after the start was asked"
    )
    assert not failed, failed[:5]
    assert ready.status_code == 200  # readiness is the primary's
    (detail,) = ready.json()["replicas"]
    assert detail["healthy"] is False
    assert detail["reason"] is not None
    assert end[0] - on_replica_while_down >= 20


async def more_reads(client: httpx.AsyncClient, target: str, at_least: float) -> bool:
    return await reads_on(client, target) >= at_least


async def not_healthy(client: httpx.AsyncClient, replica: str) -> bool:
    return not await healthy(client, replica)


async def test_a_replica_lagging_past_the_maximum_leaves_rotation_until_it_catches_up(
    replication: Replication, trees: list[str]
) -> None:
    replica = replication.replica
    max_lag = 1.0
    settings = settings_for(replication, replica_max_lag_s=max_lag)
    tree = trees[0]
    async with serving(settings, replication.deployment.key) as client:
        await wait_until("the replica in rotation", lambda: healthy(client, replica))
        async with replay_paused(replication):
            written = time.monotonic()
            await halt(client, tree)
            out = await wait_until("the replica out", lambda: not_healthy(client, replica))
            lag = await metric(client, "treegate_replica_lag_seconds", replica=replica)
            ready = await client.get("/readyz")
            before = (await reads_on(client, replica), await reads_on(client, PRIMARY))
            # Out of rotation: queries read from the primary, and see the write.
            for _ in range(5):
                assert await tree_state(client, tree) == HALTED
            after = (await reads_on(client, replica), await reads_on(client, PRIMARY))
        back = await wait_until("the replica back", lambda: healthy(client, replica))
        await wait_until("the replica caught up", lambda: caught_up(replication))
        on_replica = await reads_on(client, replica)
        assert await tree_state(client, tree) == HALTED
        assert await reads_on(client, replica) == on_replica + 1
    print(
        f"replay paused: out of rotation {out - written:.3f} s after the write (lag "
        f"{lag:.3f} s, maximum {max_lag} s); back {back - out:.3f} s after replay resumed"
    )
    assert max_lag < lag < WAIT_S
    assert out - written > max_lag  # not before the lag was past the maximum
    assert after == (before[0], before[1] + 5)
    assert ready.status_code == 200
    (detail,) = ready.json()["replicas"]
    assert detail["healthy"] is False
    assert detail["reason"] == "lagging"
    assert detail["lag_s"] > max_lag


async def test_in_a_batch_the_reads_after_a_mutation_are_the_primarys(
    replication: Replication, trees: list[str]
) -> None:
    replica = replication.replica
    settings = settings_for(replication, max_batch=3, replica_max_lag_s=600)
    tree = trees[0]
    read = {"query": TREE, "variables": {"id": tree}}
    write = {"query": HALT, "variables": {"input": {"messageTreeId": tree}}}
    async with serving(settings, replication.deployment.key) as client:
        await wait_until("the replica in rotation", lambda: healthy(client, replica))
        before = (await reads_on(client, replica), await reads_on(client, PRIMARY))
        async with replay_paused(replication):
            answer = await client.post("/graphql", json=[read, write, read])
        after = (await reads_on(client, replica), await reads_on(client, PRIMARY))
    assert answer.status_code == 200, answer.text
    first, halted, then = answer.json()
    assert first["data"]["messageTreeState"]["state"] != HALTED
    assert halted["data"]["result"]["tree"]["state"] == HALTED
    # The replay is paused: only the primary can have answered this.
    assert then["data"]["messageTreeState"]["state"] == HALTED
    assert after == (before[0] + 1, before[1] + 1)


@pytest.mark.parametrize(
    "reason", ["not_in_recovery", "unreachable"], ids=["the-primary-itself", "nothing-listening"]
)
async def test_a_database_that_is_no_replica_is_never_read_from(
    replication: Replication, trees: list[str], reason: str
) -> None:
    database = replication.deployment.url.rsplit("/", 1)[1]
    url = (
        replication.deployment.url
        if reason == "not_in_recovery"
        else f"postgresql://postgres@127.0.0.1:{free_port()}/{database}"
    )
    settings = settings_for(replication, read_database_urls=url)
    async with serving(settings, replication.deployment.key) as client:

        async def checked() -> bool:
            (detail,) = (await client.get("/readyz")).json()["replicas"]
            return bool(detail["reason"] != "not_checked")

        await wait_until("a check of the replica", checked)
        ready = await client.get("/readyz")
        for tree in trees[:5]:
            assert await tree_state(client, tree) != HALTED
        on_primary = await reads_on(client, PRIMARY)
        on_replica = await reads_on(client, replica_name(url))
    assert ready.status_code == 200
    (detail,) = ready.json()["replicas"]
    assert detail["healthy"] is False
    assert detail["reason"] == reason
    assert (on_primary, on_replica) == (5, 0)


@pytest.mark.e2e
async def test_treegate_serve_reads_from_the_replica_and_closes_its_connections(
    replication: Replication, trees: list[str], tmp_path: Path
) -> None:
    replica = replication.replica
    env = replication.deployment.env | {
        "TREEGATE_READ_DATABASE_URLS": replication.replica_url,
        "TREEGATE_REPLICA_CHECK_S": str(CHECK_S),
    }
    # server_process checks the shutdown: exit status 0, every connection closed.
    with server_process(env, tmp_path / "server.log") as server:
        async with httpx.AsyncClient(
            base_url=server.base,
            headers={"Authorization": f"Bearer {replication.deployment.key}"},
            timeout=30,
        ) as client:
            await wait_until("the replica in rotation", lambda: healthy(client, replica))
            assert await tree_state(client, trees[0]) != HALTED
            assert await tree_state(client, trees[0], READ_HEADER) != HALTED
            on = (await reads_on(client, replica), await reads_on(client, PRIMARY))
    assert on == (1, 1)
    log = (tmp_path / "server.log").read_text()
    assert f"replica {replica} in rotation" in log
