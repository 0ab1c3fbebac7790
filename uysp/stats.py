"""A/B statistics, pure: the two-proportion z-test, Wilson intervals, and the Bayesian
probability that each variant is best (Beta(1, 1) priors, Monte Carlo over the posteriors)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm


@dataclass(frozen=True)
class ProportionTest:
    difference: float  # rate of the second group minus rate of the first
    z: float
    p_value: float  # two-sided


def rate(successes: int, trials: int) -> float:
    return successes / trials if trials else 0.0


def two_proportion_test(x1: int, n1: int, x2: int, n2: int) -> ProportionTest:
    """Pooled two-proportion z-test. With no trials, or no spread at all, nothing is shown:
    z 0 and p 1."""
    difference = rate(x2, n2) - rate(x1, n1)
    pooled = rate(x1 + x2, n1 + n2)
    if not n1 or not n2 or pooled in (0.0, 1.0):
        return ProportionTest(difference, 0.0, 1.0)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    z = difference / se
    return ProportionTest(difference, z, float(2 * norm.sf(abs(z))))


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval: sensible at 0 or all successes and for small samples."""
    if not trials:
        return (0.0, 1.0)
    z = float(norm.ppf(0.5 + confidence / 2))
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = (
        z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    )
    return (max(0.0, centre - half), min(1.0, centre + half))


def probability_best(
    results: Mapping[str, tuple[int, int]], *, draws: int = 50_000, seed: int = 0
) -> dict[str, float]:
    """P(each variant has the highest true rate), from {variant: (successes, trials)}."""
    if not results:
        return {}
    rng = np.random.default_rng(seed)
    names = list(results)
    samples = np.column_stack(
        [rng.beta(1 + x, 1 + max(n - x, 0), size=draws) for x, n in results.values()]
    )
    wins = np.bincount(samples.argmax(axis=1), minlength=len(names))
    return {name: float(w) / draws for name, w in zip(names, wins, strict=True)}
