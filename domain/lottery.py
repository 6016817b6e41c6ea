"""The prompt lottery draw, as Open-Assistant draws it (pure: the caller supplies the data)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import NamedTuple
from uuid import UUID

MAX_ACTIVE_TREES = 10
"""The default cap on growing trees per language (Open-Assistant's `max_active_trees`)."""

MONTH = "month"
"""The `user_stats.time_frame` whose `reply_ranked_1` weights an author."""


class Author(NamedTuple):
    """An author with waiting prompts, and how many of their replies ranked first this month.

    A named tuple: a draw reads every candidate author of the language, thousands of them."""

    user_id: UUID
    reply_ranked_1: int

    @property
    def weight(self) -> int:
        return max(self.reply_ranked_1, 0) + 1


def pick_author(authors: Sequence[Author], rng: random.Random) -> Author:
    """An author drawn with weight `reply_ranked_1 + 1`."""
    if not authors:
        raise ValueError("no authors to draw from")
    # The draw must not depend on row order: by user id, compared as text (the same order as
    # the ids' own, and thousands of times cheaper to compare than UUID objects).
    ordered = sorted(authors, key=_id_text)
    return rng.choices(ordered, weights=[max(ranked, 0) + 1 for _, ranked in ordered], k=1)[0]


def _id_text(author: Author) -> str:
    return str(author.user_id)


def pick_prompt(tree_ids: Sequence[UUID], rng: random.Random) -> UUID:
    """One of the author's waiting prompts, uniformly at random."""
    if not tree_ids:
        raise ValueError("no prompts to draw from")
    return rng.choice(sorted(tree_ids))


def shortfall_message(drawn: int, asked: int, growing: int, cap: int, candidates_left: bool) -> str:
    """Says how many trees were drawn and, when fewer than asked, why."""
    if drawn == asked:
        return f"drew {drawn} of {asked} asked"
    if growing >= cap:
        why = f"the language has reached max_active_trees ({growing} of {cap} growing)"
    elif not candidates_left:
        why = "no more candidates (waiting prompts with an accepted root by an enabled author)"
    else:
        why = "other callers moved the candidates first"
    return f"drew {drawn} of {asked} asked: {why}"
