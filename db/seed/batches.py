"""`generate`: the demo data as `SeedBatch`es of rows, pure and deterministic."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from db.seed.plan import BASE_DATE, BATCH_TREES, SPAN_S, USER_CHUNK, Row, user_count
from db.seed.trees import TreeGenerator
from db.seed.users import UserPool
from domain.lottery import MAX_ACTIVE_TREES


@dataclass(frozen=True)
class SeedBatch:
    """Rows to insert, in this order: users, user_stats, messages, trees."""

    users: list[Row]
    user_stats: list[Row]
    messages: list[Row]
    trees: list[Row]


def generate(
    trees: int,
    seed: int = 0,
    *,
    now: datetime | None = None,
    max_active_trees: int = MAX_ACTIVE_TREES,
) -> Iterator[SeedBatch]:
    """The demo data for `trees` trees as batches of rows; pure and deterministic.

    Dates run from 2023-02-01 to 2023-10-31 (UTC); with `now` (time-zone aware), the same
    timeline is shifted so that it ends at `now`. No language has more growing trees than the
    lottery's cap, `max_active_trees`, allows (`plan.growing_room`).
    """
    return iter_batches(
        trees, seed, now=now, batch_trees=BATCH_TREES, max_active_trees=max_active_trees
    )


def iter_batches(
    trees: int,
    seed: int,
    *,
    now: datetime | None,
    batch_trees: int,
    max_active_trees: int = MAX_ACTIVE_TREES,
) -> Iterator[SeedBatch]:
    """`generate`, with `batch_trees` trees per batch (the arguments are checked right away)."""
    if trees < 0:
        raise ValueError("trees must be >= 0")
    if batch_trees < 1:
        raise ValueError("batch_trees must be >= 1")
    if now is not None and now.tzinfo is None:
        raise ValueError("now must be time-zone aware")
    origin = BASE_DATE if now is None else now.astimezone(UTC) - timedelta(seconds=SPAN_S)
    master = random.Random(seed)
    # Independent streams, all derived from `seed`: users can then be produced lazily in
    # chunks without changing the trees.
    user_rng = random.Random(master.getrandbits(64))
    tree_rng = random.Random(master.getrandbits(64))
    lang_rng = random.Random(master.getrandbits(64))
    users = UserPool(user_count(trees), user_rng, origin)
    gen = TreeGenerator(trees, tree_rng, origin, users, max_active_trees, lang_rng)
    return _batch_iter(users, gen, trees, batch_trees)


def _batch_iter(
    pool: UserPool, gen: TreeGenerator, trees: int, batch_trees: int
) -> Iterator[SeedBatch]:
    user_chunks = [
        (start, min(start + USER_CHUNK, pool.n_users))
        for start in range(0, pool.n_users, USER_CHUNK)
    ]
    for start, stop in user_chunks[:-1]:
        users, stats = pool.rows(start, stop)
        yield SeedBatch(users=users, user_stats=stats, messages=[], trees=[])
    users, stats = pool.rows(*user_chunks[-1])
    if trees == 0:
        yield SeedBatch(users=users, user_stats=stats, messages=[], trees=[])
        return
    for start in range(0, trees, batch_trees):
        messages: list[Row] = []
        tree_rows: list[Row] = []
        for state in gen.states[start : start + batch_trees]:
            tree_rows.append(gen.tree(state, messages))
        yield SeedBatch(users=users, user_stats=stats, messages=messages, trees=tree_rows)
        users, stats = [], []
