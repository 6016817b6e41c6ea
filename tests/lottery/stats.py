"""A goodness-of-fit statistic for the uniformity checks (no SciPy needed)."""

from __future__ import annotations

import math
from collections.abc import Sequence

Z_999 = 3.0902  # the standard normal's 0.999 quantile


def chi_square(observed: Sequence[int]) -> float:
    """Pearson's statistic of counts against a uniform expectation."""
    expected = sum(observed) / len(observed)
    return sum((o - expected) ** 2 / expected for o in observed)


def chi_square_bound(dof: int) -> float:
    """The chi-square distribution's 0.999 quantile (Wilson-Hilferty, within 1% from dof 5).

    A fair draw exceeds it once in a thousand runs; the tests use seeded generators, so a
    pass is stable, and a biased draw lands far above it.
    """
    h = 2 / (9 * dof)
    return dof * (1 - h + Z_999 * math.sqrt(h)) ** 3
