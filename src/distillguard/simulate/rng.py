"""Deterministic randomness.

Every account, campaign and shared pool draws from its own :class:`random.Random`, seeded from a hash of the run
seed and a name. Accounts therefore do not consume each other's random numbers: the traffic of one account does
not change when another population is added, and generators can be advanced in any interleaving (the global merge
pulls them in time order) without changing a byte of output. ``random.Random`` rather than numpy because almost
every draw is a scalar on the hot path, where numpy's per-call overhead is several times higher.
"""

from __future__ import annotations

import hashlib
import math
import random

_MASK64 = (1 << 64) - 1


def derive_seed(*parts: object) -> int:
    """A 64-bit seed from any tuple of ints and strings (stable across processes, unlike ``hash``)."""
    return int.from_bytes(hashlib.blake2b(repr(parts).encode(), digest_size=8).digest(), "big")


def derive_rng(*parts: object) -> random.Random:
    return random.Random(derive_seed(*parts))


def poisson(rng: random.Random, lam: float) -> int:
    """A Poisson draw: Knuth's product method for small means, a rounded normal for large ones."""
    if lam <= 0.0:
        return 0
    if lam < 30.0:
        limit = math.exp(-lam)
        k = 0
        p = rng.random()
        while p > limit:
            k += 1
            p *= rng.random()
        return k
    return max(0, round(rng.gauss(lam, math.sqrt(lam))))


def lognormal(rng: random.Random, median: float, sigma: float) -> float:
    """Heavy-tailed positive quantities (volumes, lengths) are parameterised by their median, which reads better."""
    return median * math.exp(rng.gauss(0.0, sigma))


def hex_id(rng: random.Random, digits: int) -> str:
    return f"{rng.getrandbits(4 * digits):0{digits}x}"


def mix64(value: int) -> int:
    """SplitMix64's finaliser: cheap, well-spread bits from a counter (per-call noise without a Random object)."""
    value = (value + 0x9E3779B97F4A7C15) & _MASK64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK64
    return value ^ (value >> 31)


def weighted_choice(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]
