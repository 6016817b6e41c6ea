"""Several real `treegate serve` processes on one database: their caches stay coherent.

Each process caches counts and whole GET answers (here for an hour, so that only a notification
can clear them in a test's time); a write through one process must clear every other's caches
(PostgreSQL `LISTEN`/`NOTIFY`, `db/notify.py`). SQLite is served by one process, and says so.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import URL

from db.notify import LISTENER_APPLICATION_NAME
from tests.databases import PostgresUnavailable, postgres_database
from tests.e2e.server import (
    TREEGATE,
    clean_env,
    free_port,
    migrate_and_seed,
    run_cli,
    server_process,
)
from tests.pg_locks import locked, waiting_backends

pytestmark = pytest.mark.e2e

COUNTS = "{ treeStateCounts(groupBy: [STATE]) { state count } }"
HALT = (
    'mutation($id: UUID!) { haltTree(input: {messageTreeId: $id, reason: "coherence"}) '
    "{ __typename } }"
)
RESUME = "mutation($id: UUID!) { resumeTree(input: {messageTreeId: $id}) { __typename } }"
GROWING = (
    "{ messageTreeStates(filter: {states: [GROWING]}, first: 10) { nodes { messageTreeId } } }"
)
BULK_HALT = (
    "mutation { transitionTrees(input: {filter: {states: [GROWING]}, to: HALTED_BY_MODERATOR, "
    'limit: 2, reason: "coherence"}) { applied } }'
)
CACHED_FOR_AN_HOUR = {"TREEGATE_COUNT_CACHE_S": "3600", "TREEGATE_RESPONSE_CACHE_S": "3600"}
WAIT_S = 60
"""The longest a test waits for an event that takes milliseconds (bounds a broken run)."""


def listening(base: str, processes: int) -> bool:
    return metric(base, "treegate_cache_listener_connected") == processes


def listening_again(base: str) -> bool:
    return metric(base, "treegate_cache_listener_reconnects_total") == 1 and listening(base, 1)


def sees(client: httpx.Client, halted_trees: int) -> bool:
    return halted(client) == halted_trees


def metric(base: str, name: str, **labels: str) -> float:
    """One sample of the server's /metrics (0 when absent)."""
    text = httpx.get(f"{base}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def wait_for(condition: Callable[[], Any], what: str) -> Any:
    """Poll until `condition()` is truthy (bounded: a broken run fails, a slow one waits)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not within {WAIT_S} s"
        time.sleep(0.01)


def halted(client: httpx.Client) -> int:
    """HALTED_BY_MODERATOR's count, asked over GET (the answer is cached whole)."""
    answer = client.get("/graphql", params={"query": COUNTS})
    assert answer.status_code == 200, answer.text
    counts = {c["state"]: c["count"] for c in answer.json()["data"]["treeStateCounts"]}
    return int(counts.get("HALTED_BY_MODERATOR", 0))


@pytest.fixture
async def postgres_env() -> AsyncIterator[dict[str, str]]:
    """A seeded PostgreSQL database, and settings that cache for an hour."""
    try:
        async with postgres_database("treegate_procs") as url:
            env = clean_env() | CACHED_FOR_AN_HOUR
            env["TREEGATE_DATABASE_URL"] = URL.render_as_string(url, hide_password=False)
            migrate_and_seed(env, 100)
            yield env
    except PostgresUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


def moderator_key(env: dict[str, str]) -> str:
    created = run_cli(env, "keys", "create", "--name", "moderator", "--role", "moderator")
    assert created.returncode == 0, created.stderr
    return created.stdout.strip().splitlines()[-1]


@pytest.fixture
def two_servers(postgres_env: dict[str, str], tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """Two `treegate serve` processes on one PostgreSQL database, listening for each other's
    writes; yields their base URLs and a moderator key."""
    key = moderator_key(postgres_env)
    with (
        server_process(postgres_env, tmp_path / "a.log") as a,
        server_process(postgres_env, tmp_path / "b.log") as b,
    ):
        for base in (a.base, b.base):
            wait_for(partial(listening, base, 1), "listening")
        yield a.base, b.base, key


def test_a_write_through_one_process_clears_the_others_caches(
    two_servers: tuple[str, str, str],
) -> None:
    a, b, key = two_servers
    auth = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=a, timeout=30) as to_a, httpx.Client(base_url=b, timeout=30) as to_b:
        trees = [
            n["messageTreeId"]
            for n in to_a.post("/graphql", json={"query": GROWING}).json()["data"][
                "messageTreeStates"
            ]["nodes"]
        ]
        assert len(trees) >= 3
        before = halted(to_b)  # cached in B for an hour
        writes = 0
        for tree in trees[:3]:
            for document, change in ((HALT, 1), (RESUME, -1)):
                answer = to_a.post(
                    "/graphql", json={"query": document, "variables": {"id": tree}}, headers=auth
                ).json()
                assert answer["data"], answer
                assert next(iter(answer["data"].values()))["__typename"] == "TransitionApplied"
                writes += 1
                expected = before + change
                wait_for(partial(sees, to_b, expected), "B sees A's write")
                before = expected
        # A bulk call notifies too: each batch it commits.
        bulk = to_a.post("/graphql", json={"query": BULK_HALT}, headers=auth).json()
        assert bulk["data"]["transitionTrees"]["applied"] == 2, bulk
        writes += 1  # one batch
        wait_for(partial(sees, to_b, before + 2), "B sees A's bulk halt")
        # Every write was heard by B (and none by A of its own).
        assert metric(b, "treegate_cache_invalidations_total") == writes
        assert metric(a, "treegate_cache_invalidations_total") == 0
        # The answers B gave while its cached one was stale were not served from a cache
        # entry older than the write: B's responses cache missed again after every write.
        assert metric(b, "treegate_cache_requests_total", cache="responses", result="miss") > writes


def test_a_process_that_loses_its_listening_connection_reconnects_and_clears(
    two_servers: tuple[str, str, str], postgres_env: dict[str, str]
) -> None:
    a, b, key = two_servers
    with httpx.Client(base_url=b, timeout=30) as to_b:
        before = halted(to_b)
        # Cut B's listening connection (and A's: both are named alike) from the server's side.
        terminated = subprocess.run(
            [
                "psql",
                postgres_env["TREEGATE_DATABASE_URL"].replace("+asyncpg", ""),
                "-Atc",
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                f"WHERE application_name = '{LISTENER_APPLICATION_NAME}' "
                "AND datname = current_database()",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        assert terminated.stdout.strip() == "2"
        for base in (a, b):
            wait_for(partial(listening_again, base), "listening again")
        tree = httpx.post(f"{a}/graphql", json={"query": GROWING}, timeout=30).json()["data"][
            "messageTreeStates"
        ]["nodes"][0]["messageTreeId"]
        answer = httpx.post(
            f"{a}/graphql",
            json={"query": HALT, "variables": {"id": tree}},
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        ).json()
        assert answer["data"]["haltTree"]["__typename"] == "TransitionApplied"
        wait_for(lambda: halted(to_b) == before + 1, "B hears writes after reconnecting")


def test_sqlite_is_served_by_one_process(tmp_path: Path) -> None:
    server_env = clean_env() | {"TREEGATE_DATABASE_URL": f"sqlite:///{tmp_path / 'one.db'}"}
    migrate_and_seed(server_env, 20)
    refused = subprocess.run(
        [TREEGATE, "serve", "--workers", "2", "--port", str(free_port())],
        env=server_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 2
    assert "SQLite is served by one process" in refused.stderr
    assert "--workers" in refused.stderr

    with server_process(server_env, tmp_path / "first.log"):
        with server_process(server_env, tmp_path / "second.log"):
            second = (tmp_path / "second.log").read_text()
            assert "another `treegate serve` is serving" in second
        assert "another `treegate serve`" not in (tmp_path / "first.log").read_text()


def fresh_get(base: str, params: dict[str, str]) -> httpx.Response:
    """A GET on a new connection: any worker may take it."""
    with httpx.Client(base_url=base, timeout=30) as client:
        return client.get("/graphql", params=params)


def post(
    base: str,
    document: str,
    variables: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Any:
    answer = httpx.post(
        f"{base}/graphql",
        json={"query": document, "variables": variables},
        headers=headers,
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def halted_count(answer: httpx.Response) -> int:
    assert answer.status_code == 200, answer.text
    counts = {c["state"]: c["count"] for c in answer.json()["data"]["treeStateCounts"]}
    return int(counts.get("HALTED_BY_MODERATOR", 0))


async def test_workers_share_one_view_and_stop_gracefully(
    postgres_env: dict[str, str], tmp_path: Path
) -> None:
    """`treegate serve --workers 2`: a write through either clears both workers' caches,
    `/metrics` counts both, and SIGTERM stops both once their requests in flight are answered."""
    workers = 2
    key = moderator_key(postgres_env)
    url = postgres_env["TREEGATE_DATABASE_URL"].replace("+asyncpg", "")
    env = postgres_env | {
        # Requests below wait for a lock the test holds for as long as it takes.
        "TREEGATE_DB_STATEMENT_TIMEOUT_MS": "0",
        "TREEGATE_DB_LOCK_TIMEOUT_MS": "600000",
    }
    log = tmp_path / "workers.log"
    sent = 0
    with server_process(env, log, command=[TREEGATE, "serve", "--workers", str(workers)]) as server:
        base = server.base
        wait_for(
            lambda: metric(base, "treegate_cache_listener_connected") == workers, "both listening"
        )
        counts = {"query": COUNTS}

        # Each worker caches the counts (for an hour): new connections until both have.
        def both_cached() -> bool:
            nonlocal sent
            halted_count(fresh_get(base, counts))
            sent += 1
            return (
                metric(base, "treegate_cache_requests_total", cache="responses", result="miss")
                == workers
            )

        wait_for(both_cached, "both workers cached the counts")
        before = halted_count(fresh_get(base, counts))
        sent += 1

        growing = post(base, GROWING)
        sent += 1
        trees = [n["messageTreeId"] for n in growing["data"]["messageTreeStates"]["nodes"]]
        auth = {"Authorization": f"Bearer {key}"}
        answer = post(base, HALT, {"id": trees[0]}, auth)
        sent += 1
        assert answer["data"]["haltTree"]["__typename"] == "TransitionApplied"
        # The worker that did not write heard it; the one that wrote cleared its own at once.
        wait_for(lambda: metric(base, "treegate_cache_invalidations_total") == workers - 1, "heard")
        for _ in range(20):
            assert halted_count(fresh_get(base, counts)) == before + 1
            sent += 1
        # One coherent view: every worker's requests are counted, whichever is asked.
        for _ in range(5):
            total = sum(value for name, value in samples(base) if name == "treegate_requests_total")
            assert total == sent

        # SIGTERM while requests wait on the database: both stop, and every request is answered.
        held = trees[1:3]
        pool = ThreadPoolExecutor(len(held))
        try:
            async with locked(
                url,
                "SELECT 1 FROM message_tree_state WHERE message_tree_id = ANY($1::uuid[]) "
                "FOR UPDATE",
                held,
            ):
                answers = [
                    pool.submit(
                        httpx.post,
                        f"{base}/graphql",
                        json={"query": HALT, "variables": {"id": tree}},
                        headers=auth,
                        timeout=120,
                    )
                    for tree in held
                ]
                await waiting_backends(url, len(held))
                server.process.send_signal(signal.SIGTERM)
                await asyncio.to_thread(
                    wait_for,
                    lambda: log.read_text().count("Shutting down") == workers,
                    "both workers stopping",
                )
                assert not any(answer.done() for answer in answers)
            for answer in answers:  # the lock is released: they go on
                response = answer.result()
                assert response.status_code == 200
                assert response.json()["data"]["haltTree"]["__typename"] == "TransitionApplied"
        finally:
            pool.shutdown(wait=True)
        assert server.process.wait(timeout=60) == 0
    text = log.read_text()
    assert text.count("database connections closed") == workers


def samples(base: str) -> Iterator[tuple[str, float]]:
    text = httpx.get(f"{base}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            yield sample.name, sample.value


def test_processes_share_rate_limits_through_redis(
    postgres_env: dict[str, str], redis_url: str, tmp_path: Path
) -> None:
    """With TREEGATE_RATE_LIMIT_REDIS_URL, a key's requests through two real processes are
    counted in one bucket: its rate is its rate over the deployment, not per process."""
    created = run_cli(postgres_env, "keys", "create", "--name", "feed", "--rate-limit", "4/h")
    assert created.returncode == 0, created.stderr
    key = {"X-API-Key": created.stdout.strip().splitlines()[-1]}
    env = postgres_env | {"TREEGATE_RATE_LIMIT_REDIS_URL": redis_url}
    with (
        server_process(env, tmp_path / "a.log") as a,
        server_process(env, tmp_path / "b.log") as b,
    ):
        statuses = [
            httpx.post(f"{base}/graphql", json={"query": COUNTS}, headers=key).status_code
            for base in (a.base, b.base) * 4
        ]
        refused = [
            metric(base, "treegate_rate_limited_total", role="reader") for base in (a.base, b.base)
        ]
    assert statuses == [200] * 4 + [429] * 4
    assert refused == [2.0, 2.0]
