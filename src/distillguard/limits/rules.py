"""Which limits apply to a call: the tier's limits per scope, with per-account overrides."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

from distillguard.config import LimitsConfig, LimitSet
from distillguard.store.models import Account
from limits import RateLimitItem, parse_many

# "throttle": the tighter limits of an account the response policy throttles (respond.throttle).
Scope = Literal["key", "account", "org", "throttle"]
Kind = Literal["requests", "tokens"]


@dataclass(frozen=True, slots=True)
class Rule:
    scope: Scope
    kind: Kind
    identifier: str
    item: RateLimitItem
    storage_key: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        # Computed once per rule (rules are cached with the key), not once per call.
        object.__setattr__(self, "storage_key", self.item.key_for(self.scope, self.identifier, self.kind))

    def describe(self) -> str:
        return f"{self.scope} {self.kind}: {self.item.amount} per {_window_text(self.item)}"


@dataclass(frozen=True, slots=True)
class RuleSet:
    requests: tuple[Rule, ...]
    tokens: tuple[Rule, ...]


def _window_text(item: RateLimitItem) -> str:
    granularity = item.GRANULARITY.name
    return granularity if item.multiples == 1 else f"{item.multiples} {granularity}s"


@lru_cache(maxsize=1024)
def _items(spec: tuple[str, ...]) -> tuple[RateLimitItem, ...]:
    return tuple(item for s in spec for item in parse_many(s))


def _scope_rules(scope: Scope, identifier: str, limits: LimitSet) -> tuple[list[Rule], list[Rule]]:
    requests = [Rule(scope, "requests", identifier, i) for i in _items(tuple(limits.requests))]
    tokens = [Rule(scope, "tokens", identifier, i) for i in _items(tuple(limits.tokens))]
    return requests, tokens


def resolve_rules(config: LimitsConfig, key_id: str, account: Account) -> RuleSet:
    """The rules for one key of one account: key, account (tier or override) and org scopes."""
    tier = config.tiers.get(account.tier or config.default_tier) or config.tiers[config.default_tier]
    account_limits = tier.account
    if account.limits_override:
        account_limits = LimitSet(
            requests=account.limits_override.get("requests", account_limits.requests),
            tokens=account.limits_override.get("tokens", account_limits.tokens),
        )
    requests: list[Rule] = []
    tokens: list[Rule] = []
    scopes: list[tuple[Scope, str, LimitSet]] = [
        ("key", key_id, tier.key),
        ("account", account.account_id, account_limits),
    ]
    if account.org_id:
        scopes.append(("org", account.org_id, tier.org))
    for scope, identifier, limit_set in scopes:
        r, t = _scope_rules(scope, identifier, limit_set)
        requests += r
        tokens += t
    return RuleSet(tuple(requests), tuple(tokens))


def throttled(rules: RuleSet, account_id: str, limits: LimitSet) -> RuleSet:
    """``rules`` plus the throttle limits of one account (their own windows, apart from the tier's)."""
    requests, tokens = _scope_rules("throttle", account_id, limits)
    return RuleSet(rules.requests + tuple(requests), rules.tokens + tuple(tokens))
