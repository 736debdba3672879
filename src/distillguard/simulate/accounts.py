"""Account metadata: the accounts file of docs/events.md, plus what the simulator needs (time zone, label).

Metadata carries real but noisy signal. Attackers are often new, unverified, pay with cards shared across a
campaign and use throwaway mail domains; but some benign accounts are new too (sign-ups during the simulated
week), families and teams share a card, and many attackers use gmail.com like everyone else.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from distillguard.simulate.clock import DAY_US, HOUR_US, Rfc3339
from distillguard.simulate.rng import hex_id, lognormal

Label = Literal["benign", "attack"]

# (country, UTC offset in whole hours, weight among benign sign-ups). The offset is the main population centre's.
COUNTRIES: tuple[tuple[str, int, float], ...] = (
    ("US", -5, 22.0), ("US", -8, 12.0), ("CA", -5, 3.0), ("BR", -3, 4.0), ("MX", -6, 2.0), ("AR", -3, 1.0),
    ("GB", 0, 5.0), ("DE", 1, 5.0), ("FR", 1, 4.0), ("ES", 1, 2.5), ("IT", 1, 2.0), ("NL", 1, 1.5),
    ("PL", 1, 1.5), ("SE", 1, 1.0), ("TR", 3, 1.5), ("RU", 3, 1.5), ("UA", 2, 1.0), ("IN", 5, 7.0),
    ("ID", 7, 2.0), ("VN", 7, 1.5), ("SG", 8, 1.5), ("CN", 8, 2.0), ("HK", 8, 1.0), ("TW", 8, 1.0),
    ("KR", 9, 3.0), ("JP", 9, 3.5), ("AU", 10, 2.0), ("NG", 1, 1.0), ("KE", 3, 0.5), ("EG", 2, 0.5),
)  # fmt: skip
# Main language per country, for the content an account writes (casual users mostly write their own language).
LANGUAGE_OF = {
    "US": "en", "CA": "en", "GB": "en", "AU": "en", "IN": "en", "SG": "en", "NG": "en", "KE": "en",
    "BR": "pt", "MX": "es", "AR": "es", "ES": "es", "DE": "de", "FR": "fr", "IT": "it", "NL": "en",
    "PL": "en", "SE": "en", "TR": "tr", "RU": "ru", "UA": "ru", "ID": "id", "VN": "en", "CN": "zh",
    "HK": "zh", "TW": "zh", "KR": "ko", "JP": "ja", "EG": "en",
}  # fmt: skip

CONSUMER_MAIL = (
    "gmail.com", "gmail.com", "gmail.com", "outlook.com", "hotmail.com", "yahoo.com", "icloud.com", "proton.me",
    "qq.com", "163.com", "naver.com", "yandex.ru", "mail.ru", "gmx.de", "web.de", "orange.fr", "libero.it",
)  # fmt: skip
_WORDS = (
    "north", "blue", "river", "stone", "bright", "cedar", "atlas", "nova", "summit", "quant", "lumen", "harbor",
    "pixel", "vector", "maple", "orbit", "signal", "delta", "forge", "prairie", "helix", "kite", "arbor", "zen",
)  # fmt: skip
_SUFFIX = ("labs", "tech", "soft", "works", "hq", "ai", "data", "health", "retail", "logistics", "bank", "media")
_TLDS = ("com", "io", "ai", "de", "co.uk", "fr", "net", "co", "dev", "app")
_THROWAWAY_TLDS = ("top", "xyz", "site", "online", "click", "shop", "icu", "store")


def company_domain(rng: random.Random) -> str:
    return f"{rng.choice(_WORDS)}{rng.choice(_SUFFIX)}.{rng.choice(_TLDS)}"


def university_domain(rng: random.Random) -> str:
    name = rng.choice(_WORDS) + rng.choice(("state", "tech", "poly", "u", ""))
    return rng.choice((f"{name}.edu", f"uni-{name}.de", f"{name}.ac.uk", f"{name}.edu.au", f"{name}.ac.jp"))


def throwaway_domain(rng: random.Random) -> str:
    kind = rng.choice(("mail", "box", "inbox", ""))
    return f"{rng.choice(_WORDS)}{rng.randrange(10, 999)}{kind}.{rng.choice(_THROWAWAY_TLDS)}"


def consumer_domain(rng: random.Random) -> str:
    return rng.choice(CONSUMER_MAIL)


def pick_country(rng: random.Random, countries: Sequence[tuple[str, int, float]] = COUNTRIES) -> tuple[str, int]:
    country, tz, _ = rng.choices(countries, weights=[c[2] for c in countries])[0]
    return country, tz


def benign_created_at(rng: random.Random, start_us: int, span_us: int) -> int:
    """Most benign accounts are months old; some signed up last week, a few during the simulated span."""
    roll = rng.random()
    if roll < 0.05:
        return start_us + int(rng.random() * 0.8 * span_us)
    if roll < 0.15:
        return start_us - int(rng.random() * 14 * DAY_US)
    return start_us - int(max(1.0, lognormal(rng, 220.0, 0.9)) * DAY_US)


def attacker_created_at(rng: random.Random, start_us: int, span_us: int) -> int:
    """Attackers are usually new (days before the span, or during it), but bought or long-idle accounts exist."""
    roll = rng.random()
    if roll < 0.3:
        return start_us + int(rng.random() * 0.5 * span_us)
    if roll < 0.7:
        return start_us - int(rng.random() * 10 * DAY_US)
    return start_us - int(max(1.0, lognormal(rng, 150.0, 1.0)) * DAY_US)


def new_fingerprint(rng: random.Random) -> str:
    return "pf_" + hex_id(rng, 16)


def new_key_ids(rng: random.Random, n: int) -> tuple[str, ...]:
    return tuple(hex_id(rng, 12) for _ in range(max(1, n)))


@dataclass(slots=True)
class AccountProfile:
    """One simulated account. Mutable only while the run is being set up (households are linked afterwards)."""

    account_id: str
    population: str
    label: Label
    created_at_us: int
    tier: str
    country: str
    tz_offset_h: int
    email_domain: str
    org_id: str | None = None
    verified: bool = False
    payment_fingerprint: str | None = None
    keys: tuple[str, ...] = ()
    campaign_id: str | None = None
    # The language this account mostly writes in (content generation; not exported).
    language: str = "en"
    extras: dict[str, Any] = field(default_factory=dict)

    def account_record(self, fmt: Rfc3339) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "created_at": fmt(self.created_at_us),
            "org_id": self.org_id,
            "tier": self.tier,
            "verified": self.verified,
            "payment_fingerprint": self.payment_fingerprint,
            "email_domain": self.email_domain,
            "country": self.country,
        }

    def label_record(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "label": self.label,
            "population": self.population,
            "campaign_id": self.campaign_id,
        }


def link_households(rng: random.Random, profiles: Sequence[AccountProfile], populations: Sequence[str]) -> None:
    """Benign accounts that share a card or an organisation: families (one card, several accounts) and teams
    (one org, one company card, one mail domain). Without this, a shared payment fingerprint would be a perfect
    campaign feature; real providers see plenty of benign sharing."""
    pool = [p for p in profiles if p.label == "benign" and p.population in populations]
    rng.shuffle(pool)
    i = 0
    while i < len(pool) - 1:
        size = min(len(pool) - i, rng.choice((2, 2, 2, 3, 3, 4, 6)))
        group = pool[i : i + size]
        i += size
        if rng.random() < 0.12:  # most accounts stay alone
            card = group[0].payment_fingerprint or new_fingerprint(rng)
            if rng.random() < 0.5:  # a team: same org and company domain too
                org = group[0].org_id or "org_" + hex_id(rng, 10)
                domain = company_domain(rng)
                for p in group:
                    p.org_id, p.email_domain = org, domain
            for p in group:
                p.payment_fingerprint = card
        elif rng.random() < 0.02:
            # Sign-ups within the same hour happen for benign reasons too (a class, a hackathon).
            base = group[0].created_at_us
            for p in group[1:]:
                p.created_at_us = base + int(rng.random() * HOUR_US)
