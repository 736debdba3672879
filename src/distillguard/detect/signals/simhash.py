"""64-bit SimHash of word-bigram shingles, in pure Python with one big-integer addition per feature.

SimHash (Charikar 2002): every feature maps to 64 pseudo-random bits; each output bit is the majority vote of that
bit over all features. Texts that share most features get signatures a few bits apart; unrelated texts land ~32
bits apart. Features are bigrams of the lower-cased tokens (character bigrams for Chinese/Japanese/Thai, whose
tokens are single characters), so word order matters a little and shared stopwords matter less than with single
words; a one-token text has its token as the only feature.

How it stays cheap (a few microseconds for a typical prompt, on the gateway's request path):

- a feature's key is the top KEY_BITS bits of the CRC-32 of its UTF-8 (a bigram's CRC is chained from the first
  token's, so no joined string is built). CRC-32 is a C call and, unlike ``hash``, the same in every process;
- each of the 4,096 keys has a precomputed "spread" integer: its 64 pseudo-random bits (splitmix64 of the key)
  placed one per byte of a 512-bit integer. Summing the spreads of all features counts the votes of all 64 bits at
  once in one C-level ``sum``, with no per-bit Python loop (and no numpy call overhead);
- the majority test is an addition that carries each byte's count into its top bit exactly when the count is over
  half, and the 64 top bits are read with one ``bytes.translate``.

Up to MAX_FEATURES features are used (the head and tail of longer texts), so that no byte of the sum overflows.
Keys of 12 bits mean two different features share a bit pattern with probability 1/4,096, which barely moves
distances (two unrelated 60-feature texts share about one key); a 4,096-entry table stays in the CPU caches,
where a 65,536-entry one (16-bit keys) measured 1.5x slower per call on real prompts.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence
from itertools import repeat
from operator import rshift

import numpy as np

MASK64 = (1 << 64) - 1
# One byte per bit holds its vote count plus the majority offset (see simhash_bytes): at most 255 features.
MAX_FEATURES = 255
KEY_BITS = 12
_HEAD_FEATURES = 128

_ONES = int.from_bytes(b"\x01" * 64, "little")
# Byte -> ASCII "1" when its top bit is set, else "0": reads the 64 majority bits as a binary string.
_TOP_BIT_DIGIT = bytes(0x31 if b >= 0x80 else 0x30 for b in range(256))


def _spread_table() -> list[int]:
    """The spread integers of all keys, built once at import (~2 ms) from splitmix64 of each key."""
    x = np.arange(1 << KEY_BITS, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    x = x ^ (x >> np.uint64(31))
    bits = np.unpackbits(x.astype("<u8").view(np.uint8), bitorder="little").tobytes()
    return [int.from_bytes(bits[i : i + 64], "little") for i in range(0, len(bits), 64)]


_SPREAD = _spread_table()


def _keys(tokens: Sequence[bytes]) -> Iterator[int]:
    """The keys of the bigrams of ``tokens`` (at least two), lazily: no intermediate list on the hot path."""
    crcs = list(map(zlib.crc32, tokens[:-1]))
    # crc32(b, crc32(a)) is the CRC of a+b: the bigram's hash without building the joined bytes.
    return map(rshift, map(zlib.crc32, tokens[1:], crcs), repeat(32 - KEY_BITS))


def feature_keys(tokens: Sequence[bytes]) -> list[int]:
    """The KEY_BITS-bit keys of a text's features: token bigrams, or the single token of a one-token text."""
    if len(tokens) == 1:
        return [zlib.crc32(tokens[0]) >> (32 - KEY_BITS)]
    if len(tokens) - 1 > MAX_FEATURES:
        # The head and the tail of a long text: HEAD_FEATURES + (MAX_FEATURES - HEAD_FEATURES) bigrams.
        return [*_keys(tokens[: _HEAD_FEATURES + 1]), *_keys(tokens[_HEAD_FEATURES - MAX_FEATURES - 1 :])]
    return list(_keys(tokens))


def simhash_bytes(tokens: Sequence[bytes]) -> int:
    """Unsigned 64-bit SimHash of UTF-8 tokens (0 for no tokens)."""
    if not tokens:
        return 0
    if 1 < len(tokens) <= MAX_FEATURES + 1:
        count = len(tokens) - 1
        votes: int = sum(map(_SPREAD.__getitem__, _keys(tokens)))
    else:
        keys = feature_keys(tokens)
        count = len(keys)
        votes = sum(map(_SPREAD.__getitem__, keys))
    # A byte's count c becomes c + 127 - n // 2, which reaches 128 (top bit set) exactly when 2c > n; with
    # n <= 255 the byte never overflows into its neighbour.
    votes += (127 - count // 2) * _ONES
    return int(votes.to_bytes(64, "little").translate(_TOP_BIT_DIGIT)[::-1], 2)


def simhash(tokens: Sequence[str]) -> int:
    """Unsigned 64-bit SimHash of ``tokens`` (0 for no tokens)."""
    return simhash_bytes([t.encode("utf-8", "surrogatepass") for t in tokens])


def hamming(a: int, b: int) -> int:
    """Bits that differ between two SimHashes (signed int64 or unsigned forms both work)."""
    return ((a ^ b) & MASK64).bit_count()
