"""Which watermark key and strength an answer gets: the deployment's, or the account's own."""

from __future__ import annotations

from functools import lru_cache

from distillguard.config import WatermarkConfig
from distillguard.watermark.response import ResponseWatermarker
from distillguard.watermark.text import TextKey, derive_key


class Watermarks:
    """Keys derived from the deployment secret: one for the deployment, one per account (derived on demand)."""

    def __init__(self, config: WatermarkConfig, secret: bytes) -> None:
        self.config = config
        self.deployment = derive_key(secret, "deployment")
        self._secret = secret
        self.account_key = lru_cache(maxsize=65_536)(self._account_key)

    def _account_key(self, account_id: str) -> TextKey:
        return derive_key(self._secret, f"account:{account_id}")

    def cluster_key(self, cluster_id: str) -> TextKey:
        return derive_key(self._secret, f"cluster:{cluster_id}")

    def keys_for(self, account_ids: list[str], cluster_ids: list[str] | None = None) -> list[TextKey]:
        """The keys a detector should try: the deployment's and those of the given accounts and campaigns."""
        return [
            self.deployment,
            *(self.account_key(a) for a in account_ids),
            *(self.cluster_key(c) for c in cluster_ids or []),
        ]

    def _own_key(self, account_id: str, campaign: str | None) -> TextKey:
        return self.cluster_key(campaign) if campaign else self.account_key(account_id)

    @property
    def needs_campaign(self) -> bool:
        """Whether unflagged answers are keyed by campaign (flagged ones always are, when they have one)."""
        return self.config.enabled and self.config.key_scope == "cluster"

    def for_call(
        self, account_id: str, flagged: bool, chat: bool, campaign: str | None = None
    ) -> ResponseWatermarker | None:
        """The watermarker of one answer (``chat``: a chat completion, else a legacy completion): forced (strongest;
        the campaign's key, else the account's) for degraded accounts, else as configured."""
        if flagged:
            return ResponseWatermarker(
                self._own_key(account_id, campaign), self.config.flagged_strength, chat, self.config.spacing
            )
        if not self.config.enabled:
            return None
        scope = self.config.key_scope
        if scope == "deployment":
            key = self.deployment
        else:
            key = self._own_key(account_id, campaign if scope == "cluster" else None)
        return ResponseWatermarker(key, self.config.strength, chat, self.config.spacing)
