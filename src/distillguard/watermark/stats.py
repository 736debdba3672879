"""Exact tails of the counts watermark detectors compute (no normal approximations).

A detector counts hits at n independent positions, position i being a hit with probability p_i under the null
hypothesis. With equal p_i that is a binomial; with several (classes of 2, 3 or 4 variants) a Poisson-binomial,
computed here as the convolution of one binomial per distinct probability.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from scipy.special import bdtrc, gammaln

# scipy.special's ufuncs directly: scipy.stats.binom's generic argument checks cost about 50 us a call, more than the
# rest of a text's detection.


def binomial_sf(hits: int, n: int, p: float) -> float:
    """P(X >= hits) for X ~ Binomial(n, p) (the regularised incomplete beta function, exact to about 1e-12)."""
    if hits <= 0:
        return 1.0
    if hits > n:
        return 0.0
    return float(bdtrc(hits - 1, n, p))


def binomial_pmf(n: int, p: float) -> np.ndarray:
    """P(X = k) for k = 0..n, X ~ Binomial(n, p), from log-gamma (relative error about 1e-12 for n in the
    thousands)."""
    k = np.arange(n + 1)
    log = gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1) + k * np.log(p) + (n - k) * np.log1p(-p)
    pmf: np.ndarray = np.exp(log)
    return pmf


def poisson_binomial_sf(hits: int, variants: Sequence[int]) -> float:
    """P(X >= hits) where X counts successes of positions each succeeding with probability 1/k (k = variants)."""
    if hits <= 0:
        return 1.0
    return _poisson_binomial_sf(hits, tuple(sorted(Counter(variants).items())))


# A detection runs four tests per key, and they often count the same sites (a text without level 2 sites).
@lru_cache(maxsize=4096)
def _poisson_binomial_sf(hits: int, groups: tuple[tuple[int, int], ...]) -> float:
    """``poisson_binomial_sf`` for ``groups``: (k, number of positions with k variants), sorted by k."""
    if len(groups) == 1:
        ((k, n),) = groups
        return binomial_sf(hits, n, 1 / k)
    pmf = np.ones(1)
    for k, n in groups:
        pmf = np.convolve(pmf, binomial_pmf(n, 1 / k))
    if hits >= len(pmf):
        return 0.0
    # Sum the tail from its small end, so tiny tails keep their precision.
    return float(min(1.0, pmf[hits:][::-1].sum()))
