"""How much of a completion's text the event log keeps: all of it, its start, or only its hash."""

from __future__ import annotations

import hashlib
from typing import Literal

TextMode = Literal["full", "truncated", "hashed"]


def retained_text(text: str, mode: TextMode, truncate_chars: int) -> tuple[str | None, str]:
    """``(text to store, SHA-256 of the whole text)``; the hash is always kept so duplicates stay findable."""
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    if mode == "full":
        return text, digest
    if mode == "truncated":
        return text[:truncate_chars], digest
    return None, digest
