"""SynthID-Text (Dathathri et al. 2024) as transformers implements it, with our own exact mean-g-value detector.

Generation (transformers' ``SynthIDTextWatermarkLogitsProcessor``): for the candidate next token x after the
context of the last ``ngram_len - 1`` generated tokens, and for each depth d (one key per depth), a g-value
g_d(context, x) in {0, 1} is read from a random bit table: ``table[H_d mod table_size]``, where H_d is the n-gram
(context + x) hashed by an int64 linear congruential step per token, then once more with ``keys[d]``. Tournament
sampling reweights the next-token distribution depth by depth towards candidates with g = 1
(p <- p * (1 + g - E_p[g])), so watermarked text has more g = 1 than chance. A context already seen in the same
generation is not watermarked. Before ``ngram_len - 1`` tokens are generated the context is padded with zeros (not
taken from the prompt).

transformers' detector is a Bayesian classifier that must be trained on watermarked and unwatermarked text of the
model. Ours needs no training: it counts g = 1 among the g-values of the text and reports an exact binomial tail.

- The g-values are computed as transformers does (same hashing, same table: torch's ``randint(0, 2)`` from a CPU
  generator seeded with ``sampling_table_seed``, i.e. the low bit of each Mersenne Twister output), in numpy.
- A scoring unit is a distinct (depth, table entry) pair: a repeated n-gram counts once per depth, and so do two
  n-grams whose hashes land on the same entry (their g-values are the same bit, so counting both would double one
  piece of evidence).
- Null hypothesis: the text does not depend on the keys. Its assumption (the usual idealisation of a keyed hash):
  each unit's g-value is an independent draw with P[g = 1] = the table's share of ones, its exact ``null_rate``
  (about 0.5; not 0.5 itself, because the table is one fixed draw of bits). Under it, the number of g = 1 units is
  Binomial(units, null_rate), and the p-value is its exact upper tail.

The signal per unit is weaker than the green list's at the same quality cost, but each token gives ``depth`` units.

Key secrecy, measured against transformers' hashing: the table index is H_d mod table_size; with transformers'
default table of 2**16 entries (a power of two) it depends only on the low 16 bits of keys[d], so anyone holding
watermarked text can recover each depth's key by trying its 65,536 values. Our default table size, 65,521, is a
prime: the index then depends on all the bits of the key.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from typing import Any, ClassVar

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

# transformers' linear congruential hash step: h <- (h + x) * MULTIPLIER + INCREMENT in int64, from h = 1.
MULTIPLIER = 6364136223846793005
INCREMENT = 1
# A prime table size: the table index depends on every bit of the key (see the module docstring).
DEFAULT_TABLE_SIZE = 65_521
DEFAULT_DEPTH = 30
DEFAULT_NGRAM_LEN = 5


def sampling_table(seed: int, size: int) -> NDArray[np.int64]:
    """transformers' SynthID table, ``torch.randint(0, 2, (size,))`` from a CPU generator with ``manual_seed(seed)``:
    for a range below 2**32 torch takes each Mersenne Twister output modulo the range, here its low bit."""
    rng = np.random.RandomState(seed & 0xFFFFFFFF)
    return (rng.randint(0, 1 << 32, size=size, dtype=np.uint32) & 1).astype(np.int64)


def ngram_hashes(ids: NDArray[np.int64], ngram_len: int) -> NDArray[np.int64]:
    """transformers' ``accumulate_hash`` of every n-gram of ``ids`` (len(ids) - ngram_len + 1 of them)."""
    windows = sliding_window_view(ids, ngram_len)
    hashes = np.ones(len(windows), dtype=np.int64)
    multiplier = np.int64(MULTIPLIER)
    for column in range(ngram_len):
        hashes = (hashes + windows[:, column]) * multiplier + INCREMENT  # int64 arrays wrap around, as torch's
    return hashes


class SynthIDWatermark(LogitsWatermark):
    """transformers' SynthID-Text watermark (``SynthIDTextWatermarkingConfig``) and an exact detector for it.

    ``keys`` are the per-depth keys (one g-value per key and token); ``ngram_len``, ``sampling_table_size``,
    ``sampling_table_seed`` and ``context_history_size`` are the config's (the table seed is public: the keys are
    the secret)."""

    scheme: ClassVar[str] = "synthid"

    def __init__(
        self,
        vocab_size: int,
        keys: Sequence[int],
        *,
        ngram_len: int = DEFAULT_NGRAM_LEN,
        sampling_table_size: int = DEFAULT_TABLE_SIZE,
        sampling_table_seed: int = 0,
        context_history_size: int = 1024,
        alpha: float = DEFAULT_ALPHA,
    ) -> None:
        if vocab_size < 2:
            raise ValueError(f"vocab_size must be at least 2, got {vocab_size}")
        if not keys:
            raise ValueError("SynthID needs at least one key (one per depth)")
        if ngram_len < 2:
            raise ValueError(f"ngram_len must be at least 2, got {ngram_len}")
        if not 2 <= sampling_table_size <= 1 << 24:  # transformers' limit
            raise ValueError(f"sampling_table_size must be in [2, 2**24], got {sampling_table_size}")
        if not 0 <= sampling_table_seed < 1 << 64:
            raise ValueError(f"sampling_table_seed must be in [0, 2**64), got {sampling_table_seed}")
        self.vocab_size = int(vocab_size)
        self._keys = tuple(check_key(key, "a SynthID key") for key in keys)
        self.ngram_len = int(ngram_len)
        self.sampling_table_size = int(sampling_table_size)
        self.sampling_table_seed = int(sampling_table_seed)
        self.context_history_size = int(context_history_size)
        self.alpha = float(alpha)
        self.depth = len(self._keys)
        self._key_id = key_id(self.scheme, *self._keys)
        self._table: NDArray[np.int64] | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_secret(
        cls, secret: bytes, scope: str, vocab_size: int, *, depth: int = DEFAULT_DEPTH, **kwargs: Any
    ) -> SynthIDWatermark:
        """The watermark keyed by ``derive_key(secret, f"synthid/{scope}/{d}")`` for d = 0 .. depth - 1."""
        keys = [derive_key(secret, f"synthid/{scope}/{d}") for d in range(depth)]
        return cls(vocab_size, keys, **kwargs)

    def __repr__(self) -> str:
        return (
            f"SynthIDWatermark(vocab_size={self.vocab_size}, key_id={self._key_id!r}, depth={self.depth}, "
            f"ngram_len={self.ngram_len}, sampling_table_size={self.sampling_table_size})"
        )

    @property
    def key_id(self) -> str:
        return self._key_id

    @property
    def keys(self) -> tuple[int, ...]:
        return self._keys

    @property
    def table(self) -> NDArray[np.int64]:
        if self._table is None:
            with self._lock:
                if self._table is None:
                    self._table = sampling_table(self.sampling_table_seed, self.sampling_table_size)
        return self._table

    @property
    def null_rate(self) -> float:
        """P[g = 1] for a unit under the null: the exact share of ones in the table."""
        return float(self.table.sum()) / self.sampling_table_size

    def transformers_kwargs(self) -> dict[str, Any]:
        return {
            "ngram_len": self.ngram_len,
            "keys": list(self._keys),
            "context_history_size": self.context_history_size,
            "sampling_table_seed": self.sampling_table_seed,
            "sampling_table_size": self.sampling_table_size,
        }

    def watermarking_config(self) -> Any:
        return _config_class()(**self.transformers_kwargs())

    def request_processor(self) -> RequestProcessor:
        """Per-request processor. transformers' SynthID processor keeps state across the steps of one generation
        (the last contexts, to skip repeated ones); this wrapper feeds it one step per new output token, and if the
        engine calls it out of step (a request recomputed after preemption), rebuilds the state by replaying the
        output so far."""
        state: dict[str, Any] = {"inner": None, "steps": 0}

        def step(inner: Any, prompt_ids: Any, output_ids: Any, at: int, logits: Any) -> Any:
            # At step k the processor appends the last token of its input to its context (the first call only
            # sets the state up): the prompt's last token at k = 0, else output_ids[k - 1].
            last = output_ids[at - 1] if at > 0 else (prompt_ids[-1] if prompt_ids else 0)
            return one_row(inner, [last], logits)

        def apply(prompt_ids: Any, output_ids: Any, logits: Any) -> Any:
            at = len(output_ids)
            if state["inner"] is None or state["steps"] != at:
                import torch

                state["inner"] = self.processor()
                blank = torch.zeros(self.vocab_size, dtype=logits.dtype, device=logits.device)
                for k in range(at):
                    step(state["inner"], prompt_ids, output_ids, k, blank)
            state["steps"] = at + 1
            return step(state["inner"], prompt_ids, output_ids, at, logits)

        return apply

    # -- detection ----------------------------------------------------------------------------------------------

    def table_indices(self, token_ids: TokenIds) -> NDArray[np.int64]:
        """Table index of every (n-gram, depth) of the text: (len - ngram_len + 1, depth)."""
        ids = token_array(token_ids, self.vocab_size)
        if len(ids) < self.ngram_len:
            return np.zeros((0, self.depth), dtype=np.int64)
        hashes = ngram_hashes(ids, self.ngram_len)
        keys = np.array(self._keys, dtype=np.int64)
        keyed = (hashes[:, None] + keys[None, :]) * np.int64(MULTIPLIER) + INCREMENT
        indices: NDArray[np.int64] = np.mod(keyed, self.sampling_table_size)  # sign of the divisor, as torch's %
        return indices

    def g_values(self, token_ids: TokenIds) -> NDArray[np.int64]:
        """transformers' ``compute_g_values`` of the text: (len - ngram_len + 1, depth), repeats included."""
        return self.table[self.table_indices(token_ids)]

    def score(self, token_ids: TokenIds) -> tuple[int, int]:
        """(distinct (depth, table entry) units scored, how many have g = 1)."""
        indices = self.table_indices(token_ids)
        if not indices.size:
            return 0, 0
        depth_offset = np.arange(self.depth, dtype=np.int64) * self.sampling_table_size
        units = distinct(indices + depth_offset[None, :])
        return len(units), int(self.table[units % self.sampling_table_size].sum())

    def detect(self, token_ids: TokenIds) -> Detection:
        scored, hits = self.score(token_ids)
        if scored == 0:
            return self.nothing_scored()
        rate = self.null_rate
        p_value = binomial_p_value(hits, scored, rate)
        return Detection(self.scheme, self._key_id, scored, hits, scored * rate, p_value, alpha=self.alpha)


@functools.cache
def _config_class() -> type[Any]:
    """transformers ``SynthIDTextWatermarkingConfig`` whose processor runs on the CPU whatever the model's device."""
    from transformers import SynthIDTextWatermarkingConfig

    class CpuSynthIDTextWatermarkingConfig(SynthIDTextWatermarkingConfig):  # type: ignore[misc]
        def construct_processor(self, vocab_size: int, device: Any = None) -> Any:
            return cpu_processor_class()(super().construct_processor(vocab_size, "cpu"))

    return CpuSynthIDTextWatermarkingConfig
