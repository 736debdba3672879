"""The response policy: what a level does to an account's calls, and who is never acted on.

Levels are the detector's verdicts (allow < watch < throttle < degrade < challenge < block); the policy maps each
to a set of actions (``respond.actions`` in the configuration) and decides, per call, what applies to the account:
its standing's level, lowered for verified accounts facing a challenge, recorded but not applied for allowlisted
accounts and in shadow mode. The decision is a dictionary lookup and a few comparisons: it runs on every call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from distillguard.config import Action, Level, RespondConfig

if TYPE_CHECKING:
    from distillguard.respond.standing import Standing
    from distillguard.store.models import Account

LEVELS: tuple[Level, ...] = ("allow", "watch", "throttle", "degrade", "challenge", "block")
RANK: dict[Level, int] = {level: i for i, level in enumerate(LEVELS)}


def stronger(a: Level, b: Level) -> Level:
    return a if RANK[a] >= RANK[b] else b


def weaker(a: Level, b: Level) -> Level:
    return a if RANK[a] <= RANK[b] else b


@dataclass(frozen=True, slots=True)
class Decision:
    """What applies to one call. ``applied`` is False in shadow mode and for allowlisted accounts: the actions
    are logged as what would have happened, and the call is served as if the level were ``allow``."""

    level: Level
    actions: frozenset[Action]
    case_id: str | None
    applied: bool
    why: str  # "enforce", "shadow", "allowlisted", "verified: challenge met"

    def has(self, action: Action) -> bool:
        return self.applied and action in self.actions

    def to_json(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "actions": sorted(self.actions),
            "case_id": self.case_id,
            "applied": self.applied,
            "why": self.why,
        }


ALLOW = Decision("allow", frozenset(), None, True, "enforce")


class Policy:
    def __init__(self, config: RespondConfig) -> None:
        self.config = config
        self._actions: dict[Level, frozenset[Action]] = {level: frozenset() for level in LEVELS}
        for level, actions in config.actions.items():
            self._actions[level] = frozenset(actions)  # type: ignore[index]
        self._orgs = frozenset(config.allowlist.orgs)
        self._accounts = frozenset(config.allowlist.accounts)
        self._shadow = config.mode == "shadow"

    def actions(self, level: Level) -> frozenset[Action]:
        return self._actions[level]

    def allowlisted(self, account: Account) -> bool:
        return account.account_id in self._accounts or (account.org_id is not None and account.org_id in self._orgs)

    def decide(self, standing: Standing | None, account: Account) -> Decision:
        if standing is None or standing.level == "allow":
            return ALLOW
        level = standing.level
        why = "enforce"
        if level == "challenge" and account.verified and self.config.verified_passes_challenge:
            level, why = "degrade", "verified: challenge met"
        if self.allowlisted(account):
            why = "allowlisted"
        elif self._shadow:
            why = "shadow"
        return Decision(level, self._actions[level], standing.case_id, why not in ("allowlisted", "shadow"), why)
