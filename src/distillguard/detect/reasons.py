"""A reason behind a risk score: which signal, its value, what it means, and how much it moved the score."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Reason:
    signal: str
    value: float
    detail: str
    # Contribution to the score's logit: positive raises risk, negative lowers it.
    weight: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"signal": self.signal, "value": self.value, "detail": self.detail, "weight": self.weight}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Reason:
        return cls(str(doc["signal"]), float(doc["value"]), str(doc["detail"]), float(doc.get("weight", 0.0)))
