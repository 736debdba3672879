"""Request and token rate limits per key, account and org, on the `limits` library."""

from distillguard.limits.limiter import Decision, RateLimiter, Reservation
from distillguard.limits.rules import Rule, RuleSet, resolve_rules

__all__ = ["Decision", "RateLimiter", "Reservation", "Rule", "RuleSet", "resolve_rules"]
