"""The green-list watermark (Kirchenbauer et al. 2023) as transformers implements it, with an exact detector.

Generation (transformers' ``WatermarkLogitsProcessor``): before each token, a seed from the context picks a "green"
share gamma of the vocabulary (``greenlist_size = int(vocab_size * gamma)`` ids) and the green tokens' logits get
``+bias``, so watermarked text has more green tokens than the share gamma that chance gives.

- ``lefthash``: seed = hashing_key * (last context token), reduced mod 2**64 - 1; the green list is the first
  greenlist_size ids of ``torch.randperm(vocab_size)`` drawn from a CPU generator with that seed.
- ``selfhash``: seed = min over the last ``context_width`` tokens t (the candidate itself included) of
  hashing_key * (F[t] + 1) * (F[candidate] + 1) in wrapping int64, F a fixed ``randperm(1_000_003)`` seeded by
  the key; the candidate is green when it is in the list that its own seed draws.

Detection, reproduced exactly and without torch: torch seeds its CPU Mersenne Twister with the low 32 bits of the
seed (numpy's legacy ``RandomState`` seeding is the same), and its CPU ``randperm(n)`` is the forward
Fisher-Yates shuffle ``swap(r[i], r[i + draw_i % (n - i)])`` for i = 0, 1, ... . Only the first greenlist_size steps
decide the green set, and the set follows from those steps in a few vectorised passes (see ``green_masks_numpy``),
for many seeds at once. Green lists are cached per seed as packed bits, so a context token seen before costs a
table lookup; for ``lefthash`` there is one seed per vocabulary id, so the cache is bounded by the vocabulary.

The score: a scoring unit is a distinct (seed, token) pair, because the pair alone decides whether the token is
green: a repeated n-gram counts once, and so do two n-grams that differ only in context tokens the seed does not
use (with lefthash and context_width > 1 the seed uses the last token only). Under the null hypothesis (the text
does not depend on the key) each unit is green with probability greenlist_size / vocab_size, the units with
distinct seeds independently, and the p-value is the exact binomial tail P[Binomial(units, rate) >= green units].
Units that share a seed draw from one green list without replacement (hypergeometric): that makes the count less
spread than the binomial, and the binomial tail stays a valid, slightly conservative p-value in the range where it
is small (Hoeffding 1956, Theorem 4: a sum of independent Bernoulli trials with mean n*p has an upper tail at or
below the binomial's beyond n*p + 1; a hypergeometric count is such a sum). transformers' own detector reports a
z-score and its normal-approximation p-value, which is off by orders of magnitude in the tail; we do not use it.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
import threading
from typing import Any, ClassVar, Literal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

from distillguard.watermark.logits import (
    LogitsWatermark,
    RequestProcessor,
    TokenIds,
    binomial_p_value,
    check_key,
    cpu_processor_class,
    derive_key,
    distinct,
    key_id,
    one_row,
    token_array,
)
from distillguard.watermark.result import DEFAULT_ALPHA, Detection

SeedingScheme = Literal["lefthash", "selfhash"]
Engine = Literal["auto", "numpy", "torch"]

# transformers' selfhash table: a permutation of range(FIXED_TABLE_SIZE) drawn with the hashing key as seed.
FIXED_TABLE_SIZE = 1_000_003
_SEED_MODULUS = (1 << 64) - 1  # transformers reduces seeds mod 2**64 - 1 before torch.Generator.manual_seed
_LOW32 = 0xFFFFFFFF
# Seeds whose green lists are computed in one vectorised batch (memory ~9 bytes * CHUNK * vocab_size).
CHUNK = 32
# Room for the whole lefthash table (one green list per vocabulary id) of a vocabulary of 65,536 ids, allocated only
# as contexts are seen.
DEFAULT_CACHE_BYTES = 512 << 20


def _draws(seeds: NDArray[np.uint32], count: int) -> NDArray[np.uint32]:
    """The first ``count`` 32-bit outputs of the Mersenne Twister seeded like torch's CPU generator, per seed."""
    out = np.empty((len(seeds), count), dtype=np.uint32)
    rng = np.random.RandomState()
    for row, seed in enumerate(seeds.tolist()):
        rng.seed(seed)  # legacy seeding of a 32-bit int is MT19937's init_genrand, as torch's mt19937(seed)
        out[row] = rng.randint(0, 1 << 32, size=count, dtype=np.uint32)  # the full range: raw outputs
    return out


def green_masks_numpy(seeds: NDArray[np.uint32], vocab_size: int, greenlist_size: int) -> NDArray[np.bool_]:
    """``masks[i, t]``: whether token t is in the first ``greenlist_size`` ids of torch's CPU ``randperm(vocab_size)``
    drawn with seed ``seeds[i]``, computed for all seeds at once without shuffling arrays one swap at a time.

    Step k of the shuffle (k < greenlist_size = g) swaps positions k and T_k = k + draw_k % (n - k) >= k, and
    position k is final after it, so the green set is what positions 0..g-1 hold after g steps:

    - a token p >= g sits at its own position until a step first swaps into it, which moves it to a final position
      below g: it is green exactly when some T_k equals p;
    - every other position p >= g ends up holding the token that the last step k with T_k = p took out of position
      k; that token, c_k, is what position k held before step k: the token c_j of the last earlier step j with T_j
      = k, or k itself if no step swapped into k before. Following these links back gives c_k (pointer jumping);
      the c_k so moved to a position >= g are the red tokens below g, and the remaining tokens below g are green.
    """
    n, g = vocab_size, greenlist_size
    count = len(seeds)
    # Narrow indices where they fit: these passes are memory-bound.
    index: type[np.signedinteger[Any]] = np.int32 if count * n < 1 << 31 else np.int64
    steps: NDArray[np.signedinteger[Any]] = np.arange(g, dtype=index)
    # draw % (n - k), through float64 (exact here, and faster than integer division) and a correction of +-1.
    draws = _draws(seeds, g).astype(np.float64)
    span = (n - steps).astype(np.float64)
    rest = draws - np.floor(draws / span) * span
    rest = np.where(rest < 0, rest + span, rest)
    rest = np.where(rest >= span, rest - span, rest)
    targets: NDArray[np.signedinteger[Any]] = np.add(rest.astype(index), steps)
    flat_target = (targets + (np.arange(count, dtype=index) * n)[:, None]).ravel()  # index into (count, n)
    step = np.broadcast_to(steps, (count, g)).ravel()
    # last[i, p]: the last step that swapped into position p. Only positions below g can be read before a step
    # swapped into them, so only those start at -1 (none).
    last_grid = np.empty((count, n), dtype=index)
    last_grid[:, :g] = -1
    last = last_grid.reshape(-1)
    moved = targets.ravel() != step  # a draw of 0 swaps a position with itself
    into, by = flat_target[moved], step[moved]
    last[into] = by
    stale = last[into] < by
    while stale.any():  # numpy keeps the last of repeated writes, but this does not rely on it
        last[into[stale]] = by[stale]
        stale = last[into] < by
    # root[i*g + k] = i*g + c_k, by pointer jumping along "the step that last swapped into k".
    parent = last_grid[:, :g]
    root = (np.where(parent >= 0, parent, steps) + (np.arange(count, dtype=index) * g)[:, None]).ravel()
    while True:
        up = root[root]
        if np.array_equal(up, root):
            break
        root = up
    outside = targets.ravel() >= g  # steps that swapped into a position >= g
    red_low = root[outside & (last[flat_target] == step)]  # ... and were the last to swap into it
    masks = np.zeros((count, n), dtype=bool)
    masks[:, :g] = True
    flat = masks.reshape(-1)
    flat[(red_low // g) * n + red_low % g] = False
    flat[flat_target[outside]] = True
    return masks


def green_masks_torch(seeds: NDArray[np.uint32], vocab_size: int, greenlist_size: int) -> NDArray[np.bool_]:
    """The same masks from torch's own CPU ``randperm`` (faster per seed when torch is loaded anyway)."""
    import torch

    generator = torch.Generator()
    masks = np.zeros((len(seeds), vocab_size), dtype=bool)
    for row, seed in enumerate(seeds.tolist()):
        generator.manual_seed(seed)
        masks[row, torch.randperm(vocab_size, generator=generator)[:greenlist_size].numpy()] = True
    return masks


def randperm_prefix(seed: int, n: int, length: int) -> NDArray[np.int64]:
    """The first ``length`` entries of torch's CPU ``randperm(n)`` with ``manual_seed(seed)``: the shuffle's first
    ``length`` swaps, kept in a dict of the positions they touched (so n can be large)."""
    draws = _draws(np.array([seed & _LOW32], dtype=np.uint32), length)[0].tolist()
    moved: dict[int, int] = {}
    out = np.empty(length, dtype=np.int64)
    for i, draw in enumerate(draws):
        j = i + draw % (n - i)
        at_i = moved.get(i, i)
        out[i] = moved.get(j, j)
        moved[j] = at_i
    return out


class GreenTable:
    """Green lists of seeds, computed on demand (vectorised, several seeds at a time) and cached as packed bits.

    The cache holds at most ``cache_bytes`` of lists (vocab_size / 8 bytes each), allocated as it fills. When a
    call needs more room, the half of the cache least used (counts halved at each eviction, so old use fades) makes
    way: with the Zipf-like frequencies of real contexts the lists of common tokens stay. Thread-safe."""

    def __init__(self, vocab_size: int, greenlist_size: int, engine: Engine = "auto", cache_bytes: int = 0) -> None:
        self.vocab_size = vocab_size
        self.greenlist_size = greenlist_size
        self.engine = engine
        self.row_bytes = (vocab_size + 7) // 8
        self.capacity = max(CHUNK, (cache_bytes or DEFAULT_CACHE_BYTES) // self.row_bytes)
        self._lock = threading.Lock()
        self._seeds = np.zeros(0, dtype=np.uint32)  # index: cached seeds, sorted
        self._rows = np.zeros(0, dtype=np.int64)  # ... and the row of each in _bits
        self._bits = np.zeros((0, self.row_bytes), dtype=np.uint8)  # row r: the packed green list of _row_seed[r]
        self._row_seed = np.zeros(0, dtype=np.uint32)
        self._uses = np.zeros(0, dtype=np.int64)  # calls that needed each row
        self._used = 0
        self.evictions = 0

    def masks(self, seeds: NDArray[np.uint32]) -> NDArray[np.bool_]:
        """Green-list masks (len(seeds), vocab_size), not cached."""
        engine = self.engine
        if engine == "auto":
            engine = "torch" if "torch" in sys.modules else "numpy"
        compute = green_masks_torch if engine == "torch" else green_masks_numpy
        n, g = self.vocab_size, self.greenlist_size
        parts = [compute(seeds[i : i + CHUNK], n, g) for i in range(0, len(seeds), CHUNK)]
        return np.concatenate(parts) if parts else np.zeros((0, self.vocab_size), dtype=bool)

    @property
    def cached(self) -> int:
        """How many seeds' green lists are cached."""
        return self._used

    def contains(self, seeds: NDArray[np.uint32], tokens: NDArray[np.int64]) -> NDArray[np.bool_]:
        """Whether each token is in the green list of the seed beside it."""
        out = np.zeros(len(seeds), dtype=bool)
        if not len(seeds):
            return out
        uniq, inverse = np.unique(seeds, return_inverse=True)
        with self._lock:
            rows = self._lookup(uniq)
            self._uses[rows[rows >= 0]] += 1
            pair_rows = rows[inverse]
            known = pair_rows >= 0
            out[known] = self._bit(pair_rows[known], tokens[known])
            need = np.flatnonzero(rows < 0)
            if need.size:
                self._compute(uniq, need, inverse, tokens, out)
        return out

    def _bit(self, rows: NDArray[np.int64], tokens: NDArray[np.int64]) -> NDArray[np.bool_]:
        byte: NDArray[np.uint8] = self._bits[rows, tokens >> 3]
        shift = (7 - (tokens & 7)).astype(np.uint8)  # np.packbits puts a byte's first id in its top bit
        green: NDArray[np.bool_] = (byte >> shift) & 1 == 1
        return green

    def _lookup(self, seeds: NDArray[np.uint32]) -> NDArray[np.int64]:
        if not len(self._seeds):
            return np.full(len(seeds), -1, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self._seeds, seeds), len(self._seeds) - 1)
        return np.where(self._seeds[pos] == seeds, self._rows[pos], -1)

    def _compute(
        self,
        uniq: NDArray[np.uint32],
        need: NDArray[np.intp],
        inverse: NDArray[np.intp],
        tokens: NDArray[np.int64],
        out: NDArray[np.bool_],
    ) -> None:
        """Green lists of the seeds ``uniq[need]``, a chunk at a time: answer their pairs, and cache what fits."""
        if self._used + need.size > self.capacity:
            self._evict(keep=max(0, min(self.capacity // 2, self.capacity - need.size)))
        rank = np.full(len(uniq), -1, dtype=np.int64)
        rank[need] = np.arange(need.size)
        pairs = np.flatnonzero(rank[inverse] >= 0)
        pairs = pairs[np.argsort(rank[inverse[pairs]], kind="stable")]
        pair_rank = rank[inverse[pairs]]
        stored: list[NDArray[np.uint32]] = []
        for lo in range(0, need.size, CHUNK):
            hi = min(lo + CHUNK, need.size)
            seeds = uniq[need[lo:hi]]
            masks = self.masks(seeds)
            a, b = np.searchsorted(pair_rank, [lo, hi])
            sel = pairs[a:b]
            out[sel] = masks[pair_rank[a:b] - lo, tokens[sel]]
            room = self.capacity - self._used
            if room > 0:  # past the room left, lists are used for this call only
                self._store(seeds[:room], np.packbits(masks[:room], axis=1))
                stored.append(seeds[:room])
        if stored:
            self._index_add(np.concatenate(stored))

    def _store(self, seeds: NDArray[np.uint32], packed: NDArray[np.uint8]) -> None:
        start, end = self._used, self._used + len(packed)
        if end > len(self._bits):
            size = min(self.capacity, max(end, 2 * len(self._bits), 256))
            bits = np.zeros((size, self.row_bytes), dtype=np.uint8)
            bits[:start] = self._bits[:start]
            self._bits = bits
            self._row_seed = np.concatenate([self._row_seed[:start], np.zeros(size - start, dtype=np.uint32)])
            self._uses = np.concatenate([self._uses[:start], np.zeros(size - start, dtype=np.int64)])
        self._bits[start:end] = packed
        self._row_seed[start:end] = seeds
        self._uses[start:end] = 1
        self._used = end

    def _index_add(self, seeds: NDArray[np.uint32]) -> None:
        """Add the rows just stored for ``seeds`` (the last len(seeds) rows) to the sorted index: a merge."""
        rows = np.arange(self._used - len(seeds), self._used, dtype=np.int64)
        order = np.argsort(seeds, kind="stable")
        at = np.searchsorted(self._seeds, seeds[order])
        self._seeds = np.insert(self._seeds, at, seeds[order])
        self._rows = np.insert(self._rows, at, rows[order])

    def _evict(self, keep: int) -> None:
        """Keep the ``keep`` most used rows (moved to the front), halve their counts, rebuild the index."""
        self.evictions += 1
        kept = np.sort(np.argsort(-self._uses[: self._used], kind="stable")[:keep])
        self._bits[:keep] = self._bits[kept]
        self._row_seed[:keep] = self._row_seed[kept]
        self._uses[:keep] = self._uses[kept] // 2
        self._used = keep
        order = np.argsort(self._row_seed[:keep], kind="stable")
        self._seeds = self._row_seed[order].copy()
        self._rows = order.astype(np.int64)


class GreenListWatermark(LogitsWatermark):
    """transformers' green-list watermark (``WatermarkingConfig``) and an exact detector for it.

    The parameters are ``WatermarkingConfig``'s: ``greenlist_ratio`` (gamma), ``bias`` (delta), ``hashing_key``,
    ``seeding_scheme`` ("lefthash" or "selfhash") and ``context_width``; ``vocab_size`` is the model's.

    ``engine`` picks how green lists are drawn for detection: "numpy" (no torch needed), "torch" (its own
    ``randperm``, ~3x faster per new seed) or "auto" (torch when it is already imported, else numpy); all give the
    same lists. ``cache_bytes`` bounds the green-list cache (packed bits, vocab_size / 8 bytes per seed)."""

    scheme: ClassVar[str] = "greenlist"

    def __init__(
        self,
        vocab_size: int,
        hashing_key: int,
        *,
        greenlist_ratio: float = 0.25,
        bias: float = 2.0,
        seeding_scheme: SeedingScheme = "lefthash",
        context_width: int = 1,
        alpha: float = DEFAULT_ALPHA,
        engine: Engine = "auto",
        cache_bytes: int = DEFAULT_CACHE_BYTES,
    ) -> None:
        if vocab_size < 2:
            raise ValueError(f"vocab_size must be at least 2, got {vocab_size}")
        if not 0.0 < greenlist_ratio < 1.0:
            raise ValueError(f"greenlist_ratio must be in (0, 1), got {greenlist_ratio}")
        if seeding_scheme not in ("lefthash", "selfhash"):
            raise ValueError(f"seeding_scheme must be 'lefthash' or 'selfhash', got {seeding_scheme!r}")
        if context_width < 1:
            raise ValueError(f"context_width must be at least 1, got {context_width}")
        if engine not in ("auto", "numpy", "torch"):
            raise ValueError(f"engine must be 'auto', 'numpy' or 'torch', got {engine!r}")
        if engine == "torch" and importlib.util.find_spec("torch") is None:
            raise ValueError("engine 'torch' needs torch (the [hf] extra); 'numpy' gives the same lists")
        self.vocab_size = int(vocab_size)
        self._hashing_key = check_key(hashing_key, "hashing_key")
        self.greenlist_ratio = float(greenlist_ratio)
        self.bias = float(bias)
        self.seeding_scheme: SeedingScheme = seeding_scheme
        self.context_width = int(context_width)
        self.alpha = float(alpha)
        self.greenlist_size = int(self.vocab_size * self.greenlist_ratio)  # as transformers sizes it
        if not 0 < self.greenlist_size < self.vocab_size:
            raise ValueError(f"greenlist_ratio {greenlist_ratio} leaves no green or no red token of {vocab_size}")
        # The exact chance that a token is green under the null (gamma itself when gamma * vocab_size is whole).
        self.null_rate = self.greenlist_size / self.vocab_size
        self.table = GreenTable(self.vocab_size, self.greenlist_size, engine, cache_bytes)
        self._key_id = key_id(self.scheme, self._hashing_key)
        self._token_seeds: NDArray[np.uint32] | None = None
        self._fixed: NDArray[np.int64] | None = None
        self._init_lock = threading.Lock()

    @classmethod
    def from_secret(cls, secret: bytes, scope: str, vocab_size: int, **kwargs: Any) -> GreenListWatermark:
        """The watermark keyed by ``derive_key(secret, "greenlist/" + scope)``."""
        return cls(vocab_size, derive_key(secret, f"greenlist/{scope}"), **kwargs)

    def __repr__(self) -> str:
        return (
            f"GreenListWatermark(vocab_size={self.vocab_size}, key_id={self._key_id!r}, "
            f"greenlist_ratio={self.greenlist_ratio}, bias={self.bias}, seeding_scheme={self.seeding_scheme!r}, "
            f"context_width={self.context_width})"
        )

    @property
    def key_id(self) -> str:
        return self._key_id

    @property
    def hashing_key(self) -> int:
        return self._hashing_key

    def transformers_kwargs(self) -> dict[str, Any]:
        return {
            "greenlist_ratio": self.greenlist_ratio,
            "bias": self.bias,
            "hashing_key": self._hashing_key,
            "seeding_scheme": self.seeding_scheme,
            "context_width": self.context_width,
        }

    def watermarking_config(self) -> Any:
        return _config_class()(**self.transformers_kwargs())

    def request_processor(self) -> RequestProcessor:
        inner = self.processor()
        width = self.context_width

        def apply(prompt_ids: Any, output_ids: Any, logits: Any) -> Any:
            # The processor seeds from the last context_width tokens; fewer than that: no watermark (as transformers).
            tail = list(output_ids[-width:])
            if len(tail) < width:
                tail = (list(prompt_ids) + tail)[-width:]
            if len(tail) < width:
                return logits
            return one_row(inner, tail, logits)

        return apply

    # -- seeds ---------------------------------------------------------------------------------------------------

    def _seed_per_token(self) -> NDArray[np.uint32]:
        """lefthash: the generator seed (its low 32 bits, all that torch's Mersenne Twister uses) after each id."""
        if self._token_seeds is None:
            with self._init_lock:
                if self._token_seeds is None:
                    key = self._hashing_key
                    self._token_seeds = np.array(
                        [((key * token) % _SEED_MODULUS) & _LOW32 for token in range(self.vocab_size)], dtype=np.uint32
                    )
        return self._token_seeds

    def _fixed_table(self) -> NDArray[np.int64]:
        """selfhash: transformers' ``fixed_table`` (randperm(1_000_003) seeded by the key) at the vocabulary's ids."""
        if self._fixed is None:
            with self._init_lock:
                if self._fixed is None:
                    length = min(self.vocab_size, FIXED_TABLE_SIZE)
                    self._fixed = randperm_prefix(self._hashing_key, FIXED_TABLE_SIZE, length)
        return self._fixed

    def _selfhash_seeds(self, windows: NDArray[np.int64]) -> NDArray[np.uint32]:
        """Seeds of selfhash windows (rows of context_width ids ending with the scored token)."""
        fixed = self._fixed_table()
        a = fixed[windows % FIXED_TABLE_SIZE] + 1
        b = fixed[windows[:, -1] % FIXED_TABLE_SIZE] + 1
        # transformers: (hash_key * a * b).min().item() % (2**64 - 1), in int64 that wraps around.
        signed = ((np.int64(self._hashing_key) * a) * b[:, None]).min(axis=1)
        # For s < 0, s mod (2**64 - 1) = s + 2**64 - 1, whose low 32 bits are those of s - 1 in two's complement.
        adjusted: NDArray[np.int64] = np.where(signed < 0, signed - 1, signed)
        return (adjusted.view(np.uint64) & np.uint64(_LOW32)).astype(np.uint32)

    def positions(self, ids: NDArray[np.int64]) -> tuple[NDArray[np.uint32], NDArray[np.int64]]:
        """(seed, token) of every scored position of ``ids``, repeats included: as transformers' detector, the
        positions with a full context (from index context_width for lefthash, context_width - 1 for selfhash)."""
        width = self.context_width
        if self.seeding_scheme == "lefthash":
            if len(ids) <= width:
                return np.zeros(0, dtype=np.uint32), np.zeros(0, dtype=np.int64)
            return self._seed_per_token()[ids[width - 1 : -1]], ids[width:]
        if len(ids) < width:
            return np.zeros(0, dtype=np.uint32), np.zeros(0, dtype=np.int64)
        windows = sliding_window_view(ids, width)
        return self._selfhash_seeds(windows), ids[width - 1 :]

    # -- detection ----------------------------------------------------------------------------------------------

    def greenlist_ids(self, input_seq: TokenIds) -> NDArray[np.int64]:
        """The green list transformers' processor draws for ``input_seq`` (its ``_get_greenlist_ids``; for selfhash
        ``input_seq`` ends with the candidate token), as sorted ids."""
        ids = token_array(input_seq, self.vocab_size)
        if not len(ids):
            raise ValueError("the green list needs at least one context token")
        if self.seeding_scheme == "lefthash":
            seed = self._seed_per_token()[ids[-1:]]
        else:
            seed = self._selfhash_seeds(ids[-self.context_width :][None, :])
        return np.flatnonzero(self.table.masks(seed)[0]).astype(np.int64)

    def green_flags(self, token_ids: TokenIds) -> NDArray[np.bool_]:
        """Whether the token at each scored position is green, repeats included (see ``positions``)."""
        seeds, tokens = self.positions(token_array(token_ids, self.vocab_size))
        return self.table.contains(seeds, tokens)

    def score(self, token_ids: TokenIds) -> tuple[int, int]:
        """(distinct (seed, token) units scored, how many of them are green)."""
        seeds, tokens = self.positions(token_array(token_ids, self.vocab_size))
        if not len(tokens):
            return 0, 0
        units = distinct((seeds.astype(np.uint64) << np.uint64(32)) | tokens.astype(np.uint64))
        seeds, tokens = (units >> np.uint64(32)).astype(np.uint32), (units & np.uint64(_LOW32)).astype(np.int64)
        green = self.table.contains(seeds, tokens)
        return len(units), int(np.count_nonzero(green))

    def detect(self, token_ids: TokenIds) -> Detection:
        scored, hits = self.score(token_ids)
        if scored == 0:
            return self.nothing_scored()
        p_value = binomial_p_value(hits, scored, self.null_rate)
        return Detection(self.scheme, self._key_id, scored, hits, scored * self.null_rate, p_value, alpha=self.alpha)


@functools.cache
def _config_class() -> type[Any]:
    """transformers ``WatermarkingConfig`` whose processor runs on the CPU whatever the model's device."""
    from transformers import WatermarkingConfig

    class CpuWatermarkingConfig(WatermarkingConfig):  # type: ignore[misc]
        def construct_processor(self, vocab_size: int, device: Any = None) -> Any:
            return cpu_processor_class()(super().construct_processor(vocab_size, "cpu"))

    return CpuWatermarkingConfig
