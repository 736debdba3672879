"""A planned call: what an account sends, when, from where, and what kind of answer it should get.

Populations produce ``Call`` objects; the driver (:mod:`distillguard.simulate.driver`) decides what happens to
them (admitted, refused with 429, retried) and turns each attempt into an event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"


@dataclass(slots=True)
class Call:
    ts_us: int
    # The OpenAI request body exactly as the client sends it (it includes "model" and, when set, "stream").
    body: dict[str, Any]
    key_id: str
    ip: str
    user_agent: str
    # Reply shape: chat, code, cot, label, json, tasks, score, rewrite, token, tool (see responses.synthesize).
    style: str = "chat"
    lang: str = "en"
    target_tokens: int = 300
    labels: tuple[str, ...] = ()
    endpoint: str = CHAT
    # Per-call entropy for the reply text (drawn by the account, so replies are reproducible).
    seed: int = 0
    # A body the gateway refuses with 400 and this error code (client bugs: a bad parameter value).
    reject: str | None = None

    @property
    def model(self) -> str:
        return str(self.body["model"])

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream", False))

    @property
    def max_tokens(self) -> int | None:
        value = self.body.get("max_tokens", self.body.get("max_completion_tokens"))
        return int(value) if isinstance(value, int) else None
