"""How much partner intel moves an account's risk, and when it may act on its own.

Each partner has a weight (0..1, from configuration). What an account matched is combined per reporting partner
by kind (a payment fingerprint or an account id says more than a network prefix; several kinds together more than
one) and across partners by noisy-OR, giving the partner evidence *E* in [0, 1], read as the probability the
partners' reports alone give; it joins our own risk *r* by noisy-OR too: ``1 - (1 - r)(1 - E)``. A trusted
partner (weight 0.6) reporting an account's card therefore brings a clean account to 0.6 (throttle), one we had at
watch (0.3) to 0.72 (degrade). Like CrowdSec's consensus, partner intel alone never enforces:

- **uncorroborated** (one partner, and nothing of our own agrees): the risk stays below ``throttle`` — the account
  is put on *watch* for analysts, nothing more;
- **corroborated**: the lift applies, up to just below ``challenge`` (challenge and block still need our own
  evidence or a reviewer). Corroboration is one of: the calls that matched the partner's *templates* are, by our
  own request signals, extraction-shaped (most of them elicit reasoning traces, generated training data or
  gradings, on content that is not a known benchmark); at least two partners report it independently; or our own
  rules already put the account at ``watch`` or above with a reason a reviewer can check (not the learned model
  alone), and then the lift stops at ``throttle``. A matching card or e-mail domain alone is never corroborated
  by the account's other calls: a lying partner who names a researcher's card cannot borrow the researcher's own
  chain-of-thought prompts as corroboration. Logprob requests do not count: classification apps use them.

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
from distillguard.detect.verdicts import Thresholds, Verdict
from distillguard.events.signals import RequestSignals
from distillguard.intel.feed import Feed
from distillguard.intel.matching import Match

KIND_STRENGTH: Mapping[str, float] = {
    "account_id": 1.0,
    "payment_fingerprint": 1.0,
    "org_id": 0.8,
    "template": 0.8,
    "client_fingerprint": 0.6,
    "email_domain": 0.4,
    "ip_prefix": 0.2,
}
# Our own corroboration: at least this share of the calls that matched partner templates are extraction-shaped.
OWN_SIGNAL_SHARE = 0.5
# A partner counts as an independent report once its matched evidence reaches this strength.
REPORT_STRENGTH = 0.3
INDEPENDENT_REPORTS = 2
# A rule reason at least this heavy is our own, explained evidence (the scorer's bar for acting on the model).
EXPLAINED_REASON_WEIGHT = 1.0
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


@dataclass
class _Seen:
    match: Match
    calls: int = 0


@dataclass
class _Account:
    seen: dict[str, _Seen] = field(default_factory=dict)
    # Calls that matched a partner template, and how many of them our own signals call extraction-shaped.
    template_calls: int = 0
    shaped_template_calls: int = 0


def extraction_shaped(signals: RequestSignals) -> bool:
    """Our own request-level verdict on one call: it elicits reasoning, training data or grading, off-benchmark."""
    return bool(signals.cot or signals.training_data or signals.rubric) and signals.benchmark is None


@dataclass
class PartnerEvidence:
    """Per-account partner matches, and what they do to its risk (called by the scorer on every rescoring)."""

    trust: Trust
    feed: Feed
    thresholds: Thresholds
    _accounts: dict[str, _Account] = field(default_factory=lambda: defaultdict(_Account))

    def record(self, account_id: str, matches: Iterable[Match], shaped: bool = False) -> bool:
        """Note the matches of an account (or of one of its calls, ``shaped`` by our own signals); True when the
        account should be rescored (a new indicator matched, or a template match changed its corroboration)."""
        state = self._accounts[account_id]
        new = False
        template = False
        for m in matches:
            entry = state.seen.get(m.indicator_id)
            if entry is None:
                entry = state.seen[m.indicator_id] = _Seen(m)
                new = True
            entry.calls += 1
            template = template or m.kind == "template"
        if template:
            state.template_calls += 1
            state.shaped_template_calls += shaped
        return new or template

    def matched(self, account_id: str) -> list[Match]:
        state = self._accounts.get(account_id)
        return [s.match for s in state.seen.values()] if state is not None else []

    def adjust(self, account_id: str, risk: float, reasons: list[Reason]) -> tuple[float, Reason | None]:
        """``risk`` and ``reasons`` are our own (rules and model); returns the risk with partner intel, and why."""
        state = self._accounts.get(account_id)
        if state is None or not state.seen:
            return risk, None
        seen = state.seen
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
        shaped = state.shaped_template_calls / state.template_calls if state.template_calls else 0.0
        by_signals = state.shaped_template_calls > 0 and shaped >= OWN_SIGNAL_SHARE
        # Our own detection agrees only with a reason a reviewer can check (a rule), not the learned model alone.
        explained = any(r.weight >= EXPLAINED_REASON_WEIGHT and r.signal != "learned_model" for r in reasons)
        by_risk = explained and risk >= self.thresholds.get("watch", 1.0)
        corroborated = by_signals or by_risk or len(independent) >= INDEPENDENT_REPORTS
        # Up to just below challenge when our signals or a second partner agree; one level above watch (throttle) when
        # only our own risk does; below throttle when nothing agrees.
        ceiling: Verdict = (
            "challenge"
            if by_signals or len(independent) >= INDEPENDENT_REPORTS
            else "degrade"
            if by_risk
            else "throttle"
        )
        cap = self.thresholds.get(ceiling, 1.0) - _EPS
        lifted = 1 - (1 - risk) * (1 - evidence)
        new_risk = max(risk, min(lifted, cap))
        names = "; ".join(
            f"{self.trust.partners[p].name} (weight {self.trust.partners[p].weight:.2f}): {', '.join(sorted(kinds[p]))}"
            for p in sorted(per_partner, key=lambda p: -per_partner[p])
        )
        if by_signals:
            why = (
                f"corroborated by our own signals ({100 * shaped:.0f}% of its {state.template_calls} calls on the "
                "partner's templates are extraction-shaped)"
            )
        elif by_risk:
            why = f"corroborated by our own detection (risk {risk:.2f} before partner intel)"
        elif corroborated:
            why = f"corroborated by {len(independent)} partners independently"
        else:
            why = "not corroborated (one partner, no extraction signal of our own): watch only"
        detail = f"partner intel on campaign {', '.join(sorted(campaigns))}: {names}; {why}"
        return new_risk, Reason("partner_intel", round(evidence, 4), detail, round(_logit(new_risk) - _logit(risk), 4))
