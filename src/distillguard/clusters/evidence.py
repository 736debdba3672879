"""Linking evidence between two accounts: each kind with a weight, a strength in [0, 1] and an explanation.

Kinds fall into four categories. *Infrastructure* (shared addresses, prefixes, networks, user agents, client
fingerprints) and *account* (payment fingerprint, sign-up bursts) evidence say two accounts may be run by the same
people; *content* (system prompts, templates, partitioned sweeps) and *behaviour* (synchronised activity,
coordinated model pivots) evidence say they do the same thing. A university NAT or a cloud egress address links
thousands of unrelated people, so a link counts only with content or behaviour evidence behind it
(``Link.admissible``).

Shared keys are weighted by how rare they are: an address used by two accounts says much more than one used by
five hundred (inverse document frequency over all accounts).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from distillguard.clusters.network import address_keys
from distillguard.clusters.profile import BUCKET_US, AccountProfile

Category = Literal["infrastructure", "account", "content", "behaviour"]


@dataclass(frozen=True, slots=True)
class Kind:
    name: str
    category: Category
    weight: float
    meaning: str


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("shared_ip", "infrastructure", 0.8, "calls from the same client addresses"),
        Kind("shared_prefix", "infrastructure", 0.4, "calls from the same /24 (IPv4) or /48 (IPv6) networks"),
        Kind("shared_network", "infrastructure", 0.2, "calls from the same autonomous system or /16 (/32) network"),
        Kind("shared_user_agent", "infrastructure", 0.5, "the same, uncommon, client user agent"),
        Kind("shared_client_fingerprint", "infrastructure", 0.5, "the same HTTP/TLS client fingerprint"),
        Kind("shared_payment", "account", 1.2, "the same payment fingerprint"),
        Kind("signup_burst", "account", 0.8, "accounts created together (and with the same e-mail domain)"),
        Kind("shared_system_prompt", "content", 1.2, "the same system prompt"),
        Kind("shared_template", "content", 1.5, "the same prompt templates dominate both accounts' traffic"),
        Kind("shared_recipe", "content", 1.0, "the same elicitation wrapper and sampling parameters dominate both"),
        Kind("partitioned_sweep", "content", 0.6, "one template, disjoint content: slices of one source"),
        Kind(
            "synchronised", "behaviour", 1.5, "active in the same minutes far beyond chance, or start and stop together"
        ),
        Kind("coordinated_pivot", "behaviour", 0.8, "moved to a newly released model within the same hour"),
    )
}
CONVICTING: frozenset[Category] = frozenset({"content", "behaviour"})
# A link's total weight must reach this, its convicting evidence this score, and two categories this score each.
MIN_LINK_WEIGHT = 1.5
MIN_CONVICTING_SCORE = 0.5
MIN_CATEGORY_SCORE = 0.3

SIGNUP_WINDOW_US = 2 * 3_600_000_000
PIVOT_WINDOW_US = 3_600_000_000
# A model counts as new when the traffic first sees it this long after it began; pivots are judged against it.
NEW_MODEL_AFTER_US = 24 * 3_600_000_000
PIVOT_AFTER_RELEASE_US = 48 * 3_600_000_000
SYNC_FULL_EXCESS = 6.0
START_STOP_US = 10 * 60_000_000
# Mail domains anyone can use: a shared one says nothing.
COMMON_MAIL = frozenset(
    {"gmail.com", "outlook.com", "hotmail.com", "yahoo.com", "icloud.com", "proton.me", "protonmail.com", "qq.com",
     "163.com", "126.com", "live.com", "aol.com", "gmx.de", "yandex.ru", "mail.ru", "naver.com"}
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Evidence:
    kind: str
    strength: float  # in (0, 1]
    detail: str

    @property
    def score(self) -> float:
        return KINDS[self.kind].weight * self.strength


@dataclass(frozen=True, slots=True)
class Link:
    a: int
    b: int
    evidence: tuple[Evidence, ...]

    @property
    def weight(self) -> float:
        return sum(e.score for e in self.evidence)

    @property
    def admissible(self) -> bool:
        """Strong enough, not on infrastructure and account metadata alone, and not on one category alone.

        Content alone is not enough either: developers who paste into the same popular coding template, or two
        teams running one public benchmark harness, share templates and nothing else. A campaign shares more."""
        by_category: dict[Category, float] = {}
        for e in self.evidence:
            category = KINDS[e.kind].category
            by_category[category] = by_category.get(category, 0.0) + e.score
        convicting = sum(by_category.get(c, 0.0) for c in CONVICTING)
        categories = sum(1 for score in by_category.values() if score >= MIN_CATEGORY_SCORE)
        return convicting >= MIN_CONVICTING_SCORE and categories >= 2 and self.weight >= MIN_LINK_WEIGHT


class Context:
    """Population statistics that the pair tests need: how many accounts share each key, the time span, and
    when each model first appeared."""

    def __init__(self, profiles: list[AccountProfile]) -> None:
        self.accounts = max(2, len(profiles))
        self._rarity: dict[str, float] = {}
        self._sweeps: dict[str, frozenset[str]] = {}
        self.df: Counter[str] = Counter()
        first, last = None, None
        releases: dict[str, int] = {}
        for p in profiles:
            self.df.update(f"ip:{k}" for k in p.ips)
            self.df.update(f"p:{k}" for k in p.prefixes)
            self.df.update(f"n:{k}" for k in p.networks)
            self.df.update(f"ua:{k}" for k in p.user_agents)
            self.df.update(f"fp:{k}" for k in p.fingerprints)
            self.df.update(f"t:{k}" for k in p.templates)
            self.df.update(f"s:{k}" for k in p.system_prompts)
            self.df.update(f"r:{k}" for k in p.recipes)
            if p.events:
                first = p.first_us if first is None else min(first, p.first_us)
                last = p.last_us if last is None else max(last, p.last_us)
            for model, ts in p.model_first.items():
                releases[model] = min(ts, releases.get(model, ts))
        self.start_us = first or 0
        self.end_us = last or 0
        self.buckets = max(1, ((last or 0) - self.start_us) // BUCKET_US + 1)
        # Models that appeared well after the traffic began: releases an extraction campaign would rush to.
        self.new_models = {m: ts for m, ts in releases.items() if ts - self.start_us >= NEW_MODEL_AFTER_US}

    def rarity(self, key: str) -> float:
        """1 for a key only two accounts share, falling towards 0 as it becomes common (log-scaled IDF)."""
        value = self._rarity.get(key)
        if value is None:
            df = max(2, self.df.get(key, 2))
            scale = math.log(self.accounts / 2)
            value = self._rarity[key] = max(0.0, math.log(self.accounts / df) / scale) if self.accounts > 2 else 1.0
        return value

    def sweep_templates(self, p: AccountProfile) -> frozenset[str]:
        """An account's most used templates, computed once per account (pairs ask for them again and again)."""
        value = self._sweeps.get(p.account_id)
        if value is None:
            value = self._sweeps[p.account_id] = frozenset(p.sweep_templates())
        return value


def _shared(a: Mapping[str, int], b: Mapping[str, int]) -> list[str]:
    small, large = (a, b) if len(a) <= len(b) else (b, a)
    return sorted(k for k in small if k in large)


def _rare_overlap(kind: str, prefix: str, shared: list[str], ctx: Context, noun: str) -> Evidence | None:
    if not shared:
        return None
    rarities = sorted(((ctx.rarity(prefix + k), k) for k in shared), reverse=True)
    strength = min(1.0, sum(r for r, _ in rarities))
    if strength <= 0.05:
        return None
    best = rarities[0][1]
    more = f" and {len(shared) - 1} more" if len(shared) > 1 else ""
    return Evidence(
        kind, round(strength, 3), f"{noun} {_short(best)}{more} (shared by {ctx.df[prefix + best]} accounts)"
    )


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _dominant(
    kind: str, prefix: str, a: Counter[str], b: Counter[str], na: int, nb: int, ctx: Context, noun: str
) -> Evidence | None:
    """The share of traffic both accounts put into common keys (templates, recipes), each weighted by rarity."""
    overlap = 0.0
    best, best_part = "", -1.0
    for key in _shared(a, b):
        part = min(a[key] / na, b[key] / nb) * ctx.rarity(prefix + key)
        overlap += part
        if part > best_part:
            best, best_part = key, part
    if overlap < 0.1:
        return None
    detail = f"{noun} {_short(best)} is {a[best]}/{na} and {b[best]}/{nb} of their calls"
    return Evidence(kind, round(min(1.0, overlap / 0.5), 3), detail)


def infrastructure(a: AccountProfile, b: AccountProfile, ctx: Context) -> Iterable[Evidence | None]:
    ips = _shared(a.ips, b.ips)
    yield _rare_overlap("shared_ip", "ip:", ips, ctx, "address")
    # A prefix counts only beyond the shared addresses in it: the same address is not evidence twice.
    covered = {keys.prefix for ip in ips if (keys := address_keys(ip)) is not None}
    prefixes = [p for p in _shared(a.prefixes, b.prefixes) if p not in covered]
    yield _rare_overlap("shared_prefix", "p:", prefixes, ctx, "network")
    yield _rare_overlap("shared_network", "n:", _shared(a.networks, b.networks), ctx, "network")
    yield _rare_overlap("shared_user_agent", "ua:", _shared(a.user_agents, b.user_agents), ctx, "user agent")
    yield _rare_overlap("shared_client_fingerprint", "fp:", _shared(a.fingerprints, b.fingerprints), ctx, "fingerprint")


def account(a: AccountProfile, b: AccountProfile) -> Iterable[Evidence | None]:
    if a.payment_fingerprint is not None and a.payment_fingerprint == b.payment_fingerprint:
        yield Evidence("shared_payment", 1.0, f"payment fingerprint {_short(a.payment_fingerprint, 16)}")
    if a.created_us is not None and b.created_us is not None:
        apart = abs(a.created_us - b.created_us)
        if apart <= SIGNUP_WINDOW_US:
            same_domain = a.email_domain is not None and a.email_domain == b.email_domain
            if same_domain and a.email_domain not in COMMON_MAIL:
                yield Evidence("signup_burst", 1.0, f"created {apart // 60_000_000} min apart, both @{a.email_domain}")
            else:
                yield Evidence("signup_burst", 0.4, f"created {apart // 60_000_000} min apart")


def content(a: AccountProfile, b: AccountProfile, ctx: Context) -> Iterable[Evidence | None]:
    yield _rare_overlap("shared_system_prompt", "s:", _shared(a.system_prompts, b.system_prompts), ctx, "system prompt")
    yield _dominant("shared_template", "t:", a.templates, b.templates, a.events, b.events, ctx, "template")
    yield _dominant("shared_recipe", "r:", a.recipes, b.recipes, a.events, b.events, ctx, "recipe")
    # Disjoint items under one shared template: slices of one source. Users of a popular template also send
    # different things, so the evidence is only as strong as the template is rare.
    for t in sorted(ctx.sweep_templates(a) & ctx.sweep_templates(b)):
        ca, cb = a.contents.get(t, set()), b.contents.get(t, set())
        rarity = ctx.rarity("t:" + t)
        if len(ca) >= 3 and len(cb) >= 3 and not ca & cb and rarity >= 0.2:
            detail = f"template {t}: {len(ca)} and {len(cb)} distinct items, none in common"
            yield Evidence("partitioned_sweep", round(rarity, 3), detail)
            break


def behaviour(a: AccountProfile, b: AccountProfile, ctx: Context) -> Iterable[Evidence | None]:
    common = len(a.buckets & b.buckets)
    expected = len(a.buckets) * len(b.buckets) / ctx.buckets
    excess = common - 3 * expected
    strength = max(0.0, excess - 2) / SYNC_FULL_EXCESS if common >= 3 else 0.0
    detail = f"active in {common} of the same 2-minute windows (chance: {expected:.1f})"
    if _starts_and_stops_together(a, b, ctx):
        strength += 0.5
        detail += "; started and stopped within 10 min of each other"
    if strength > 0:
        yield Evidence("synchronised", round(min(1.0, strength), 3), detail)
    for model, released in ctx.new_models.items():
        ta, tb = a.model_first.get(model), b.model_first.get(model)
        if ta is None or tb is None or abs(ta - tb) > PIVOT_WINDOW_US:
            continue
        if max(ta, tb) - released <= PIVOT_AFTER_RELEASE_US:
            hours = (min(ta, tb) - released) / 3_600_000_000
            yield Evidence("coordinated_pivot", 1.0, f"both moved to {model} {hours:.1f} h after it appeared")
            break


def _starts_and_stops_together(a: AccountProfile, b: AccountProfile, ctx: Context) -> bool:
    """Both began and ended within minutes of each other, inside the log: accounts active from its first to its
    last minute (every 24/7 service) share a start and a stop by construction, which says nothing."""
    if abs(a.first_us - b.first_us) > START_STOP_US or abs(a.last_us - b.last_us) > START_STOP_US:
        return False
    inside = (
        min(a.first_us, b.first_us) - ctx.start_us > START_STOP_US
        and ctx.end_us - max(a.last_us, b.last_us) > START_STOP_US
    )
    return inside


def link(i: int, j: int, a: AccountProfile, b: AccountProfile, ctx: Context) -> Link:
    """Every kind of evidence between two accounts."""
    found = (
        e
        for source in (infrastructure(a, b, ctx), account(a, b), content(a, b, ctx), behaviour(a, b, ctx))
        for e in source
        if e is not None
    )
    return Link(i, j, tuple(found))
