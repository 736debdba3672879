"""What a watermark detector reports: the same shape for every scheme, with an exact p-value."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The default detection threshold: a text is called watermarked at p <= 1e-6.
DEFAULT_ALPHA = 1e-6


@dataclass(frozen=True, slots=True)
class Detection:
    scheme: str  # "lexical-v1" (text, post hoc), "greenlist" or "synthid" (logits)
    key_id: str | None  # the held key that matches best (None when nothing could be scored)
    scored: int  # positions scored, each distinct (context, token) counted once
    hits: int  # of those, positions that agree with the key
    expected: float  # hits expected without the watermark
    p_value: float  # exact, under the null hypothesis that the text is independent of the key
    alpha: float = DEFAULT_ALPHA
    keys_tried: int = 1  # the p-value is corrected for the number of keys tried (Bonferroni)

    @property
    def detected(self) -> bool:
        return self.scored > 0 and self.p_value <= self.alpha

    def to_json(self) -> dict[str, Any]:
        return {
            "scheme": self.scheme,
            "detected": self.detected,
            "p_value": self.p_value,
            "alpha": self.alpha,
            "scored": self.scored,
            "hits": self.hits,
            "expected": round(self.expected, 3),
            "key_id": self.key_id,
            "keys_tried": self.keys_tried,
        }
