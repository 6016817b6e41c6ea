"""Rate limits on real databases: a key over its rate is answered 429 while another key is
served, keyless callers are limited per address, the bucket refills (on a clock the test
moves, not by waiting), the probes and /metrics are never limited, and the refusals are
counted by role."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from db import keys
from domain.states import State
from domain.transitions import Role
from gql.rate_limits import (
    RATE_LIMITED,
    Rate,
    RateLimiter,
    parse_defaults,
    parse_rate,
    retry_after,
)
from gql.settings import Settings
from tests.factories import TreeSpec, add_tree
from tests.graphql import serving
from tests.mutations.support import snapshot

COUNTS = {"query": "{ treeStateCounts { state count } }"}
HALT = "mutation($id: UUID!) { haltTree(input: {messageTreeId: $id}) { __typename } }"
SLOW_KEY = "rate-test-slow-key"
OTHER_KEY = "rate-test-other-key"
MODERATOR_KEY = "rate-test-moderator-key"


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@asynccontextmanager
async def client_from(
    app: Starlette, address: str = "127.0.0.1"
) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://treegate.test") as client:
        yield client


async def add_keys(engine: AsyncEngine) -> None:
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        await keys.insert(conn, "slow", Role.READER, SLOW_KEY, now, rate_limit="2/h")
        await keys.insert(conn, "other", Role.READER, OTHER_KEY, now)
        await keys.insert(conn, "moderator", Role.MODERATOR, MODERATOR_KEY, now, "1/h")


def by_key(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def check_429(response: httpx.Response, retry: int) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["retry-after"] == str(retry)
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == RATE_LIMITED
    assert "too many requests" in error["message"]
    assert "data" not in response.json()


def rate_limited_counts(text: str) -> dict[str, float]:
    return {
        sample.labels["role"]: sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "treegate_rate_limited"
        for sample in family.samples
        if sample.name.endswith("_total")
    }


async def test_a_key_over_its_rate_gets_429_while_another_key_is_served(
    settings: Settings, engine: AsyncEngine
) -> None:
    await add_keys(engine)
    # The role's default (3 an hour) for `other`; `slow` has 2 an hour of its own.
    async with serving(settings, rate_limits="reader=3/h") as app, client_from(app) as client:

        async def send(key: str, times: int) -> list[httpx.Response]:
            return [
                await client.post("/graphql", json=COUNTS, headers=by_key(key))
                for _ in range(times)
            ]

        slow, other = await asyncio.gather(send(SLOW_KEY, 4), send(OTHER_KEY, 3))
        assert [r.status_code for r in slow] == [200, 200, 429, 429]
        assert [r.status_code for r in other] == [200, 200, 200]
        assert all("errors" not in r.json() for r in (*slow[:2], *other))
        for refused in slow[2:]:
            check_429(refused, 1800)  # one token per half hour
            assert "this API key may send 2/h" in refused.json()["errors"][0]["message"]
        # Its role's default applies to `other` too: its fourth request is refused.
        check_429(await client.post("/graphql", json=COUNTS, headers=by_key(OTHER_KEY)), 1200)
        counted = rate_limited_counts((await client.get("/metrics")).text)
    assert counted == {"reader": 3.0}


async def test_the_bucket_refills_at_its_rate_up_to_its_size(
    settings: Settings, engine: AsyncEngine
) -> None:
    await add_keys(engine)
    clock = Clock()
    async with serving(settings, rate_limits="reader=2/s") as app, client_from(app) as client:
        app.state.endpoint.limiter.clock = clock

        async def status() -> int:
            response = await client.post("/graphql", json=COUNTS, headers=by_key(OTHER_KEY))
            return response.status_code

        assert [await status() for _ in range(3)] == [200, 200, 429]
        clock.now += 0.4  # 0.8 of a token
        refused = await client.post("/graphql", json=COUNTS, headers=by_key(OTHER_KEY))
        check_429(refused, 1)
        clock.now += 0.1  # a whole token
        assert [await status() for _ in range(2)] == [200, 429]
        clock.now += 3600  # an hour idle fills the bucket to its size, no more
        assert [await status() for _ in range(3)] == [200, 200, 429]


async def test_keyless_callers_are_limited_per_address_and_the_probes_never(
    settings: Settings, engine: AsyncEngine
) -> None:
    async with (
        serving(settings, rate_limits="anonymous=2/min") as app,
        client_from(app, "10.0.0.1") as first,
        client_from(app, "10.0.0.2") as second,
    ):
        statuses = [(await first.post("/graphql", json=COUNTS)).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        refused = await first.get("/graphql", params=COUNTS)
        check_429(refused, 30)
        assert "this address may send 2/min" in refused.json()["errors"][0]["message"]
        # Another address has a bucket of its own.
        assert (await second.post("/graphql", json=COUNTS)).status_code == 200
        for path in ("/healthz", "/readyz", "/metrics") * 5:
            assert (await first.get(path)).status_code == 200, path
        counted = rate_limited_counts((await first.get("/metrics")).text)
    assert counted == {"anonymous": 2.0}


async def test_a_cached_get_and_a_revalidation_take_a_token_too(
    settings: Settings, engine: AsyncEngine
) -> None:
    await add_keys(engine)
    async with serving(settings, response_cache_s=3600.0) as app, client_from(app) as client:
        first = await client.get("/graphql", params=COUNTS, headers=by_key(SLOW_KEY))
        etag = first.headers["etag"]
        again = await client.get(
            "/graphql", params=COUNTS, headers={**by_key(SLOW_KEY), "If-None-Match": etag}
        )
        assert (first.status_code, again.status_code) == (200, 304)
        refused = await client.get(
            "/graphql", params=COUNTS, headers={**by_key(SLOW_KEY), "If-None-Match": etag}
        )
        check_429(refused, 1800)
        assert "etag" not in refused.headers
        # The shared answer is still served to a caller with tokens.
        other = await client.get("/graphql", params=COUNTS, headers=by_key(OTHER_KEY))
        assert (other.status_code, other.headers["etag"]) == (200, etag)


async def test_a_refused_mutation_writes_nothing(settings: Settings, engine: AsyncEngine) -> None:
    await add_keys(engine)
    async with engine.begin() as conn:
        tree = await add_tree(conn, TreeSpec(state=State.GROWING))
    variables = {"id": str(tree)}
    async with serving(settings) as app, client_from(app) as client:
        halted = await client.post(
            "/graphql", json={"query": HALT, "variables": variables}, headers=by_key(MODERATOR_KEY)
        )
        assert halted.json()["data"]["haltTree"]["__typename"] == "TransitionApplied"
        before = await snapshot(engine)
        refused = await client.post(
            "/graphql", json={"query": HALT, "variables": variables}, headers=by_key(MODERATOR_KEY)
        )
        check_429(refused, 3600)
        assert await snapshot(engine) == before
        counted = rate_limited_counts((await client.get("/metrics")).text)
    assert counted == {"moderator": 1.0}


async def test_a_429_carries_cors_headers_for_an_allowed_origin(
    settings: Settings, engine: AsyncEngine
) -> None:
    origin = "http://localhost:3000"
    async with (
        serving(settings, rate_limits="anonymous=1/h", cors_origins=origin) as app,
        client_from(app) as client,
    ):
        headers = {"Origin": origin}
        assert (await client.post("/graphql", json=COUNTS, headers=headers)).status_code == 200
        refused = await client.post("/graphql", json=COUNTS, headers=headers)
    check_429(refused, 3600)
    assert refused.headers["access-control-allow-origin"] == origin
    assert "Retry-After" in refused.headers["access-control-expose-headers"]


async def test_without_limits_no_bucket_is_kept(settings: Settings, engine: AsyncEngine) -> None:
    await add_keys(engine)
    async with serving(settings) as app, client_from(app) as client:
        answers = [
            await client.post("/graphql", json=COUNTS, headers=by_key(OTHER_KEY)) for _ in range(30)
        ]
        answers += [await client.post("/graphql", json=COUNTS) for _ in range(30)]
        limiter: RateLimiter = app.state.endpoint.limiter
    assert {a.status_code for a in answers} == {200}
    assert len(limiter) == 0


# --- the rules, without a server ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("10/s", Rate(10, "s")),
        (" 600 / MIN ", Rate(600, "min")),
        ("1/h", Rate(1, "h")),
        ("unlimited", None),
    ],
)
def test_rates_are_read(text: str, rate: Rate | None) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["", "10", "0/s", "-1/s", "1.5/s", "10/day", "ten/s", "/s"])
def test_a_malformed_rate_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a rate: write N/s, N/min or N/h"):
        parse_rate(text)


def test_defaults_name_known_callers_once() -> None:
    assert parse_defaults("anonymous=5/s, Admin=unlimited,") == {
        "anonymous": Rate(5, "s"),
        "admin": None,
    }
    with pytest.raises(ValueError, match="who being one of anonymous, reader"):
        parse_defaults("everyone=5/s")
    with pytest.raises(ValueError, match="reader is given twice"):
        parse_defaults("reader=5/s,reader=6/s")


def test_a_keys_own_rate_wins_over_its_roles() -> None:
    limiter = RateLimiter(parse_defaults("anonymous=1/s,reader=2/s"))
    assert limiter.rate_for(None, Role.READER, None) == Rate(1, "s")
    assert limiter.rate_for("k", Role.READER, None) == Rate(2, "s")
    assert limiter.rate_for("k", Role.READER, "unlimited") is None
    assert limiter.rate_for("k", Role.READER, "9/min") == Rate(9, "min")
    assert limiter.rate_for("k", Role.ADMIN, None) is None


def test_buckets_are_bounded_by_forgetting_idle_callers_first() -> None:
    clock = Clock()
    limiter = RateLimiter({}, clock=clock, max_buckets=3)
    rate = Rate(2, "s")
    for who in ("a", "b", "c"):
        assert limiter.take(("address", who), rate) == 0
    clock.now += 0.25  # "a" to "c" are half a token short of full
    assert limiter.take(("address", "c"), rate) == 0
    clock.now += 0.3  # "a" and "b" are full again, "c" is not
    assert limiter.take(("address", "d"), rate) == 0
    assert len(limiter) == 2  # a and b forgotten, c (in debt) kept
    # Nobody idle: the older half goes.
    assert limiter.take(("address", "e"), rate) == 0
    assert limiter.take(("address", "f"), rate) == 0
    assert len(limiter) == 3


def test_retry_after_is_whole_seconds_and_never_zero() -> None:
    assert [retry_after(s) for s in (0.001, 0.5, 1.0, 1.01, 1799.9)] == [1, 1, 1, 2, 1800]
