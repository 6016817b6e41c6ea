"""The draw's distribution through the real use case and database, on both backends."""

from __future__ import annotations

import random
import uuid
from collections import Counter

from sqlalchemy.ext.asyncio import AsyncEngine

from db.lottery import candidate_authors
from domain.outcomes import LotteryDrawn
from resolvers.lottery import draw_prompt_lottery
from tests.lottery.stats import chi_square, chi_square_bound
from tests.lottery.support import add_author, add_trees, operator_context, put_back

PROMPTS_EACH = 40
PER_CALL = 10
CALLS = 200
DRAWS = PER_CALL * CALLS  # 2,000: each pick costs ~5 statements, about 3-10 ms on each backend
HEAVY_SHARE = 4 / (1 + 4)
# The heavy author's count is Binomial(2000, 0.8): sd = sqrt(0.8 * 0.2 / 2000) = 0.0089 of
# share, so +-0.036 is 4.0 sd (a fair draw fails about once in 16,000 seeds; the seed is
# fixed). (At 3,000 draws +-0.03 would be 4.1 sd, for half as long again.) Weights that
# forget the "+1" (0 and 3: share 1.0), read the 'total' rows (1001 and 8: 0.008), or ignore
# the weights (0.5) land far outside.
TOLERANCE = 0.036


async def seed_authors(engine: AsyncEngine) -> tuple[dict[uuid.UUID, str], dict[str, uuid.UUID]]:
    """A light author (weight 1) and a heavy one (weight 4), each with 40 waiting prompts.

    Returns each tree's author by name, and the authors' ids. Each author also has a
    'total' row that must not count.
    """
    async with engine.begin() as conn:
        light = await add_author(conn, stats={"month": 0, "total": 1000})
        heavy = await add_author(conn, stats={"month": 3, "total": 7})
        author_of = dict.fromkeys(await add_trees(conn, PROMPTS_EACH, author=light), "light")
        author_of |= dict.fromkeys(await add_trees(conn, PROMPTS_EACH, author=heavy), "heavy")
        # Noise the draw must not see: the heavy author's prompts in another language.
        await add_trees(conn, 5, author=heavy, lang="de")
    return author_of, {"light": light, "heavy": heavy}


async def test_authors_weigh_this_months_first_ranked_replies(engine: AsyncEngine) -> None:
    """What the draw weighs, read exactly: month's reply_ranked_1 + 1, never 'total'."""
    _, ids = await seed_authors(engine)
    async with engine.connect() as conn:
        authors = await candidate_authors(conn, "en")
    assert {a.user_id: a.weight for a in authors} == {ids["light"]: 1, ids["heavy"]: 4}


async def draw_and_put_back(
    engine: AsyncEngine, rng: random.Random, calls: int, per_call: int
) -> list[uuid.UUID]:
    """`calls` draws of `per_call` trees each; drawn trees go back to waiting after each call.

    Ten per call keeps the run short (a call's statements are most of the cost). Within a
    call a tree is not drawn twice, but each author keeps waiting prompts throughout (40
    each), so every pick still chooses between both authors with weights 1 and 4: the
    author share is exactly that of independent picks, and each prompt of an author stays
    equally likely by symmetry.
    """
    picked: list[uuid.UUID] = []
    for _ in range(calls):
        ctx = operator_context(engine, max_active_trees=per_call, rng=rng)
        outcome = await draw_prompt_lottery(ctx, "en", per_call, None)
        assert isinstance(outcome, LotteryDrawn)
        ids = [tree.message_tree_id for tree in outcome.drawn]
        assert len(ids) == per_call == len(set(ids))
        picked += ids
        async with engine.begin() as conn:
            await put_back(conn, ids)
    return picked


async def test_authors_weighted_and_prompts_uniform(engine: AsyncEngine) -> None:
    author_of, _ = await seed_authors(engine)
    picked = await draw_and_put_back(engine, random.Random(8), CALLS, PER_CALL)
    assert len(picked) == DRAWS
    assert set(picked) <= set(author_of)

    by_author = Counter(author_of[tree_id] for tree_id in picked)
    share = by_author["heavy"] / DRAWS
    assert abs(share - HEAVY_SHARE) <= TOLERANCE, by_author

    # Each author's prompts: ~1,600 and ~400 draws over 40 prompts (~40 and ~10 expected each).
    per_tree = Counter(picked)
    for name in ("light", "heavy"):
        observed = [per_tree[t] for t, a in author_of.items() if a == name]
        assert len(observed) == PROMPTS_EACH
        assert chi_square(observed) < chi_square_bound(PROMPTS_EACH - 1), (name, observed)


async def test_missing_month_stats_weigh_as_zero(engine: AsyncEngine) -> None:
    """No 'month' row (only 'week' and 'total') is weight 1, the same as a month of 0."""
    async with engine.begin() as conn:
        absent = await add_author(conn, stats={"week": 50, "total": 900})
        zero = await add_author(conn, stats={"month": 0})
        author_of = dict.fromkeys(await add_trees(conn, 20, author=absent), "absent")
        author_of |= dict.fromkeys(await add_trees(conn, 20, author=zero), "zero")
    draws = 400
    picked = await draw_and_put_back(engine, random.Random(4), draws // PER_CALL, PER_CALL)
    share = Counter(author_of[t] for t in picked)["absent"] / draws
    # sd = sqrt(0.25 / 400) = 0.025: +-0.1 is 4 sd, and far from 51/52 or 901/902.
    assert abs(share - 0.5) <= 0.1


async def test_the_same_seed_draws_the_same_trees(engine: AsyncEngine) -> None:
    await seed_authors(engine)

    async def sequence(seed: int) -> list[uuid.UUID]:
        return await draw_and_put_back(engine, random.Random(seed), 4, 5)

    first = await sequence(2024)
    assert await sequence(2024) == first
    assert await sequence(2025) != first
