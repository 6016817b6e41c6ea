"""The pool's gate (`db.engine.Gate`): first come, first served, bounded waits."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.exc import TimeoutError as PoolTimeout

from db.engine import Gate


async def test_places_go_to_waiters_in_arrival_order_and_nobody_overtakes() -> None:
    gate = Gate(width=2, timeout=5)
    await gate.enter()
    await gate.enter()
    order: list[int] = []
    admitted = asyncio.Queue[int]()

    async def waiter(n: int) -> None:
        await gate.enter()
        order.append(n)
        admitted.put_nowait(n)

    tasks = [asyncio.create_task(waiter(n)) for n in range(5)]
    await asyncio.sleep(0)  # each task runs up to its wait, in the order they were made
    assert gate.waiting == 5
    for expected in range(5):
        gate.leave()
        # A newcomer that finds a place just freed does not take it from the waiters.
        late = asyncio.create_task(gate.enter())
        assert await admitted.get() == expected
        assert not late.done()
        late.cancel()
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3, 4]


async def test_a_wait_past_the_timeout_ends_as_the_pools_would() -> None:
    gate = Gate(width=1, timeout=0.05)
    await gate.enter()
    with pytest.raises(PoolTimeout, match="TREEGATE_DB_POOL_TIMEOUT"):
        await gate.enter()
    gate.leave()
    await gate.enter()  # the expired waiter holds no place


async def test_a_waiter_cancelled_after_being_handed_a_place_passes_it_on() -> None:
    gate = Gate(width=1, timeout=5)
    await gate.enter()
    first = asyncio.create_task(gate.enter())
    second = asyncio.create_task(gate.enter())
    await asyncio.sleep(0)
    assert gate.waiting == 2
    gate.leave()  # handed to `first`...
    first.cancel()  # ...which is cancelled before it runs
    await asyncio.wait_for(second, 1)  # the place went on to `second`
    assert first.cancelled()
