"""What a deployment knows about its campaigns, read once from its data directory: the facts an export shares.

One pass over the event log gathers, for every campaign to export, its members' keyed identifiers, networks,
client fingerprints, templates and models, and, for every value, how many accounts *outside* the campaign used it.
A value that many outsiders share (the SDK's header order, a popular "Translate into French:" template, a
university's NAT) describes ordinary traffic, not the campaign, and is not exported: a partner matching on it would
flag its own ordinary users.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from distillguard.detect.signals.template import skeleton, template_id
from distillguard.detect.signals.text import window
from distillguard.events.schema import Event
from distillguard.intel.privacy import ip_prefix
from distillguard.intel.templates import prompt_text
from distillguard.store.models import Account

EXAMPLES_PER_CAMPAIGN = 5


@dataclass
class CampaignFacts:
    cluster_id: str
    members: frozenset[str]
    org_ids: set[str] = field(default_factory=set)
    payment_fingerprints: set[str] = field(default_factory=set)
    email_domains: set[str] = field(default_factory=set)
    client_fingerprints: Counter[str] = field(default_factory=Counter)
    ip_prefixes: Counter[str] = field(default_factory=Counter)
    # template id -> (skeleton, calls); the skeleton stays here, only its keyed signature leaves.
    templates: dict[str, tuple[str, int]] = field(default_factory=dict)
    models: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    events: int = 0
    first_us: int | None = None
    last_us: int | None = None


@dataclass
class Outsiders:
    """For each value, the accounts outside every exported campaign that used it (kept up to ``limit`` + 1)."""

    limit: int
    seen: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def add(self, value: str, account_id: str) -> None:
        accounts = self.seen[value]
        if len(accounts) <= self.limit:
            accounts.add(account_id)

    def specific(self, value: str) -> bool:
        """True when at most ``limit`` accounts outside the campaigns used the value."""
        return len(self.seen.get(value, ())) <= self.limit


def gather(
    events: Iterable[Event],
    campaigns: Iterable[Mapping[str, Any]],
    accounts: Mapping[str, Account],
    max_outside: int,
    want_examples: bool,
) -> tuple[dict[str, CampaignFacts], Outsiders]:
    """Facts per campaign (by cluster id) from an event log and the accounts' metadata."""
    facts: dict[str, CampaignFacts] = {}
    member_of: dict[str, CampaignFacts] = {}
    for c in campaigns:
        members = frozenset(m["account_id"] for m in c["members"])
        f = facts[c["cluster_id"]] = CampaignFacts(c["cluster_id"], members)
        for account_id in members:
            member_of[account_id] = f
            account = accounts.get(account_id)
            if account is None:
                continue
            if account.org_id:
                f.org_ids.add(account.org_id)
            if account.payment_fingerprint:
                f.payment_fingerprints.add(account.payment_fingerprint)
            if account.email_domain:
                f.email_domains.add(account.email_domain)
    # Values of the accounts outside the campaigns, for the outsider counts; one key space (kinds prefixed).
    outsiders = Outsiders(max_outside)
    for event in events:
        prefix = ip_prefix(event.client_ip)
        prompt: str | None = None
        template: str | None
        if event.signals is not None:
            template = event.signals.template_id
        else:  # an imported log without stored signals: the template id from the prompt, as extract computes it
            prompt = _prompt(event)
            template = template_id(window(prompt)) if prompt else None
        mine = member_of.get(event.account_id)
        for value in (
            f"ip:{prefix}" if prefix else None,
            f"fp:{event.client_fingerprint}" if event.client_fingerprint else None,
            f"tls:{event.client_tls}" if event.client_tls else None,
            f"tpl:{template}" if template else None,
        ):
            if value is not None and mine is None:
                outsiders.add(value, event.account_id)
        if mine is None:
            continue
        mine.events += 1
        mine.first_us = event.ts_us if mine.first_us is None else min(mine.first_us, event.ts_us)
        mine.last_us = event.ts_us if mine.last_us is None else max(mine.last_us, event.ts_us)
        if prefix:
            mine.ip_prefixes[prefix] += 1
        for fingerprint in (event.client_fingerprint, event.client_tls):
            if fingerprint:
                mine.client_fingerprints[fingerprint] += 1
        if event.model:
            mine.models[event.model] += 1
        if template is None:
            continue
        if template in mine.templates:
            text, calls = mine.templates[template]
            mine.templates[template] = (text, calls + 1)
            continue
        prompt = prompt if prompt is not None else _prompt(event)
        if prompt.strip():
            mine.templates[template] = (skeleton(window(prompt)), 1)
            if want_examples and len(mine.examples) < EXAMPLES_PER_CAMPAIGN:
                mine.examples.append(prompt[:2000])
    return facts, outsiders


def _prompt(event: Event) -> str:
    try:
        body = orjson.loads(event.request_raw)
    except orjson.JSONDecodeError:
        return ""
    return prompt_text(body, event.endpoint) if isinstance(body, dict) else ""
