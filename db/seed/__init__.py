"""Realistic, deterministic demo data: users, message trees and their messages.

`generate(trees, seed)` is pure: it yields `SeedBatch`es of rows (lists of dicts ready for
`conn.execute(table.insert(), rows)`) and draws every value, UUIDs included, from
`random.Random(seed)`. Dates are offsets from a fixed base date, so the same `(trees, seed)`
always gives identical data. `seed(engine, trees, seed)` writes the batches in one transaction.

The shape follows the published oasst2 dataset (see docs/open-assistant.md): trees by state in the
oasst2 proportions (allocated by largest remainder, so they sum to exactly `trees`), languages
skewed like oasst2's messages, about three messages per tree, and authors drawn from a Zipf-like
distribution so that a few users are prolific.

Batches: the first batch carries the users and their `user_stats` rows (for very large seeds,
more than `USER_CHUNK` users, the users are spread over leading user-only batches), then every
batch carries its messages and, after them, its `message_tree_state` rows (the tree id is a
foreign key to the root message). Writing a batch's lists in the order users, user_stats,
messages, trees always satisfies the foreign keys.

Modules: `plan` (constants, distributions, state and user counts), `draw` (random draws),
`texts` (names and message texts), `users` (the user pool), `trees` (one tree's messages),
`review` (review and ranking outcomes), `batches` (`generate`), `writer` (`seed`).
"""

from db.seed.batches import SeedBatch, generate
from db.seed.plan import (
    BASE_DATE,
    BATCH_TREES,
    GOAL_TREE_SIZE,
    MAX_CHILDREN_COUNT,
    MAX_DEPTH,
    OASST2_STATE_COUNTS,
    RARE_STATES,
    WINDOW_END,
    state_counts,
    user_count,
)
from db.seed.writer import SeedReport, count_trees, seed

__all__ = [
    "BASE_DATE",
    "BATCH_TREES",
    "GOAL_TREE_SIZE",
    "MAX_CHILDREN_COUNT",
    "MAX_DEPTH",
    "OASST2_STATE_COUNTS",
    "RARE_STATES",
    "WINDOW_END",
    "SeedBatch",
    "SeedReport",
    "count_trees",
    "generate",
    "seed",
    "state_counts",
    "user_count",
]
