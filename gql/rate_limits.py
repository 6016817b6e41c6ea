"""Request rate limits: a token bucket per API key, and per client address for keyless callers.

A rate is written `N/s`, `N/min` or `N/h`, or `unlimited`. Its bucket holds N tokens (a burst
of N requests is allowed) and refills at N per period; each GraphQL request takes one token,
and a request that finds none is answered 429 with `Retry-After` (the whole seconds until a
token is back) and the code `RATE_LIMITED`. Only /graphql is limited: the probes and /metrics
never are.

The rate of a keyed caller is its key's own (`treegate keys create --rate-limit`, stored with
the key) or else its role's default (`TREEGATE_RATE_LIMITS`); a keyless caller's is the
`anonymous` default, one bucket per client address.

Buckets live in the serving process (with N processes behind a load balancer, a caller gets at
most N times its rate), or, with `TREEGATE_RATE_LIMIT_REDIS_URL`, in Redis, shared by every
process: `SharedBuckets` takes a token in one atomic script on Redis's clock. While Redis cannot
be reached, each process limits with its own buckets and tries Redis again a second later.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from domain.transitions import Role

logger = logging.getLogger("treegate.rate_limits")

UNLIMITED = "unlimited"
PERIODS = {"s": 1.0, "min": 60.0, "h": 3600.0}
"""The periods a rate may be written in, by their unit, in seconds."""
ANONYMOUS = "anonymous"
"""The callers without a key, in `TREEGATE_RATE_LIMITS` and in the metrics' `role` label."""
CALLER_CLASSES = (ANONYMOUS, *(role.name.lower() for role in Role))
"""Whom `TREEGATE_RATE_LIMITS` may name (`caller_class`)."""
RATE_LIMITED = "RATE_LIMITED"
MAX_BUCKETS = 100_000
"""Buckets one process keeps; beyond, the full ones (idle callers) are forgotten."""
STORE_TIMEOUT_S = 0.1
"""The longest a request waits for Redis before its process limits it on its own."""
STORE_RETRY_S = 1.0
"""After Redis failed, how long a process limits on its own before it asks Redis again."""


@dataclass(frozen=True, slots=True)
class Rate:
    """`count` requests per `unit` (a key of `PERIODS`): a bucket of `count` tokens."""

    count: int
    unit: str

    @property
    def per_second(self) -> float:
        return self.count / PERIODS[self.unit]

    def __str__(self) -> str:
        return f"{self.count}/{self.unit}"


def caller_class(key_name: str | None, role: Role | None) -> str:
    """What the defaults and the metrics call a caller: `anonymous` without a key, else its
    key's role."""
    return ANONYMOUS if key_name is None or role is None else role.name.lower()


def rate_text(rate: Rate | None) -> str:
    """A rate's canonical text, as stored with a key and as `parse_rate` reads it back."""
    return UNLIMITED if rate is None else str(rate)


@lru_cache(maxsize=256)
def parse_rate(text: str) -> Rate | None:
    """The rate `text` writes (`N/s`, `N/min`, `N/h`), None for `unlimited`; ValueError with
    what is accepted otherwise."""
    cleaned = text.strip().lower()
    if cleaned == UNLIMITED:
        return None
    count, slash, unit = cleaned.partition("/")
    if slash and unit.strip() in PERIODS and count.strip().isdigit() and int(count) > 0:
        return Rate(int(count), unit.strip())
    raise ValueError(
        f"{text!r} is not a rate: write N/s, N/min or N/h with a whole N above 0, or {UNLIMITED}"
    )


def parse_defaults(text: str) -> dict[str, Rate | None]:
    """`TREEGATE_RATE_LIMITS`: comma-separated `who=rate`, `who` being `anonymous` or a role."""
    found: dict[str, Rate | None] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        who, equals, rate = part.partition("=")
        who = who.strip().lower()
        if not equals or who not in CALLER_CLASSES:
            raise ValueError(
                f"{part.strip()!r}: write who=rate, who being one of {', '.join(CALLER_CLASSES)}"
            )
        if who in found:
            raise ValueError(f"{who} is given twice")
        found[who] = parse_rate(rate)
    return found


def describe_defaults(defaults: Mapping[str, Rate | None]) -> str:
    """The canonical text of parsed defaults (what `parse_defaults` reads back)."""
    return ",".join(f"{who}={rate_text(rate)}" for who, rate in defaults.items())


class RateLimiter:
    """The rate each caller gets, and the buckets: the process's own, or Redis's (`shared`)."""

    def __init__(
        self,
        defaults: Mapping[str, Rate | None],
        clock: Callable[[], float] = time.monotonic,
        max_buckets: int = MAX_BUCKETS,
        shared: SharedBuckets | None = None,
    ) -> None:
        self.defaults = dict(defaults)
        self.clock = clock
        self.max_buckets = max_buckets
        self.shared = shared
        self._buckets: dict[tuple[str, str], list[float]] = {}
        """(kind, who) → [tokens, when counted, when full again]."""

    def rate_for(self, key_name: str | None, role: Role | None, own: str | None) -> Rate | None:
        """A caller's rate: its key's own if set, else its role's default (keyless callers:
        the anonymous one); None: unlimited."""
        if own is not None:
            return parse_rate(own)
        return self.defaults.get(caller_class(key_name, role))

    async def admit(self, who: tuple[str, str], rate: Rate) -> float:
        """Take a token from `who`'s bucket, shared if there is a shared store that answers:
        0 if there was one, else the seconds until there is."""
        if self.shared is not None:
            wait = await self.shared.take(who, rate)
            if wait is not None:
                return wait
        return self.take(who, rate)

    def take(self, who: tuple[str, str], rate: Rate) -> float:
        """Take a token from `who`'s bucket in this process: 0 if there was one, else the
        seconds until there is (nothing taken)."""
        now = self.clock()
        bucket = self._buckets.get(who)
        if bucket is None:
            if len(self._buckets) >= self.max_buckets:
                self._forget_idle(now)
            bucket = self._buckets[who] = [float(rate.count), now, now]
        per_second = rate.per_second
        capacity = float(rate.count)
        tokens = min(capacity, bucket[0] + (now - bucket[1]) * per_second)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / per_second
        bucket[0], bucket[1], bucket[2] = tokens, now, now + (capacity - tokens) / per_second
        return wait

    def _forget_idle(self, now: float) -> None:
        """Drop the buckets that have refilled (their caller would start full anyway); if none
        has, the older half."""
        full = [who for who, bucket in self._buckets.items() if bucket[2] <= now]
        if not full:
            full = list(self._buckets)[: len(self._buckets) // 2 or 1]
        for who in full:
            del self._buckets[who]

    def __len__(self) -> int:
        return len(self._buckets)


TAKE_SCRIPT = """
local capacity = tonumber(ARGV[1])
local per_ms = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + tonumber(clock[2]) / 1000
local bucket = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(bucket[1]) or capacity
local at = tonumber(bucket[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * per_ms)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / per_ms end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - tokens) / per_ms) + 1000)
return tostring(wait / 1000)
"""
"""Take a token from the bucket KEYS[1] (ARGV: its size, its refill in tokens per millisecond):
atomic, on Redis's clock (the same for every process); the bucket expires once full again.
Returns the seconds until a token, 0 when one was taken, as text (Lua numbers would come back
truncated to integers)."""

KEY_PREFIX = "treegate:rate:"


class SharedBuckets:
    """The buckets in Redis, for every process: `take` answers None when Redis cannot, and the
    caller limits with its own buckets meanwhile."""

    def __init__(
        self,
        url: str,
        failed: Callable[[], None] = lambda: None,
        timeout: float = STORE_TIMEOUT_S,
        retry_s: float = STORE_RETRY_S,
    ) -> None:
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        self.client: Any = Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            # A request waits for one try: a failure is answered from the process's buckets.
            retry=Retry(NoBackoff(), 0),
        )
        self.script = self.client.register_script(TAKE_SCRIPT)
        self.failed = failed
        self.retry_s = retry_s
        self.down_until: float | None = None
        """While Redis is taken for down: when to ask it again."""

    async def take(self, who: tuple[str, str], rate: Rate) -> float | None:
        from redis.exceptions import RedisError

        if self.down_until is not None and time.monotonic() < self.down_until:
            return None
        try:
            answer = await self.script(
                keys=[f"{KEY_PREFIX}{who[0]}:{who[1]}"],
                args=[rate.count, rate.per_second / 1000],
            )
        except (RedisError, OSError, TimeoutError) as exc:
            if self.down_until is None:
                logger.warning(
                    "rate limits: Redis cannot be reached (%s); each process limits on its own "
                    "until it can",
                    type(exc).__name__,
                )
            self.down_until = time.monotonic() + self.retry_s
            self.failed()
            return None
        if self.down_until is not None:
            self.down_until = None
            logger.info("rate limits: Redis is back; buckets are shared again")
        return float(answer)

    async def close(self) -> None:
        await self.client.aclose()


def retry_after(wait_s: float) -> int:
    """`Retry-After` in whole seconds (at least 1): the token is back by then."""
    return max(1, math.ceil(wait_s))
