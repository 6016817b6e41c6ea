"""Random draws from one `random.Random` stream: fast, and stable across Python versions."""

from __future__ import annotations

import random
import uuid
from bisect import bisect
from collections.abc import Sequence
from typing import TypeVar

_T = TypeVar("_T")


def choice(rng: random.Random, items: Sequence[_T]) -> _T:
    """Like `rng.choice(items)`, with one `random()` call (fast, and stable across versions)."""
    return items[int(rng.random() * len(items))]


def randint(rng: random.Random, low: int, high: int) -> int:
    """Like `rng.randint(low, high)`, with one `random()` call."""
    return low + int(rng.random() * (high - low + 1))


def pick(rng: random.Random, items: Sequence[_T], cum_weights: Sequence[float]) -> _T:
    """A weighted choice, like `rng.choices(items, cum_weights=...)[0]` but faster."""
    return items[bisect(cum_weights, rng.random() * cum_weights[-1], 0, len(cum_weights) - 1)]


def random_uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)
