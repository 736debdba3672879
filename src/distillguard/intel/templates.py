"""Prompt templates as keyed MinHash/LSH band signatures: near-duplicates match across providers, the text never
leaves.

A template is the skeleton of a prompt (``detect.signals.template.skeleton``: the text with its variable parts
masked). Its word 3-gram shingles go through a MinHash of ``NUM_PERM`` permutations whose base hash is keyed by the
group key, and the signature is cut into ``BANDS`` bands of ``ROWS`` rows; each band is hashed once more under the
key into 16 hex digits. Two templates whose shingle sets have Jaccard similarity *s* share a given band with
probability *s*^ROWS, so identical skeletons share all bands and unrelated ones almost none; a match needs at
least ``MIN_BANDS`` shared bands (the false-match rate at s = 0.3 is about 1e-4, the hit rate at s = 0.7 about 0.95).
Each signature also carries ``exact``, a keyed hash of the template id: an identical skeleton matches with one HMAC.

Without the key, band values are HMAC outputs: they reveal neither words nor shingles. With the key, a member can
test a guessed template (docs/intel.md says what that means).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from datasketch import MinHash

from distillguard.detect.signals.request import read_request
from distillguard.detect.signals.template import skeleton
from distillguard.detect.signals.text import window
from distillguard.intel.privacy import GroupKey

SCHEME = "minhash-lsh-v1"
NUM_PERM = 128
BANDS = 32
ROWS = NUM_PERM // BANDS
MIN_BANDS = 4
SHINGLE_WORDS = 3
# The MinHash permutations are public parameters (every member must use the same); the key is in the base hash.
PERMUTATION_SEED = 20260101


@dataclass(frozen=True, slots=True)
class TemplateSignature:
    bands: tuple[str, ...]

    def shared(self, other: TemplateSignature) -> int:
        """How many bands the two signatures share at the same position."""
        return sum(a == b for a, b in zip(self.bands, other.bands, strict=True))

    def to_json(self) -> dict[str, Any]:
        return {"scheme": SCHEME, "bands": list(self.bands)}


class TemplateSigner:
    """Signs skeletons under one group key; holds the keyed hash function and the (public) permutations."""

    def __init__(self, key: GroupKey) -> None:
        self._shingle_key = key.derive("template shingles")[:32]
        self._band_key = key.derive("template bands")[:32]
        self._exact_key = key.derive("template exact")
        self._template = MinHash(num_perm=NUM_PERM, seed=PERMUTATION_SEED, hashfunc=self._hash32)

    def _hash32(self, data: bytes) -> int:
        return int.from_bytes(hashlib.blake2b(data, digest_size=4, key=self._shingle_key).digest(), "little")

    def sign_skeleton(self, text: str) -> TemplateSignature:
        words = text.split()
        if len(words) <= SHINGLE_WORDS:
            shingles = [" ".join(words).encode()]
        else:
            shingles = [" ".join(words[i : i + SHINGLE_WORDS]).encode() for i in range(len(words) - SHINGLE_WORDS + 1)]
        # A copy of the template MinHash shares its permutations instead of drawing them again (the costly part).
        m = self._template.copy()
        m.update_batch(shingles)
        values = np.asarray(m.hashvalues, dtype=np.uint64)
        bands = tuple(
            hashlib.blake2b(
                i.to_bytes(2, "big") + values[i * ROWS : (i + 1) * ROWS].tobytes(), digest_size=8, key=self._band_key
            ).hexdigest()
            for i in range(BANDS)
        )
        return TemplateSignature(bands)

    def exact(self, template_id: str) -> str:
        """The keyed form of a template id (the hash of its skeleton): identical skeletons match on first sight, for
        the price of one HMAC, without signing anything."""
        return hmac.new(self._exact_key, template_id.encode(), hashlib.sha256).hexdigest()[:32]

    def sign_prompt(self, text: str) -> TemplateSignature:
        return self.sign_skeleton(skeleton(window(text)))


def prompt_text(body: Mapping[str, Any], endpoint: str) -> str:
    """The prompt text the detectors read (the last user message or the completion prompt)."""
    return read_request(body, endpoint).text
