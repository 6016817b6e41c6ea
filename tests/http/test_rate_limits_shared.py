"""Rate limits shared by several processes through a real Redis (`TREEGATE_RATE_LIMIT_REDIS_URL`):
two apps on one database count a key's requests together, the shared bucket refills, and while
Redis is down or hangs each process limits on its own and answers at once."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as redis
from sqlalchemy.ext.asyncio import AsyncEngine

from db import keys
from domain.transitions import Role
from gql.rate_limits import KEY_PREFIX, SharedBuckets
from gql.settings import Settings
from tests.conftest import SilentServer
from tests.graphql import serving
from tests.redis_server import redis_server

COUNTS = {"query": "{ treeStateCounts { state count } }"}
DRAIN = 100
"""Requests a test sends at most to empty a bucket of 5 that refills at 5 a second: any machine
answers them faster than 5 a second."""
REFILL_DEADLINE_S = 30.0
"""How long a test waits for a token due in a fifth of a second, at most (a broken run)."""


@asynccontextmanager
async def clients(
    settings: Settings, count: int, **fields: Any
) -> AsyncIterator[list[httpx.AsyncClient]]:
    """`count` apps (as many processes) on the same database, a client for each."""
    async with AsyncExitStack() as stack:
        made = []
        for _ in range(count):
            app = await stack.enter_async_context(serving(settings, **fields))
            transport = httpx.ASGITransport(app=app)
            made.append(
                await stack.enter_async_context(
                    httpx.AsyncClient(transport=transport, base_url="http://treegate.test")
                )
            )
        yield made


async def new_key(engine: AsyncEngine, rate: str | None) -> dict[str, str]:
    """A reader key of a name no other test (nor an earlier run on the same Redis) used; its
    name is in the headers' `name`, not sent (the endpoint reads only the key's header)."""
    secret, name = f"tg_{uuid.uuid4().hex}", f"shared-{uuid.uuid4().hex[:12]}"
    async with engine.begin() as conn:
        await keys.insert(conn, name, Role.READER, secret, datetime.now(UTC), rate)
    return {"X-API-Key": secret, "X-Test-Key-Name": name}


async def status(client: httpx.AsyncClient, key: dict[str, str]) -> int:
    return (await client.post("/graphql", json=COUNTS, headers=key)).status_code


def metric(text: str, name: str) -> float:
    lines = [line for line in text.splitlines() if line.startswith(f"{name} ")]
    return float(lines[0].split()[1]) if lines else 0.0


async def test_two_processes_share_a_keys_bucket(
    settings: Settings, engine: AsyncEngine, redis_url: str
) -> None:
    key = await new_key(engine, "3/h")
    async with clients(settings, 2, rate_limit_redis_url=redis_url) as (first, second):
        served = [
            await status(first, key),
            await status(second, key),
            await status(first, key),
            await status(second, key),
            await status(first, key),
        ]
        refused = await second.post("/graphql", json=COUNTS, headers=key)
    assert served == [200, 200, 200, 429, 429]
    assert refused.status_code == 429
    assert 1195 <= int(refused.headers["retry-after"]) <= 1200  # a token per 20 minutes
    assert refused.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"


async def test_without_redis_each_process_has_its_own_bucket(
    settings: Settings, engine: AsyncEngine
) -> None:
    """What the README says of per-process limits: two processes admit twice the rate."""
    key = await new_key(engine, "3/h")
    async with clients(settings, 2) as (first, second):
        statuses = [await status(client, key) for client in (first, second) * 4]
    assert statuses == [200] * 6 + [429] * 2


async def test_a_shared_bucket_refills_and_expires_once_full(
    settings: Settings, engine: AsyncEngine, redis_url: str
) -> None:
    key = await new_key(engine, "5/s")
    async with clients(settings, 2, rate_limit_redis_url=redis_url) as (first, second):
        sent = 0
        while await status(first if sent % 2 else second, key) == 200:
            sent += 1
            assert sent < DRAIN, "the bucket never ran dry"
        assert sent >= 5  # its size, at least (more if it refilled meanwhile)
        # Wait for the event: the next token, through either process.
        deadline = time.monotonic() + REFILL_DEADLINE_S
        while await status(first, key) != 200:
            assert time.monotonic() < deadline, "the bucket never refilled"
            await asyncio.sleep(0.02)
    store = redis.Redis.from_url(redis_url)
    try:
        ttl_ms = await store.pttl(f"{KEY_PREFIX}key:{key['X-Test-Key-Name']}")
    finally:
        await store.aclose()
    # It expires at most a second after it would be full again (5 tokens at 5/s: 1 s).
    assert 0 < ttl_ms <= 2000


async def test_while_redis_is_down_each_process_limits_alone_then_shares_again(
    settings: Settings,
    engine: AsyncEngine,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    key = await new_key(engine, "2/h")
    with redis_server(tmp_path) as url:
        pass  # started and stopped: a port where Redis was and is no more
    caplog.set_level(logging.INFO, "treegate.rate_limits")
    async with serving(settings, rate_limit_redis_url=url) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            shared: SharedBuckets = app.state.endpoint.limiter.shared
            shared.retry_s = 3600.0  # no second try within the test, however slow the machine
            statuses = [await status(client, key) for _ in range(3)]
            metrics = (await client.get("/metrics")).text
            assert statuses == [200, 200, 429]  # the process's own bucket
            # One try, then the process's own buckets until the retry: only the first request
            # waited for Redis, and the outage is logged once.
            assert metric(metrics, "treegate_rate_limit_store_failures_total") == 1.0
            warnings = [r for r in caplog.records if "Redis cannot be reached" in r.message]
            assert len(warnings) == 1
            # Redis back on the same port, and the process asks it at the next request.
            port = int(url.rsplit(":", 1)[1].split("/")[0])
            with redis_server(tmp_path, port):
                shared.down_until = 0.0
                assert await status(client, key) == 200  # a fresh shared bucket
                assert shared.down_until is None
                assert any("Redis is back" in r.message for r in caplog.records)


async def test_a_hung_redis_delays_no_request_beyond_its_timeout(
    settings: Settings, engine: AsyncEngine, silent_server: SilentServer
) -> None:
    key = await new_key(engine, "2/h")
    url = silent_server.url.replace("postgresql://postgres@", "redis://").rsplit("/", 1)[0]
    async with serving(settings, rate_limit_redis_url=url) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            statuses = [await status(client, key) for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert silent_server.connections() >= 1  # Redis was asked, and never answered


@pytest.mark.parametrize("url", ["127.0.0.1:6379", "http://redis:6379", "postgresql://x/y"])
def test_the_redis_url_must_be_a_redis_url(url: str) -> None:
    with pytest.raises(ValueError, match="write redis://host"):
        Settings(rate_limit_redis_url=url)
