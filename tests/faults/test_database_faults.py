"""Fault tests against a real `treegate serve` on a throwaway PostgreSQL cluster: database
restarts under load, a backend terminated under a mutation, pool exhaustion, and SIGTERM while
requests are in flight. Every wait is bounded."""

from __future__ import annotations

import asyncio
import math
import random
import signal
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.e2e.server import client_limits, server_process
from tests.faults.deployment import Deployment
from tests.faults.mixed_load import (
    HALT,
    PAGE,
    Call,
    MixedLoad,
    check_invariants,
    recovery_after,
    tally,
    tree_states,
)
from tests.pg_locks import locked, waiting_backends

CLIENTS = 20
POOL_TIMEOUT = 2.0
CONNECT_TIMEOUT = 2.0


def client(base: str, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base,
        timeout=30,
        headers={"Authorization": f"Bearer {key}"},
        limits=client_limits(CLIENTS),
    )


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_a_database_restart_under_load_recovers_within_a_second_and_loses_nothing(
    mode: str, deployment: Deployment, server_log: Path
) -> None:
    initial = await tree_states(deployment.url)
    env = deployment.env | {
        "TREEGATE_DB_POOL_TIMEOUT": str(POOL_TIMEOUT),
        "TREEGATE_DB_CONNECT_TIMEOUT": str(CONNECT_TIMEOUT),
    }
    stop_at = math.inf
    with server_process(env, server_log) as server:
        load = MixedLoad(server.base, deployment.key, sorted(initial), clients=CLIENTS, seed=7)

        async def restart_midway() -> float:
            nonlocal stop_at
            await asyncio.sleep(1.5)
            timings = await asyncio.to_thread(deployment.cluster.restart, mode)  # type: ignore[arg-type]
            stop_at = timings.accepting + 3.0
            return timings.accepting

        calls, accepting = await asyncio.gather(
            load.run(lambda: time.monotonic() >= stop_at, max_calls=50_000), restart_midway()
        )
    outcomes = tally(calls)
    recovery = recovery_after(calls, accepting)
    print(f"{mode} restart: recovered {recovery:.3f} s after; {len(calls)} calls {outcomes}")
    # No answer but 200 and 503, and every 503 is a database fault said as such.
    assert {c.status for c in calls} <= {200, 503}, outcomes
    assert all(not c.failed or c.outcome == "unavailable" for c in calls), outcomes
    # No request waited beyond its bounds (the pool's checkout, a connection attempt).
    slowest = max(c.seconds for c in calls)
    assert slowest < POOL_TIMEOUT + CONNECT_TIMEOUT + 1, slowest
    # Service is back within a second of the database accepting connections, with no restart.
    assert recovery < 1.0, (recovery, outcomes)
    served_after = [c for c in calls if c.started >= accepting + 1.0]
    assert len(served_after) >= 100
    assert all(not c.failed for c in served_after)
    # What the clients were told agrees with the database, and the log is complete.
    invariants = await check_invariants(deployment.url, initial, calls)
    assert invariants.ok, invariants.violations[:10]
    assert invariants.applied > 0


async def test_while_the_database_is_down_requests_get_a_quick_503_and_after_it_the_next_succeeds(
    deployment: Deployment, server_log: Path
) -> None:
    probe_interval = 0.25
    # Timeouts far off: an answer well within them waited for none.
    env = deployment.env | {
        "TREEGATE_DB_PROBE_INTERVAL_S": str(probe_interval),
        "TREEGATE_DB_POOL_TIMEOUT": "10",
        "TREEGATE_DB_CONNECT_TIMEOUT": "10",
    }
    with server_process(env, server_log) as server:
        async with client(server.base, deployment.key) as http:
            assert (await http.post("/graphql", json={"query": PAGE})).status_code == 200
            await asyncio.to_thread(deployment.cluster.stop, "fast")
            down: list[tuple[float, httpx.Response]] = []
            for _ in range(20):
                started = time.monotonic()
                answer = await http.post("/graphql", json={"query": PAGE})
                down.append((time.monotonic() - started, answer))
            ready = await http.get("/readyz")
            health = await http.get("/healthz")
            accepting = await asyncio.to_thread(deployment.cluster.start)
            assert accepting is not None
            # A client asking no more often than the probe interval: its next request is served.
            await asyncio.sleep(max(0.0, accepting + probe_interval - time.monotonic()))
            back = await http.post("/graphql", json={"query": PAGE})
            ready_again = await http.get("/readyz")
    slowest = max(seconds for seconds, _ in down)
    print(f"database down: 20 requests answered 503 in at most {slowest * 1000:.1f} ms")
    for seconds, answer in down:
        assert answer.status_code == 503, answer.text
        assert answer.headers["retry-after"] == "1"
        error = answer.json()["errors"][0]["extensions"]
        assert error["code"] == "DATABASE_UNAVAILABLE"
        assert error["reason"] in ("unreachable", "connection_lost")
        assert seconds < 2.0, seconds
    assert ready.status_code == 503
    assert ready.json()["status"] == "unavailable"
    assert health.status_code == 200
    assert back.status_code == 200, back.text
    assert "errors" not in back.json()
    assert ready_again.status_code == 200


async def test_a_mutation_whose_backend_is_terminated_gets_503_changes_nothing_and_a_retry_works(
    deployment: Deployment, server_log: Path
) -> None:
    states = await tree_states(deployment.url)
    tree = next(t for t, s in sorted(states.items()) if s != "halted_by_moderator")
    token = f"terminated-{uuid.uuid4().hex[:8]}"
    request = {"query": HALT, "variables": {"input": {"messageTreeId": tree, "reason": token}}}
    env = deployment.env | {"TREEGATE_DB_LOCK_TIMEOUT_MS": "30000"}
    with server_process(env, server_log) as server:
        async with client(server.base, deployment.key) as http:
            sql = "SELECT 1 FROM message_tree_state WHERE message_tree_id = $1 FOR UPDATE"
            async with locked(deployment.url, sql, uuid.UUID(tree)) as holder:
                pending = asyncio.create_task(http.post("/graphql", json=request))
                (pid,) = await waiting_backends(deployment.url, 1)
                assert await holder.fetchval("SELECT pg_terminate_backend($1)", pid)
                answer = await asyncio.wait_for(pending, 10)
            assert answer.status_code == 503, answer.text
            assert answer.headers["retry-after"] == "1"
            (error,) = answer.json()["errors"]
            assert error["extensions"]["code"] == "DATABASE_UNAVAILABLE"
            assert error["extensions"]["reason"] == "connection_lost"
            assert (await tree_states(deployment.url))[tree] == states[tree]
            assert await log_rows(deployment.url, token) == 0
            retried = await http.post("/graphql", json=request)
    assert retried.status_code == 200, retried.text
    assert retried.json()["data"]["result"]["__typename"] == "TransitionApplied"
    assert (await tree_states(deployment.url))[tree] == "halted_by_moderator"
    assert await log_rows(deployment.url, token) == 1


async def refused_connections(url: str, within: float = 20.0) -> None:
    """Wait until the server serves no new connection: refused once it has closed its socket,
    or, for one the kernel accepted just before, closed without an answer."""
    async with asyncio.timeout(within):
        while True:
            async with httpx.AsyncClient() as probe:  # a new connection each time
                try:
                    await probe.get(url)
                except (httpx.ConnectError, httpx.RemoteProtocolError):
                    return
            await asyncio.sleep(0.05)


async def log_rows(url: str, reason: str) -> int:
    connection = await asyncpg.connect(url)
    try:
        count: int = await connection.fetchval(
            "SELECT count(*) FROM treegate_transition WHERE reason = $1", reason
        )
        return count
    finally:
        await connection.close()


async def test_an_exhausted_pool_with_slow_queries_answers_503_within_the_checkout_timeout(
    deployment: Deployment, server_log: Path
) -> None:
    env = deployment.env | {
        "TREEGATE_DB_POOL_SIZE": "2",
        "TREEGATE_DB_MAX_OVERFLOW": "0",
        "TREEGATE_DB_POOL_TIMEOUT": "0.5",
        "TREEGATE_DB_LOCK_TIMEOUT_MS": "30000",
    }
    with server_process(env, server_log) as server:
        async with client(server.base, deployment.key) as http:
            async with locked(deployment.url):
                slow = [
                    asyncio.create_task(http.post("/graphql", json={"query": PAGE}))
                    for _ in range(2)
                ]
                await waiting_backends(deployment.url, 2)
                started = time.monotonic()
                refused = await http.post("/graphql", json={"query": PAGE})
                elapsed = time.monotonic() - started
                slow_at_refusal = [task for task in slow if task.done()]
                ready = await http.get("/readyz")
            answered = await asyncio.gather(*slow)
            after = await http.post("/graphql", json={"query": PAGE})
    print(f"pool exhausted: 503 after {elapsed * 1000:.0f} ms (checkout timeout 500 ms)")
    assert refused.status_code == 503, refused.text
    assert refused.json()["errors"][0]["extensions"]["reason"] == "pool_timeout"
    # It waited the checkout timeout, and gave up while both connections were still held.
    assert elapsed >= 0.5, elapsed
    assert slow_at_refusal == []
    assert ready.status_code == 200
    assert [a.status_code for a in answered] == [200, 200]
    assert "errors" not in after.json()


async def test_sigterm_under_load_lets_every_request_in_flight_finish_then_exits_0(
    deployment: Deployment, server_log: Path
) -> None:
    initial = await tree_states(deployment.url)
    env = deployment.env | {
        "TREEGATE_SHUTDOWN_GRACE_S": "15",
        "TREEGATE_DB_LOCK_TIMEOUT_MS": "30000",
        # A connection for each request held by the lock (none queues for the pool).
        "TREEGATE_DB_POOL_SIZE": str(CLIENTS),
    }
    with server_process(env, server_log) as server:
        load = MixedLoad(server.base, deployment.key, sorted(initial), clients=CLIENTS)
        async with client(server.base, deployment.key) as http:
            async with locked(deployment.url):
                # Twenty requests, each held inside the server by the lock.
                in_flight = [
                    asyncio.create_task(load.one(http, random.Random(n))) for n in range(CLIENTS)
                ]
                await waiting_backends(deployment.url, CLIENTS)
                server.process.send_signal(signal.SIGTERM)
                # It takes no new connection once asked to stop.
                await refused_connections(f"{server.base}/healthz")
                assert server.process.poll() is None  # still finishing what it holds
            calls: list[Call] = await asyncio.gather(*in_flight)
        exit_status = await asyncio.to_thread(server.process.wait, 20)
    assert exit_status == 0
    assert [c.status for c in calls] == [200] * CLIENTS, tally(calls)
    assert not [c for c in calls if c.failed], tally(calls)
    # The pool was closed on the way out: no backend of Treegate's is left.
    connection = await asyncpg.connect(deployment.url)
    try:
        left = await connection.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'treegate'"
        )
    finally:
        await connection.close()
    assert left == 0
    invariants = await check_invariants(deployment.url, initial, calls)
    assert invariants.ok, invariants.violations
