"""The lottery's guarantees, checked after a burst of concurrent draws.

`Pool` is what a test seeded (so expectations never come from the code under test);
`Draw` is one caller's answer, from the use case or from the API; `violations()` lists
every broken guarantee in words, so a failure says what went wrong and a pass can be
reported with its numbers.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from domain.states import State
from tests.lottery.support import (
    DRAW_OPERATION,
    GROWING,
    WAITING,
    TreeRow,
    add_author,
    add_trees,
    counts,
    last_sequence,
    log_rows,
    trees,
)

LANG = "en"


@dataclass
class Pool:
    """A language's seeded trees: the candidates, plus trees the lottery must leave alone."""

    eligible: set[uuid.UUID] = field(default_factory=set)
    growing: int = 0
    before: dict[uuid.UUID, TreeRow] = field(default_factory=dict)
    sequence: int = 0


@dataclass(frozen=True)
class Draw:
    actor: str
    asked: int
    drawn: tuple[uuid.UUID, ...]
    growing_before: int
    growing_after: int
    message: str


async def all_at_once(calls: Iterable[Coroutine[Any, Any, Draw]], within: float) -> list[Draw]:
    """Run the calls concurrently, in at most `within` seconds; the first failure cancels the
    others, so a failing test leaves no callers waiting at a barrier or requests in flight."""
    async with asyncio.timeout(within), asyncio.TaskGroup() as group:
        tasks = [group.create_task(call) for call in calls]
    return [task.result() for task in tasks]


def from_api(actor: str, asked: int, response: httpx.Response) -> Draw:
    """A caller's answer from a drawPromptLottery response (which must be a LotteryDrawn)."""
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    result = body["data"]["drawPromptLottery"]
    assert result["__typename"] == "LotteryDrawn", result
    return Draw(
        actor=actor,
        asked=asked,
        drawn=tuple(uuid.UUID(tree["messageTreeId"]) for tree in result["drawn"]),
        growing_before=result["growingBefore"],
        growing_after=result["growingAfter"],
        message=result["message"],
    )


async def seed_pool(conn: AsyncConnection, waiting: int, growing: int = 2) -> Pool:
    """`waiting` candidates of LANG over five authors of different weights, `growing` growing
    trees, and look-alikes: ineligible waiting trees, another language, other states."""
    pool = Pool(growing=growing)
    authors = [await add_author(conn, stats={"month": r}) for r in (0, 0, 1, 3, 7)]
    for i, author in enumerate(authors):
        share = waiting // len(authors) + (1 if i < waiting % len(authors) else 0)
        pool.eligible |= set(await add_trees(conn, share, author=author, lang=LANG))
    await add_trees(conn, growing, author=authors[0], lang=LANG, state=GROWING)
    await add_trees(conn, 3, author=await add_author(conn, enabled=False), lang=LANG)
    await add_trees(conn, 3, author=authors[1], lang=LANG, review_result=None)
    await add_trees(conn, 10, author=authors[2], lang="de")
    for state in (State.INITIAL_PROMPT_REVIEW, State.RANKING, State.HALTED_BY_MODERATOR):
        await add_trees(conn, 2, author=authors[3], lang=LANG, state=state)
    return pool


async def prepare(engine: AsyncEngine, waiting: int, growing: int = 2) -> Pool:
    async with engine.begin() as conn:
        pool = await seed_pool(conn, waiting, growing)
    pool.before = await trees(engine)
    pool.sequence = await last_sequence(engine)
    return pool


async def violations(engine: AsyncEngine, pool: Pool, cap: int, draws: list[Draw]) -> list[str]:
    """Every broken guarantee after `draws` (empty when all hold)."""
    found: list[str] = []
    every = [tree_id for d in draws for tree_id in d.drawn]
    drawn = set(every)
    if len(every) != len(drawn):
        twice = [t for t, n in Counter(every).items() if n > 1]
        found.append(f"{len(twice)} trees drawn more than once: {twice[:3]}")
    if not drawn <= pool.eligible:
        found.append(f"{len(drawn - pool.eligible)} drawn trees were not candidates")

    # Serialized draws draw greedily: the total is fixed by the cap, the candidates and
    # what was asked, whatever the interleaving.
    expected = min(max(cap - pool.growing, 0), len(pool.eligible), sum(d.asked for d in draws))
    if len(drawn) != expected:
        found.append(f"drew {len(drawn)} trees in all, expected {expected}")

    after = await trees(engine)
    growing_now = sum(1 for t in after.values() if t.lang == LANG and t.state is GROWING)
    if growing_now > max(cap, pool.growing):
        found.append(f"{growing_now} growing trees exceed the cap {cap}")
    if growing_now - pool.growing != len(drawn):
        found.append(f"growing rose by {growing_now - pool.growing}, drawn {len(drawn)}")

    want = counts(pool.before)
    want[(LANG, WAITING)] -= len(drawn)
    want[(LANG, GROWING)] += len(drawn)
    got = counts(after)
    if len(after) != len(pool.before) or +got != +want:
        found.append(f"trees per (lang, state) not conserved: {dict(got)} != {dict(want)}")
    for tree_id in drawn:
        row = after.get(tree_id)
        if row is None or row.state is not GROWING or not row.active or row.won is None:
            found.append(f"drawn tree {tree_id} is not growing, active and dated: {row}")
    changed = {t for t in pool.before if pool.before[t] != after.get(t)}
    if changed != drawn:
        found.append(f"{len(changed - drawn)} trees changed that were not drawn")

    log = await log_rows(engine, pool.sequence)
    draws_logged = [entry for entry in log if entry.operation == DRAW_OPERATION]
    if len(log) != len(drawn) or len(draws_logged) != len(drawn):
        found.append(f"{len(draws_logged)} lottery log rows ({len(log)} in all) for {len(drawn)}")
    actor_of = {tree_id: d.actor for d in draws for tree_id in d.drawn}
    for entry in draws_logged:
        if actor_of.get(entry.tree_id) != entry.actor:
            found.append(f"log row {entry.sequence} names {entry.actor}, not who drew the tree")
        if (entry.from_state, entry.to_state) != (WAITING.value, GROWING.value):
            found.append(f"log row {entry.sequence} is {entry.from_state} -> {entry.to_state}")

    found += chain_violations(pool.growing, cap, draws)
    return found


def chain_violations(start: int, cap: int, draws: list[Draw]) -> list[str]:
    """Each answer's growing counts, as a serial order of the draws would give them.

    Every draw reports after - before == trees it drew; the draws that drew something
    cover [start, start + total) with disjoint intervals, which no two overlapping draws
    could produce; nobody reports more than the cap after drawing.
    """
    found: list[str] = []
    for d in draws:
        if d.growing_after - d.growing_before != len(d.drawn):
            found.append(f"{d.actor}: growing {d.growing_before}->{d.growing_after}, drew {d}")
        if d.drawn and d.growing_after > cap:
            found.append(f"{d.actor}: growing after its draw is {d.growing_after} > {cap}")
        if len(d.drawn) < d.asked and "asked: " not in d.message:
            found.append(f"{d.actor}: a short draw without a reason: {d.message!r}")
    spans = sorted((d.growing_before, d.growing_after) for d in draws if d.drawn)
    position = start
    for low, high in spans:
        if low != position:
            found.append(f"growing counts overlap or skip: {spans}")
            break
        position = high
    return found
