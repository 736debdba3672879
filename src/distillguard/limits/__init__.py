"""Request and token rate limits per key, account and org, on the `limits` library."""

from distillguard.config import LimitsConfig
from distillguard.limits.limiter import Decision, Limiter, LimiterUnavailable, RateLimiter, Reservation
from distillguard.limits.rules import Rule, RuleSet, resolve_rules

__all__ = [
    "Decision",
    "Limiter",
    "LimiterUnavailable",
    "RateLimiter",
    "Reservation",
    "Rule",
    "RuleSet",
    "open_limiter",
    "resolve_rules",
]


def open_limiter(config: LimitsConfig) -> Limiter:
    """The limiter on the storage named by ``config.storage_uri``: ``memory://`` or ``redis://host:port/db``."""
    if config.storage_uri.startswith("memory://"):
        return RateLimiter()
    from distillguard.limits.redis import RedisLimiter

    return RedisLimiter(config.storage_uri, config.storage_timeout_ms / 1000, config.fail_mode)
