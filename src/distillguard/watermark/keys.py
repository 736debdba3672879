"""Which watermark key and strength an answer gets: the deployment's, or the account's own."""

from __future__ import annotations

from functools import lru_cache

from distillguard.config import WatermarkConfig
from distillguard.watermark.response import ResponseWatermarker
from distillguard.watermark.text import TextKey, derive_key

CHAT = "/v1/chat/completions"


class Watermarks:
    """Keys derived from the deployment secret: one for the deployment, one per account (derived on demand)."""

    def __init__(self, config: WatermarkConfig, secret: bytes) -> None:
        self.config = config
        self.deployment = derive_key(secret, "deployment")
        self._secret = secret
        self.account_key = lru_cache(maxsize=65_536)(self._account_key)

    def _account_key(self, account_id: str) -> TextKey:
        return derive_key(self._secret, f"account:{account_id}")

    def keys_for(self, account_ids: list[str]) -> list[TextKey]:
        """The keys a detector should try: the deployment's and those of the given accounts."""
        return [self.deployment, *(self.account_key(a) for a in account_ids)]

    def for_call(self, account_id: str, flagged: bool, endpoint: str) -> ResponseWatermarker | None:
        """The watermarker of one answer: forced (strongest, the account's key) for degraded accounts, else as
        configured."""
        chat = endpoint == CHAT
        if flagged:
            return ResponseWatermarker(self.account_key(account_id), self.config.flagged_strength, chat)
        if not self.config.enabled:
            return None
        key = self.deployment if self.config.key_scope == "deployment" else self.account_key(account_id)
        return ResponseWatermarker(key, self.config.strength, chat)
