"""Our traffic against partner indicators: which of an account's identifiers and calls a partner reported.

The index is built once per feed: keyed identifiers are matched by computing *our* values' HMACs under the group key
(one per account and kind, cached with the account), templates by signing each new skeleton once (cached by
template id: the same template comes back again and again) and looking its bands up, networks by cutting the
client address to its prefix. Nothing here decides anything; ``trust`` weighs what matched.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from distillguard.intel.feed import Feed
from distillguard.intel.privacy import GroupKey, IdentifierKind, ip_prefix
from distillguard.intel.templates import MIN_BANDS, TemplateSigner
from distillguard.store.models import Account

# Template ids remembered with their matches; the cache is cleared when it outgrows this (benign prompts are
# mostly unique, so it would otherwise grow with the traffic).
TEMPLATE_CACHE_MAX = 200_000


@dataclass(frozen=True, slots=True)
class Match:
    indicator_id: str
    kind: str
    # What matched, for the reason a reviewer reads (never the raw identifier: "payment fingerprint", "template,
    # 32/32 bands").
    detail: str


class Matcher:
    def __init__(self, feed: Feed, key: GroupKey, min_bands: int = MIN_BANDS) -> None:
        self.feed = feed
        self.key = key
        self.min_bands = min_bands
        self._signer = TemplateSigner(key)
        self._identifiers: dict[tuple[str, str], list[str]] = defaultdict(list)
        self._bands: dict[str, list[str]] = defaultdict(list)
        self._prefixes: dict[str, list[str]] = defaultdict(list)
        for ind in feed.indicators.values():
            for value in ind.values:
                if ind.kind == "template":
                    self._bands[value].append(ind.id)
                elif ind.kind == "ip_prefix":
                    self._prefixes[value].append(ind.id)
                else:
                    self._identifiers[(ind.kind, value)].append(ind.id)
        self._templates: dict[str, tuple[Match, ...]] = {}

    @property
    def empty(self) -> bool:
        return not self.feed.indicators

    def _identifier(self, kind: IdentifierKind, value: str | None, label: str) -> list[Match]:
        if not value or not self._identifiers:
            return []
        found = self._identifiers.get((kind, self.key.keyed(kind, value)), [])
        return [Match(i, kind, label) for i in found]

    def account(self, account: Account) -> list[Match]:
        """Matches on an account's own identifiers (its id, org, payment fingerprint, e-mail domain)."""
        return [
            *self._identifier("account_id", account.account_id, "account id"),
            *self._identifier("org_id", account.org_id, "organisation id"),
            *self._identifier("payment_fingerprint", account.payment_fingerprint, "payment fingerprint"),
            *self._identifier("email_domain", account.email_domain, "sign-up e-mail domain"),
        ]

    def call(
        self,
        template_id: str,
        prompt: Callable[[], str],
        client_ip: str | None,
        fingerprints: tuple[str | None, ...],
    ) -> list[Match]:
        """Matches on one call: its template (``prompt`` is read only for a template not seen before), its
        network and its client fingerprints."""
        out: list[Match] = []
        if self._bands:
            cached = self._templates.get(template_id)
            if cached is None:
                cached = self._template_matches(prompt())
                if len(self._templates) >= TEMPLATE_CACHE_MAX:
                    self._templates.clear()
                self._templates[template_id] = cached
            out += cached
        if self._prefixes:
            prefix = ip_prefix(client_ip)
            if prefix is not None:
                out += [Match(i, "ip_prefix", f"network {prefix}") for i in self._prefixes.get(prefix, [])]
        for fingerprint in fingerprints:
            out += self._identifier("client_fingerprint", fingerprint, "client fingerprint")
        return out

    def _template_matches(self, prompt: str) -> tuple[Match, ...]:
        if not prompt.strip():
            return ()
        signature = self._signer.sign_prompt(prompt)
        shared: dict[str, int] = defaultdict(int)
        for band in signature.bands:
            for indicator_id in self._bands.get(band, ()):
                shared[indicator_id] += 1
        return tuple(
            Match(i, "template", f"prompt template ({n}/{len(signature.bands)} signature bands shared)")
            for i, n in shared.items()
            if n >= self.min_bands
        )
