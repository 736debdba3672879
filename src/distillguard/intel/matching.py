"""Our traffic against partner indicators: which of an account's identifiers and calls a partner reported.

The index is built once per feed: keyed identifiers are matched by computing *our* values' HMACs under the group key
(one per account and kind), networks by cutting the client address to its prefix, templates in two steps:

- on a template's first sighting, its keyed template id (one HMAC, about 2 µs) against the partners' exact values:
  an identical skeleton matches at once;
- from its second sighting, its band signature (about 100 µs: the skeleton, a keyed MinHash, 32 band hashes),
  computed once and cached by template id: near-duplicates match too. Most ordinary prompts are sent once and never
  pay for a signature; a campaign's templates come back at once.

Nothing here decides anything; ``trust`` weighs what matched.
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
        self._exact: dict[str, list[str]] = defaultdict(list)
        self._prefixes: dict[str, list[str]] = defaultdict(list)
        for ind in feed.indicators.values():
            for value in ind.exact:
                self._exact[value].append(ind.id)
            for value in ind.values:
                if ind.kind == "template":
                    self._bands[value].append(ind.id)
                elif ind.kind == "ip_prefix":
                    self._prefixes[value].append(ind.id)
                else:
                    self._identifiers[(ind.kind, value)].append(ind.id)
        # Per template id: its exact matches (first sighting), and its near-duplicate matches (from the second).
        self._first: dict[str, tuple[Match, ...]] = {}
        self._near: dict[str, tuple[Match, ...]] = {}
        self.signatures_computed = 0

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
        """Matches on one call: its template (``prompt`` is read only on the template's second sighting, to sign
        it), its network and its client fingerprints."""
        out: list[Match] = []
        if self._bands or self._exact:
            out += self._template(template_id, prompt)
        if self._prefixes:
            prefix = ip_prefix(client_ip)
            if prefix is not None:
                out += [Match(i, "ip_prefix", f"network {prefix}") for i in self._prefixes.get(prefix, [])]
        for fingerprint in fingerprints:
            out += self._identifier("client_fingerprint", fingerprint, "client fingerprint")
        return out

    def _template(self, template_id: str, prompt: Callable[[], str]) -> tuple[Match, ...]:
        near = self._near.get(template_id)
        if near is not None:
            return near
        first = self._first.get(template_id)
        if first is None:
            if len(self._first) >= TEMPLATE_CACHE_MAX:
                self._first.clear()
            exact = self._signer.exact(template_id)
            first = self._first[template_id] = tuple(
                Match(i, "template", "prompt template (identical)") for i in self._exact.get(exact, ())
            )
            return first
        # Second sighting: sign it once; its near-duplicate matches (or its exact ones) hold from now on.
        if len(self._near) >= TEMPLATE_CACHE_MAX:
            self._near.clear()
        found = {m.indicator_id: m for m in self._template_matches(prompt())}
        found.update({m.indicator_id: m for m in first})
        near = self._near[template_id] = tuple(found.values())
        return near

    def _template_matches(self, prompt: str) -> tuple[Match, ...]:
        if not self._bands or not prompt.strip():
            return ()
        self.signatures_computed += 1
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
