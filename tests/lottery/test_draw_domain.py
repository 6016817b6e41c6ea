"""The pure draw: authors weighted by `reply_ranked_1 + 1`, prompts uniform, seeds reproducible."""

from __future__ import annotations

import math
import random
import uuid
from collections import Counter

import pytest

from domain.lottery import Author, pick_author, pick_prompt
from tests.lottery.stats import chi_square, chi_square_bound


def make_authors(ranked: list[int]) -> list[Author]:
    return [Author(uuid.uuid4(), r) for r in ranked]


def test_authors_are_drawn_with_weight_ranked_first_plus_one() -> None:
    # reply_ranked_1 -> weight: 0 -> 1, 3 -> 4, 1 -> 2, and a nonsense negative count -> 1.
    authors = make_authors([0, 3, 1, -2])
    expected_share = [1 / 8, 4 / 8, 2 / 8, 1 / 8]
    draws = 100_000
    rng = random.Random(20231101)
    seen = Counter(pick_author(authors, rng).user_id for _ in range(draws))
    for author, share in zip(authors, expected_share, strict=True):
        # Binomial sd is at most sqrt(0.25 / 100_000) = 0.0016: 0.0065 is four of them.
        assert abs(seen[author.user_id] / draws - share) < 0.0065, (author, seen)


def test_a_single_author_is_always_drawn() -> None:
    (only,) = make_authors([7])
    rng = random.Random(1)
    assert {pick_author([only], rng) for _ in range(100)} == {only}


def test_prompts_are_drawn_uniformly() -> None:
    prompts = [uuid.uuid4() for _ in range(10)]
    draws = 50_000
    rng = random.Random(99)
    seen = Counter(pick_prompt(prompts, rng) for _ in range(draws))
    assert set(seen) == set(prompts)
    observed = [seen[p] for p in prompts]
    assert chi_square(observed) < chi_square_bound(len(prompts) - 1)


def test_the_order_rows_come_in_does_not_change_the_draw() -> None:
    authors = make_authors([0, 3, 1, 5, 2])
    prompts = [uuid.uuid4() for _ in range(7)]
    shuffled_authors = authors[::-1]
    shuffled_prompts = random.Random(3).sample(prompts, len(prompts))
    a, b = random.Random(11), random.Random(11)
    for _ in range(500):
        assert pick_author(authors, a) == pick_author(shuffled_authors, b)
        assert pick_prompt(prompts, a) == pick_prompt(shuffled_prompts, b)


def test_a_seed_makes_the_sequence_reproducible() -> None:
    authors = make_authors([0, 3, 1])
    prompts = {a.user_id: [uuid.uuid4() for _ in range(5)] for a in authors}

    def sequence(seed: int) -> list[uuid.UUID]:
        rng = random.Random(seed)
        out = []
        for _ in range(200):
            author = pick_author(authors, rng)
            out.append(pick_prompt(prompts[author.user_id], rng))
        return out

    assert sequence(5) == sequence(5)
    assert sequence(5) != sequence(6)


def test_nothing_to_draw_from() -> None:
    with pytest.raises(ValueError, match="no authors"):
        pick_author([], random.Random(0))
    with pytest.raises(ValueError, match="no prompts"):
        pick_prompt([], random.Random(0))


def test_the_chi_square_helpers() -> None:
    assert chi_square([10, 10, 10]) == 0
    assert chi_square([0, 0, 30]) == pytest.approx(60.0)
    # Tabulated 0.999 quantiles: 31.26 (11 degrees of freedom), 72.05 (39).
    assert math.isclose(chi_square_bound(11), 31.26, rel_tol=0.01)
    assert math.isclose(chi_square_bound(39), 72.05, rel_tol=0.01)
