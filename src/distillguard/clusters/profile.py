"""What linking needs of one account: a bounded summary of its traffic and its sign-up metadata.

Profiles are built in one pass over the events (any order). Every collection stops growing at a fixed cap, so an
account's profile stays a few KB however much it sends: linking looks at what accounts have in common, and a
campaign's members share their infrastructure, templates and timing early and often.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from distillguard.clusters.network import address_keys
from distillguard.events.readers import Client
from distillguard.events.signals import RequestSignals
from distillguard.store.models import Account

# Activity is compared in buckets this wide: a campaign's scheduler fires its members within seconds, and a
# bucket of two minutes keeps a pulse that straddles a minute boundary in one bucket for most members.
BUCKET_US = 120_000_000
IP_CAP = 64
PREFIX_CAP = 32
AGENT_CAP = 8
TEMPLATE_CAP = 64
CONTENT_PER_TEMPLATE_CAP = 64
# Templates whose contents are kept (for partitioned sweeps): an account's most used ones.
SWEEP_TEMPLATES = 4
SYSTEM_CAP = 16
RECIPE_CAP = 16
BUCKET_CAP = 4096
MODEL_CAP = 16


def recipe(s: RequestSignals) -> str | None:
    """The elicitation recipe of an extraction-flavoured request: which CoT, training-data or rubric rule its
    wrapper matched (or a logprob probe) and the sampling parameters it asked for. A campaign's scripts share one
    recipe across members even when every item, and so every template, differs; None for other requests."""
    if not (s.cot or s.training_data or s.rubric or s.logprob_harvest):
        return None
    return recipe_key(
        (s.cot, s.training_data, s.rubric, s.logprob_harvest, s.max_tokens, s.temperature, s.top_logprobs, s.n)
    )


RecipeParts = tuple[str | None, str | None, str | None, bool, int | None, float | None, int | None, int]


def recipe_key(parts: RecipeParts) -> str:
    """A recipe as text: (cot, training_data, rubric, logprob_harvest, max_tokens, temperature, top_logprobs, n)."""
    return "|".join(map(str, parts))


def _add(counter: Counter[str], key: str, cap: int) -> None:
    if key in counter or len(counter) < cap:
        counter[key] += 1


@dataclass(slots=True)
class AccountProfile:
    account_id: str
    events: int = 0
    tokens: int = 0
    first_us: int = 0
    last_us: int = 0
    ips: Counter[str] = field(default_factory=Counter)
    prefixes: Counter[str] = field(default_factory=Counter)
    networks: Counter[str] = field(default_factory=Counter)
    user_agents: Counter[str] = field(default_factory=Counter)
    fingerprints: Counter[str] = field(default_factory=Counter)
    templates: Counter[str] = field(default_factory=Counter)
    # Elicitation recipes: the phrase rules a request matched with its sampling parameters (see ``recipe``).
    recipes: Counter[str] = field(default_factory=Counter)
    contents: dict[str, set[int]] = field(default_factory=dict)
    system_prompts: Counter[str] = field(default_factory=Counter)
    buckets: set[int] = field(default_factory=set)
    model_first: dict[str, int] = field(default_factory=dict)
    domains: Counter[str] = field(default_factory=Counter)
    # Calls whose client address was missing or not an IP address: that evidence is unavailable for them.
    no_address: int = 0
    bad_address: int = 0
    # Sign-up metadata (from the accounts file or store), when known.
    created_us: int | None = None
    payment_fingerprint: str | None = None
    email_domain: str | None = None
    org_id: str | None = None
    verified: bool = False

    def add(self, ts_us: int, signals: RequestSignals, client: Client | None, model: str | None, tokens: int) -> None:
        if self.events == 0 or ts_us < self.first_us:
            self.first_us = ts_us
        self.last_us = max(self.last_us, ts_us)
        self.events += 1
        self.tokens += tokens
        if len(self.buckets) < BUCKET_CAP:
            self.buckets.add(ts_us // BUCKET_US)
        if model is not None:
            first = self.model_first.get(model)
            if (first is None and len(self.model_first) < MODEL_CAP) or (first is not None and ts_us < first):
                self.model_first[model] = ts_us
        self.domains[signals.domain] += 1
        template = signals.template_id
        _add(self.templates, template, TEMPLATE_CAP)
        contents = self.contents.get(template)
        if contents is None and len(self.contents) < TEMPLATE_CAP:
            contents = self.contents[template] = set()
        if contents is not None and len(contents) < CONTENT_PER_TEMPLATE_CAP:
            contents.add(signals.content_sig)
        if signals.system_prompt_hash is not None:
            _add(self.system_prompts, signals.system_prompt_hash, SYSTEM_CAP)
        key = recipe(signals)
        if key is not None:
            _add(self.recipes, key, RECIPE_CAP)
        self._add_client(client)

    def _add_client(self, client: Client | None) -> None:
        if client is None or client.ip is None:
            self.no_address += 1
        else:
            keys = address_keys(client.ip)
            if keys is None:
                self.bad_address += 1
            else:
                _add(self.ips, keys.ip, IP_CAP)
                _add(self.prefixes, keys.prefix, PREFIX_CAP)
                _add(self.networks, f"as{client.asn}" if client.asn is not None else keys.network, PREFIX_CAP)
        if client is not None:
            if client.user_agent is not None:
                _add(self.user_agents, client.user_agent, AGENT_CAP)
            if client.fingerprint is not None:
                _add(self.fingerprints, client.fingerprint, AGENT_CAP)
            if client.tls is not None:
                _add(self.fingerprints, "tls:" + client.tls, AGENT_CAP)

    def apply(self, account: Account) -> None:
        self.created_us = _us(account.created_at)
        self.payment_fingerprint = account.payment_fingerprint or None
        self.email_domain = (account.email_domain or "").lower() or None
        self.org_id = account.org_id
        self.verified = account.verified

    def sweep_templates(self) -> list[str]:
        """The account's most used templates (those whose contents partitioned-sweep evidence compares)."""
        return [t for t, _ in self.templates.most_common(SWEEP_TEMPLATES)]

    def unavailable(self) -> list[str]:
        """Evidence that could not be used for this account, and why (reported with its cluster or verdict)."""
        out = []
        if self.no_address == self.events:
            out.append("client address: none logged")
        elif self.bad_address:
            out.append(f"client address: {self.bad_address} of {self.events} calls had a malformed address")
        if self.created_us is None:
            out.append("sign-up time: unknown")
        if self.payment_fingerprint is None:
            out.append("payment fingerprint: none")
        if self.email_domain is None:
            out.append("e-mail domain: none")
        return out


def _us(when: datetime | None) -> int | None:
    return None if when is None else int(when.timestamp() * 1_000_000)
