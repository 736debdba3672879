"""Exact tails of the counts watermark detectors compute (no normal approximations).

A detector counts hits at n independent positions, position i being a hit with probability p_i under the null
hypothesis. With equal p_i that is a binomial; with several (classes of 2, 3 or 4 variants) a Poisson-binomial,
computed here as the convolution of one binomial per distinct probability.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
from scipy.stats import binom


def binomial_sf(hits: int, n: int, p: float) -> float:
    """P(X >= hits) for X ~ Binomial(n, p)."""
    if hits <= 0:
        return 1.0
    return float(binom.sf(hits - 1, n, p))


def poisson_binomial_sf(hits: int, variants: Sequence[int]) -> float:
    """P(X >= hits) where X counts successes of positions each succeeding with probability 1/k (k = variants)."""
    if hits <= 0:
        return 1.0
    groups = Counter(variants)
    if len(groups) == 1:
        ((k, n),) = groups.items()
        return binomial_sf(hits, n, 1 / k)
    pmf = np.ones(1)
    for k, n in sorted(groups.items()):
        pmf = np.convolve(pmf, binom.pmf(np.arange(n + 1), n, 1 / k))
    if hits >= len(pmf):
        return 0.0
    # Sum the tail from its small end, so tiny tails keep their precision.
    return float(min(1.0, pmf[hits:][::-1].sum()))
