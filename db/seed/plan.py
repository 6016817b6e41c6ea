"""What the demo data looks like: constants, the oasst2-shaped distributions, and the counts.

`state_counts(trees)` allocates trees to states, `user_count(trees)` sizes the user pool; the
other modules of `db.seed` draw from the distributions defined here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import accumulate
from typing import Any

from db.trees import TREE_DEFAULTS
from domain.lottery import MAX_ACTIVE_TREES
from domain.states import State

Row = dict[str, Any]
"""One row to insert: column name to value."""

BASE_DATE = datetime(2023, 2, 1, tzinfo=UTC)
"""The earliest root message; everything is dated relative to it (or to `now`, if given)."""
WINDOW_END = datetime(2023, 10, 31, tzinfo=UTC)
"""Root messages are created before this date; replies follow within two weeks."""

GOAL_TREE_SIZE, MAX_DEPTH, MAX_CHILDREN_COUNT = TREE_DEFAULTS

BATCH_TREES = 5000
"""Trees per batch yielded by `generate`."""
USER_CHUNK = 25_000
"""Users per batch; only seeds of more than 100,000 trees need several user batches."""
INSERT_CHUNK = 10_000
"""Rows per INSERT executemany."""

# oasst2 (2023-11): 70,642 trees by state.
OASST2_STATE_COUNTS: dict[State, int] = {
    State.PROMPT_LOTTERY_WAITING: 44_550,
    State.READY_FOR_EXPORT: 13_854,
    State.INITIAL_PROMPT_REVIEW: 4_319,
    State.GROWING: 3_102,
    State.HALTED_BY_MODERATOR: 3_089,
    State.ABORTED_LOW_GRADE: 1_708,
    State.RANKING: 20,
}
RARE_STATES: tuple[State, ...] = (
    State.SCORING_FAILED,
    State.READY_FOR_SCORING,
    State.BACKLOG_RANKING,
)
"""States absent from oasst2; carved out of the ready_for_export share so demos show them."""
RANKING_MIN_TREES = 200
"""From this many trees on, at least one tree is in `ranking`."""
RARE_STATES_MIN_TREES = 500
"""From this many trees on, each of `RARE_STATES` gets max(1, trees // 2000) trees."""

# Languages by share of oasst2 messages (percent), then a long tail, then a few languages
# that only appear a handful of times.
LANG_WEIGHTS: tuple[tuple[str, float], ...] = (
    ("en", 40.0),
    ("es", 23.0),
    ("ru", 8.0),
    ("zh", 5.0),
    ("de", 5.0),
    ("fr", 4.0),
    ("pt-BR", 4.0),
    ("ca", 2.0),
    ("uk-UA", 2.0),
    ("it", 1.5),
    ("ja", 1.0),
    ("th", 1.0),
    ("eu", 0.5),
    ("vi", 0.5),
    ("ko", 0.4),
    ("pl", 0.35),
    ("hu", 0.3),
    ("ar", 0.25),
    ("nl", 0.2),
    ("tr", 0.2),
    ("fa", 0.15),
    ("da", 0.15),
    ("sv", 0.12),
    ("fi", 0.1),
    ("cs", 0.1),
    ("id", 0.1),
    ("he", 0.015),
    ("el", 0.015),
    ("ro", 0.01),
    ("bg", 0.01),
    ("sk", 0.01),
    ("nb-NO", 0.01),
    ("lt", 0.005),
    ("hr", 0.005),
)

USER_ZIPF_EXPONENT = 0.8
USER_STATS_SHARE = 0.30
DISABLED_USER_SHARE = 0.02
DELETED_USER_SHARE = 0.01
ORIGIN_BACKLOG = "backlog-import"
ORIGIN_DEMO = "oasst2-demo"
SYNTHETIC_MODEL = "oasst-sft-4-pythia-12b-epoch-3.5"

DAY = 86_400
SPAN_S = int((WINDOW_END - BASE_DATE).total_seconds())
ROOT_MAX_S = SPAN_S - 14 * DAY
RECENT_S = 60 * DAY

FULL_TREE_STATES = frozenset(
    {
        State.RANKING,
        State.READY_FOR_SCORING,
        State.READY_FOR_EXPORT,
        State.SCORING_FAILED,
        State.BACKLOG_RANKING,
    }
)
# Sizes of full trees (8-14 messages, mean about 10.2) and of growing trees (1-8, mean 3.6).
FULL_SIZES = (8, 9, 10, 11, 12, 13, 14)
FULL_SIZE_CUM = tuple(accumulate((3, 4, 4, 3, 2, 1, 1)))
GROWING_SIZES = (1, 2, 3, 4, 5, 6, 7, 8)
GROWING_SIZE_CUM = tuple(accumulate((3, 3, 3, 2, 2, 1, 1, 1)))


def growing_room(max_active_trees: int) -> int:
    """Growing trees the seeder puts in one language: the lottery's cap, less a fifth of it (at
    least one slot) left free, so that a draw on the demo data can activate a waiting prompt."""
    return max(max_active_trees - max(1, max_active_trees // 5), 0)


def state_counts(trees: int, max_active_trees: int = MAX_ACTIVE_TREES) -> dict[State, int]:
    """How many of `trees` trees are in each state (every State is a key; counts sum to `trees`).

    Largest remainder over the oasst2 counts (ties go to the state with the larger oasst2
    count), then: at least one `ranking` tree from `RANKING_MIN_TREES` trees on (taken from
    `prompt_lottery_waiting`), and from `RARE_STATES_MIN_TREES` trees on max(1, trees // 2000)
    trees for each of `RARE_STATES` (taken from `ready_for_export`). Growing trees beyond what
    the lottery's cap allows in every language (`growing_room`) wait for the lottery instead.
    """
    if trees < 0:
        raise ValueError("trees must be >= 0")
    total = sum(OASST2_STATE_COUNTS.values())
    counts = dict.fromkeys(State, 0)
    remainders: list[tuple[int, int, int, State]] = []
    for order, (state, weight) in enumerate(OASST2_STATE_COUNTS.items()):
        whole, remainder = divmod(trees * weight, total)
        counts[state] = whole
        remainders.append((-remainder, -weight, order, state))
    left = trees - sum(counts.values())
    for _, _, _, state in sorted(remainders)[:left]:
        counts[state] += 1
    if trees >= RANKING_MIN_TREES and counts[State.RANKING] == 0:
        counts[State.RANKING] = 1
        counts[State.PROMPT_LOTTERY_WAITING] -= 1
    if trees >= RARE_STATES_MIN_TREES:
        each = max(1, trees // 2000)
        for state in RARE_STATES:
            counts[state] += each
            counts[State.READY_FOR_EXPORT] -= each
    excess = max(counts[State.GROWING] - growing_room(max_active_trees) * len(LANG_WEIGHTS), 0)
    counts[State.GROWING] -= excess
    counts[State.PROMPT_LOTTERY_WAITING] += excess
    return counts


def user_count(trees: int) -> int:
    return max(20, trees // 4)
