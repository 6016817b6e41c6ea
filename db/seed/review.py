"""Review and ranking outcomes of a generated tree, as its state implies.

Both functions adjust the tree's message rows in place, drawing from the trees' stream `rng`.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from db.seed.draw import choice, randint
from db.seed.plan import SYNTHETIC_MODEL, Row
from db.seed.users import UserPool
from domain.states import State


def review_root(rng: random.Random, users: UserPool, state: State, root: Row, grew: bool) -> None:
    """Review outcome of the root: pending, rejected or halted, as `state` implies."""
    if state is State.INITIAL_PROMPT_REVIEW:
        root["review_result"] = None
        root["review_count"] = randint(rng, 0, 2)
    elif state is State.ABORTED_LOW_GRADE and root["children_count"] == 0:
        root["review_result"] = False
        if rng.random() < 0.3:
            root["emojis"] = {**root["emojis"], "red_flag": randint(rng, 2, 5)}
    elif state is State.HALTED_BY_MODERATOR and not grew:
        if rng.random() < 0.5 and users.inactive_authors:
            # Halted while waiting for the lottery: its author was disabled or deleted.
            root["user_id"] = users.user_ids[choice(rng, users.inactive_authors)]
        else:
            # Halted during review by auto-moderation: too many skips.
            root["review_result"] = None
            root["review_count"] = randint(rng, 0, 2)
            root["emojis"] = {**root["emojis"], "_skip_reply": randint(rng, 5, 9)}


def review_replies(
    rng: random.Random,
    state: State,
    rows: list[Row],
    parents: Sequence[int],
    children: Sequence[int],
) -> None:
    """Review outcomes of the replies, then rankings among accepted siblings."""
    size = len(rows)
    if state is State.HALTED_BY_MODERATOR and rng.random() < 0.1:
        # Halted because every message of the tree was deleted.
        for row in rows:
            row["deleted"] = True
    for i in range(1, size):
        row = rows[i]
        if row["role"] == "assistant" and rng.random() < 0.004:
            row["synthetic"] = True
            row["model_name"] = SYNTHETIC_MODEL
        if children[i]:
            continue  # replies were only added to accepted messages
        if state in (State.GROWING, State.HALTED_BY_MODERATOR) and rng.random() < 0.4:
            row["review_result"] = None
            row["review_count"] = randint(rng, 0, 2)
        elif rng.random() < 0.05:
            row["review_result"] = False
        elif rng.random() < 0.01:
            row["deleted"] = True
    if state not in (
        State.RANKING,
        State.READY_FOR_SCORING,
        State.SCORING_FAILED,
        State.READY_FOR_EXPORT,
    ):
        return
    siblings: dict[int, list[Row]] = {}
    for i in range(1, size):
        row = rows[i]
        if row["review_result"] and not row["deleted"]:
            siblings.setdefault(parents[i], []).append(row)
    for group in siblings.values():
        if len(group) < 2:
            continue
        ranked = state is State.READY_FOR_EXPORT
        ranking_count = randint(rng, 0, 2) if state is State.RANKING else 3
        order = list(range(len(group)))
        rng.shuffle(order)
        for row, rank in zip(group, order, strict=True):
            row["ranking_count"] = ranking_count
            if ranked:
                row["rank"] = rank
