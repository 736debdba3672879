"""How much partner intel moves an account's risk, and when it may act on its own.

Each partner has a weight (0..1, from configuration). What an account matched is summed per reporting partner by
kind (a payment fingerprint or an account id says more than a network prefix; several kinds together more than
one) and across partners by noisy-OR, giving the partner evidence *E* in [0, 1]; the risk's logit rises by
``INTEL_LOGIT * E``. Like CrowdSec's consensus, partner intel alone never enforces:

- **uncorroborated** (one partner, and our own detectors see nothing extraction-like in the account's calls): the
  risk stays below ``throttle`` — the account is put on *watch* for analysts, nothing more;
- **corroborated** (our own request signals agree — most of its calls elicit reasoning traces, training data,
  gradings or logprobs — or at least two partners report it independently): the lift applies, up to just below
  ``challenge``. Challenge and block still need our own evidence or a reviewer.

A false-positive report (a disputing STIX ``opinion``) from another trusted partner scales an indicator down by that
partner's weight; our own dispute removes it for us. Our own sightings never count as a second report (they
come from matching the same indicator).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from distillguard.config import IntelConfig
from distillguard.detect.reasons import Reason
from distillguard.intel.feed import Feed
from distillguard.intel.matching import Match

INTEL_LOGIT = 5.0
KIND_STRENGTH: Mapping[str, float] = {
    "account_id": 1.0,
    "payment_fingerprint": 1.0,
    "org_id": 0.8,
    "template": 0.8,
    "client_fingerprint": 0.6,
    "email_domain": 0.4,
    "ip_prefix": 0.2,
}
# Our own corroboration: at least this share of the account's calls carry an extraction signal.
OWN_SIGNAL_SHARE = 0.5
OWN_SIGNALS = ("cot_share", "training_data_share", "rubric_share", "logprob_harvest_share")
# A partner counts as an independent report once its matched evidence reaches this strength.
REPORT_STRENGTH = 0.3
INDEPENDENT_REPORTS = 2
_EPS = 1e-6


@dataclass(frozen=True)
class Partner:
    name: str
    weight: float


@dataclass(frozen=True)
class Trust:
    partners: Mapping[str, Partner]
    self_identity: str

    @classmethod
    def from_config(cls, config: IntelConfig, self_identity: str) -> Trust:
        return cls({p.identity: Partner(p.name, p.weight) for p in config.partners}, self_identity)


def _logit(p: float) -> float:
    p = min(max(p, _EPS), 1 - _EPS)
    return math.log(p / (1 - p))


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


@dataclass
class _Seen:
    match: Match
    calls: int = 0


@dataclass
class PartnerEvidence:
    """Per-account partner matches, and what they do to its risk (called by the scorer on every rescoring)."""

    trust: Trust
    feed: Feed
    thresholds: Mapping[str, float]
    _matches: dict[str, dict[str, _Seen]] = field(default_factory=lambda: defaultdict(dict))

    def record(self, account_id: str, matches: Iterable[Match]) -> bool:
        """Note matches for an account; True when one is new (the account should be rescored)."""
        new = False
        seen = self._matches[account_id]
        for m in matches:
            entry = seen.get(m.indicator_id)
            if entry is None:
                entry = seen[m.indicator_id] = _Seen(m)
                new = True
            entry.calls += 1
        return new

    def matched(self, account_id: str) -> list[Match]:
        return [s.match for s in self._matches.get(account_id, {}).values()]

    def adjust(self, account_id: str, risk: float, features: Mapping[str, float]) -> tuple[float, Reason | None]:
        seen = self._matches.get(account_id)
        if not seen:
            return risk, None
        strengths: dict[str, list[float]] = defaultdict(list)
        kinds: dict[str, set[str]] = defaultdict(set)
        campaigns: set[str] = set()
        for indicator_id, entry in seen.items():
            ind = self.feed.indicators.get(indicator_id)
            if ind is None:
                continue
            disputes = self.feed.disputed.get(indicator_id, {})
            if self.trust.self_identity in disputes:
                continue
            damp = math.prod(1 - self.trust.partners[d].weight for d in disputes if d in self.trust.partners)
            for reporter in self.feed.reporters(indicator_id) - {self.trust.self_identity}:
                if reporter in self.trust.partners:
                    strengths[reporter].append(KIND_STRENGTH.get(ind.kind, 0.2) * damp)
                    kinds[reporter].add(entry.match.detail.split(" (")[0])
                    campaigns.add(ind.campaign)
        if not strengths:
            return risk, None
        per_partner = {p: 1 - math.prod(1 - s for s in ss) for p, ss in strengths.items()}
        evidence = 1 - math.prod(1 - self.trust.partners[p].weight * s for p, s in per_partner.items())
        independent = [p for p, s in per_partner.items() if s >= REPORT_STRENGTH]
        own = max((features.get(name, 0.0) for name in OWN_SIGNALS), default=0.0)
        corroborated_by_us = own >= OWN_SIGNAL_SHARE
        corroborated = corroborated_by_us or len(independent) >= INDEPENDENT_REPORTS
        cap = self.thresholds.get("challenge" if corroborated else "throttle", 1.0) - _EPS
        lifted = _sigmoid(_logit(risk) + INTEL_LOGIT * evidence)
        new_risk = max(risk, min(lifted, cap))
        names = "; ".join(
            f"{self.trust.partners[p].name} (weight {self.trust.partners[p].weight:.2f}): {', '.join(sorted(kinds[p]))}"
            for p in sorted(per_partner, key=lambda p: -per_partner[p])
        )
        if corroborated_by_us:
            why = f"corroborated by our own signals ({100 * own:.0f}% of its calls are extraction-shaped)"
        elif corroborated:
            why = f"corroborated by {len(independent)} partners independently"
        else:
            why = "not corroborated (one partner, no extraction signal of our own): watch only"
        detail = f"partner intel on campaign {', '.join(sorted(campaigns))}: {names}; {why}"
        return new_risk, Reason("partner_intel", round(evidence, 4), detail, round(_logit(new_risk) - _logit(risk), 4))
