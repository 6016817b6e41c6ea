"""Overload and an unreachable database answer 503 with `Retry-After` quickly, never a hang:
the pool's checkout timeout, the per-process concurrency limit, and the breaker that refuses
connections at once while the database is known to be down. Health endpoints stay outside.

Slow queries are real: another connection holds an ACCESS EXCLUSIVE lock on
`message_tree_state`, so every read of it waits (PostgreSQL).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from gql.settings import Settings
from tests.conftest import SilentServer
from tests.graphql import app_client
from tests.pg_locks import locked, waiting_backends

postgresql_only = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
COUNT = "query Count($n: Int) { messageTreeStates(first: $n) { totalCount } }"


def url(database_url: URL) -> str:
    return database_url.set(drivername="postgresql").render_as_string(hide_password=False)


def count_request(client: httpx.AsyncClient, n: int) -> Any:
    # A distinct `first` per request: no shared answer between them.
    return client.post("/graphql", json={"query": COUNT, "variables": {"n": n}})


@postgresql_only
async def test_an_exhausted_pool_answers_503_within_the_checkout_timeout(
    database_url: URL, engine: AsyncEngine, settings: Settings
) -> None:
    fields = {
        "db_pool_size": 2,
        "db_max_overflow": 0,
        "db_pool_timeout": 0.4,
        "db_lock_timeout_ms": 20_000,
    }
    async with app_client(settings, **fields) as (app, client):
        async with locked(url(database_url)):
            slow = [asyncio.create_task(count_request(client, n)) for n in (1, 2)]
            # Both pooled connections are lent, and wait.
            await waiting_backends(url(database_url), 2)
            started = time.monotonic()
            refused = await count_request(client, 3)
            elapsed = time.monotonic() - started
            slow_at_refusal = [task for task in slow if task.done()]
            health = await client.get("/healthz")
            ready = await client.get("/readyz")
        answered = await asyncio.gather(*slow)
        after = await count_request(client, 4)
        metrics = app.state.endpoint.caches.metrics.registry
    assert refused.status_code == 503, refused.text
    assert refused.headers["retry-after"] == "1"
    (error,) = refused.json()["errors"]
    assert error["extensions"]["code"] == "DATABASE_UNAVAILABLE"
    assert error["extensions"]["reason"] == "pool_timeout"
    # It waited the checkout timeout, and no longer than the lock was held: the answer came
    # while both connections were still lent (the lock goes only after it).
    assert elapsed >= 0.4
    assert slow_at_refusal == []
    # Health is outside the pool: /readyz has a connection of its own.
    assert (health.status_code, ready.status_code) == (200, 200)
    # The slow requests were not harmed, and the next one is served.
    assert [r.status_code for r in answered] == [200, 200]
    assert after.status_code == 200
    assert "errors" not in after.json()
    faults = metrics.get_sample_value("treegate_database_faults_total", {"reason": "pool_timeout"})
    assert faults == 1


@postgresql_only
async def test_beyond_the_concurrency_limit_requests_get_503_at_once(
    database_url: URL, engine: AsyncEngine, settings: Settings
) -> None:
    fields = {"max_concurrent_requests": 2, "db_lock_timeout_ms": 20_000}
    async with app_client(settings, **fields) as (app, client):
        async with locked(url(database_url)):
            slow = [asyncio.create_task(count_request(client, n)) for n in (1, 2)]
            await waiting_backends(url(database_url), 2)
            refused = await count_request(client, 3)
            slow_at_refusal = [task for task in slow if task.done()]
            probes = [await client.get(path) for path in ("/healthz", "/readyz", "/metrics")]
        answered = await asyncio.gather(*slow)
        after = await count_request(client, 4)
        overloaded = app.state.endpoint.caches.metrics.registry.get_sample_value(
            "treegate_overload_rejections_total"
        )
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    (error,) = refused.json()["errors"]
    assert error["extensions"] == {"code": "SERVER_OVERLOADED"}
    # At once: the answer came while the two admitted requests were still held by the lock.
    assert slow_at_refusal == []
    assert [p.status_code for p in probes] == [200, 200, 200]
    assert "treegate_requests_in_flight 2.0" in probes[2].text
    assert [r.status_code for r in answered] == [200, 200]
    assert after.status_code == 200
    assert overloaded == 1


async def test_while_the_database_is_down_requests_are_refused_without_trying_it(
    silent_server: SilentServer,
) -> None:
    """The first request waits for the connect timeout; the breaker then answers the next ones
    without a connection attempt, until its next probe (here far off, to keep the test exact).
    The hung server counts the attempts: one, whatever the machine's speed."""
    settings = Settings(
        database_url=silent_server.url,
        db_connect_timeout=0.5,
        db_probe_interval_s=30,
        # Without caches there is no listener for other processes' writes, whose own attempts
        # to connect (db/notify.py) the hung server would count too.
        count_cache_s=0,
        response_cache_s=0,
    )
    async with app_client(settings) as (_app, client):
        started = time.monotonic()
        first = await count_request(client, 1)
        first_elapsed = time.monotonic() - started
        attempts_first = silent_server.connections()
        answers: list[httpx.Response] = []
        for n in range(10):
            if n % 3 == 0:  # a keyed request: the key lookup needs the database too
                answer = await client.post(
                    "/graphql", json={"query": COUNT}, headers={"X-API-Key": "tg_whatever"}
                )
            elif n % 3 == 1:
                answer = await client.get(
                    "/graphql", params={"query": "{ treeStateCounts { count } }"}
                )
            else:
                answer = await count_request(client, n)
            answers.append(answer)
        health = await client.get("/healthz")
        metrics = await client.get("/metrics")
    assert first.status_code == 503
    assert first_elapsed >= 0.5  # it waited the connect timeout
    assert attempts_first == 1
    for answer in answers:
        assert answer.status_code == 503, answer.text
        assert answer.headers["retry-after"] == "1"
        (error,) = answer.json()["errors"]
        assert error["extensions"]["code"] == "DATABASE_UNAVAILABLE"
        assert error["extensions"]["reason"] == "unreachable"
    assert silent_server.connections() == 1  # no request after the first tried the database
    assert health.status_code == 200
    assert "treegate_db_unavailable 1.0" in metrics.text
