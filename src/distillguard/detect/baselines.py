"""Published-style baselines, scored per account, that distillguard must beat on every attack type.

- volume: the number of calls (what a plain rate-based alarm sees).
- PRADA (Juuti et al., 2019): benign query streams have normally distributed minimum distances to earlier
  queries; extraction streams do not. Score = 1 - Shapiro-Wilk W of each account's minimum Hamming distances
  between a query's SimHash and its earlier queries' (last 256).
- SEAT (Zhang et al., 2021): extraction sends many similar queries. Score = share of queries whose SimHash lies
  within 3 bits of an earlier query of the same account.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable

from scipy.stats import shapiro

_WINDOW = 256
_NEAR_BITS = 3


def _hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


class BaselineScores:
    """Feed (account, SimHash) in time order; read each baseline's score per account."""

    def __init__(self) -> None:
        self.volume: dict[str, int] = defaultdict(int)
        self._history: dict[str, list[int]] = defaultdict(list)
        self._min_distances: dict[str, list[int]] = defaultdict(list)
        self._near: dict[str, int] = defaultdict(int)

    def observe(self, account_id: str, content_sig: int) -> None:
        self.volume[account_id] += 1
        history = self._history[account_id]
        if history:
            distance = min(_hamming(content_sig, h) for h in history)
            if len(self._min_distances[account_id]) < 5000:
                self._min_distances[account_id].append(distance)
            if distance <= _NEAR_BITS:
                self._near[account_id] += 1
        history.append(content_sig)
        if len(history) > _WINDOW:
            del history[0]

    def scores(self, accounts: Iterable[str]) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {"volume": {}, "prada": {}, "seat": {}}
        for account in accounts:
            n = self.volume.get(account, 0)
            out["volume"][account] = math.log1p(n)
            distances = self._min_distances.get(account, [])
            if len(distances) >= 3 and len(set(distances)) > 1:
                out["prada"][account] = 1.0 - float(shapiro(distances).statistic)
            else:
                out["prada"][account] = 0.0
            out["seat"][account] = self._near.get(account, 0) / max(n, 1)
        return out
