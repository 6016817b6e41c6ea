"""The shared count cache: one computation per window, shared by concurrent requests."""

from __future__ import annotations

import asyncio

import pytest

from resolvers.caches import SharedCache


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_concurrent_requests_share_one_computation() -> None:
    cache = SharedCache(ttl=1.0)
    calls = 0
    gate = asyncio.Event()

    async def compute() -> int:
        nonlocal calls
        calls += 1
        await gate.wait()
        return 42

    waiting = [asyncio.create_task(cache.get("k", compute)) for _ in range(10)]
    await asyncio.sleep(0)
    gate.set()
    assert await asyncio.gather(*waiting) == [42] * 10
    assert calls == 1
    assert (cache.hits, cache.misses) == (9, 1)


async def test_a_value_lives_for_the_window_then_is_computed_again() -> None:
    clock = Clock()
    cache = SharedCache(ttl=1.0, clock=clock)
    values = iter([1, 2, 3])

    async def compute() -> int:
        return next(values)

    assert await cache.get("k", compute) == 1
    clock.now += 0.9
    assert await cache.get("k", compute) == 1
    clock.now += 0.2
    assert await cache.get("k", compute) == 2
    cache.clear()  # a write
    assert await cache.get("k", compute) == 3


async def test_keys_are_separate_and_zero_ttl_turns_it_off() -> None:
    cache = SharedCache(ttl=1.0)
    off = SharedCache(ttl=0)
    counter = iter(range(100))

    async def compute() -> int:
        return next(counter)

    assert [await cache.get(k, compute) for k in ("a", "b", "a")] == [0, 1, 0]
    assert [await off.get("a", compute) for _ in range(2)] == [2, 3]


async def test_a_failure_reaches_the_waiters_and_is_not_kept() -> None:
    cache = SharedCache(ttl=10.0)
    gate = asyncio.Event()
    attempts = 0

    async def failing() -> int:
        nonlocal attempts
        attempts += 1
        await gate.wait()
        raise RuntimeError("database went away")

    first = asyncio.create_task(cache.get("k", failing))
    second = asyncio.create_task(cache.get("k", failing))
    await asyncio.sleep(0)
    gate.set()
    for task in (first, second):
        with pytest.raises(RuntimeError):
            await task
    assert attempts == 1

    async def working() -> int:
        return 7

    assert await cache.get("k", working) == 7


async def test_waiters_recompute_when_the_computing_request_is_cancelled() -> None:
    cache = SharedCache(ttl=10.0)
    gate = asyncio.Event()

    async def slow() -> int:
        await gate.wait()
        return 1

    async def quick() -> int:
        return 2

    first = asyncio.create_task(cache.get("k", slow))
    await asyncio.sleep(0)
    second = asyncio.create_task(cache.get("k", quick))
    await asyncio.sleep(0)
    first.cancel()
    assert await second == 2


async def test_old_entries_are_evicted_beyond_the_bound() -> None:
    clock = Clock()
    cache = SharedCache(ttl=1.0, max_entries=3, clock=clock)

    async def compute() -> int:
        return 0

    for key in range(10):
        await cache.get(key, compute)
        clock.now += 0.5
    assert len(cache._entries) <= 3
