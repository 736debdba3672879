"""Fixture loading and request builders shared by the signal tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"


def load_fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return data


def chat(text: str, role: str = "user", **params: Any) -> dict[str, Any]:
    """A chat request whose ``role`` message is ``text`` (a neutral user turn follows a system message)."""
    messages = [{"role": role, "content": text}]
    if role != "user":
        messages.append({"role": "user", "content": "Hello."})
    return {"model": "m", "messages": messages, **params}


def short_id(text: str) -> str:
    """A readable pytest id for a fixture text."""
    flat = " ".join(text.split())
    return flat[:50]
