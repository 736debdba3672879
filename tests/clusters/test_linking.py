"""Linking evidence and campaigns: what links a campaign's accounts, and what must never convict on its own."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from distillguard.clusters import campaign as campaign_module
from distillguard.clusters.evidence import Context, link
from distillguard.clusters.find import build_profiles, find_campaigns
from distillguard.clusters.network import address_keys
from distillguard.detect.scorer import OnlineScorer
from distillguard.detect.signals import extract
from distillguard.events.readers import Client, Row
from distillguard.store.models import Account

T0 = 1_790_000_000_000_000
MINUTE = 60_000_000
SDK = "OpenAI/Python 1.40.0"
TOPICS = ["photosynthesis", "quicksort", "contract law", "black holes", "inflation", "TCP", "vaccines", "opera",
          "tax policy", "glaciers", "sorting networks", "enzymes", "bond yields", "sonnets"]  # fmt: skip


def row(ts: int, account: str, prompt: str, ip: str | None, ua: str | None = SDK, system: str | None = None) -> Row:
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": prompt})
    signals = extract({"model": "m", "messages": messages, "max_tokens": 2048, "temperature": 0.2})
    return ts, account, 200, 50, 500, "m", signals, Client(ip, ua) if ip or ua else None


def campaign(name: str, members: int, rng: random.Random) -> tuple[list[Row], dict[str, Account]]:
    """A small hydra: one CoT wrapper and system prompt, disjoint items, a proxy pool, synchronised pulses."""
    proxies = [f"198.51.{rng.randrange(256)}.{rng.randrange(256)}" for _ in range(12)]
    created = datetime.fromtimestamp((T0 - 3_600_000_000 * 30) / 1e6, UTC)
    accounts = {
        f"{name}-{i}": Account(f"{name}-{i}", created_at=created, payment_fingerprint=f"card-{name}")
        for i in range(members)
    }
    rows: list[Row] = []
    item = 0
    for pulse in range(30):
        ts = T0 + pulse * 37 * MINUTE + rng.randrange(MINUTE)
        for account in rng.sample(sorted(accounts), k=max(2, members // 2)):
            item += 1
            topic = rng.choice(TOPICS)
            prompt = f"Think step by step and show every step of your reasoning. Task {item}: explain {topic} #{item}"
            rows.append(
                row(
                    ts + rng.randrange(5_000_000),
                    account,
                    prompt,
                    rng.choice(proxies),
                    "harvest-bot/2.1",
                    "You are a meticulous tutor.",
                )
            )
    return rows, accounts


def nat_users(count: int, rng: random.Random) -> list[Row]:
    """People behind one university NAT: one address, the same SDK, their own questions at their own times."""
    rows = []
    for u in range(count):
        for _ in range(rng.randrange(5, 25)):
            ts = T0 + rng.randrange(30 * 37 * MINUTE)
            rows.append(
                row(
                    ts,
                    f"student-{u}",
                    f"hey can you help me understand {rng.choice(TOPICS)} for my class?",
                    "203.0.113.9",
                )
            )
    return rows


@pytest.fixture(scope="module")
def traffic() -> tuple[list[Row], dict[str, Account]]:
    rng = random.Random(11)
    rows: list[Row] = []
    accounts: dict[str, Account] = {}
    for name, size in (("alpha", 8), ("beta", 6)):
        r, a = campaign(name, size, rng)
        rows += r
        accounts |= a
    rows += nat_users(30, rng)
    rows.sort(key=lambda r: r[0])
    return rows, accounts


def test_address_keys() -> None:
    v4 = address_keys("203.0.113.77")
    assert v4 is not None and (v4.prefix, v4.network) == ("203.0.113.0/24", "203.0.0.0/16")
    v6 = address_keys("2001:db8:1:2::5")
    assert v6 is not None and (v6.prefix, v6.network) == ("2001:db8:1::/48", "2001:db8::/32")
    mapped = address_keys("::ffff:203.0.113.77")
    assert mapped is not None and mapped.ip == "203.0.113.77"
    assert address_keys("999.1.1.1") is None and address_keys("not-an-ip") is None


def test_a_shared_nat_alone_never_links(traffic: tuple[list[Row], dict[str, Account]]) -> None:
    rows, accounts = traffic
    profiles = build_profiles(rows, accounts)
    ordered = list(profiles.values())
    ctx = Context(ordered)
    students = [p for p in ordered if p.account_id.startswith("student-")]
    lk = link(0, 1, students[0], students[1], ctx)
    assert {e.kind for e in lk.evidence} >= {"shared_ip"} and not lk.admissible


def test_campaign_members_are_linked_by_several_kinds(traffic: tuple[list[Row], dict[str, Account]]) -> None:
    rows, accounts = traffic
    profiles = build_profiles(rows, accounts)
    ctx = Context(list(profiles.values()))
    lk = link(0, 1, profiles["alpha-0"], profiles["alpha-1"], ctx)
    kinds = {e.kind for e in lk.evidence}
    assert lk.admissible
    assert {"shared_payment", "signup_burst", "shared_system_prompt", "shared_recipe", "synchronised"} <= kinds
    assert all(e.detail for e in lk.evidence)


def test_campaigns_are_found_and_judged_whole(traffic: tuple[list[Row], dict[str, Account]]) -> None:
    rows, accounts = traffic
    campaigns, stats = find_campaigns(lambda: rows, accounts, OnlineScorer())
    by_members = {frozenset(c.members): c for c in campaigns}
    alpha = frozenset(a for a in accounts if a.startswith("alpha"))
    beta = frozenset(a for a in accounts if a.startswith("beta"))
    assert alpha in by_members and beta in by_members
    assert not any(m.startswith("student-") for c in campaigns for m in c.members)
    assert stats.pairs_tested < 46 * 45 // 2  # blocking: never all pairs
    judged = by_members[alpha]
    assert judged.score is not None and judged.events == sum(1 for r in rows if r[1] in alpha)
    assert judged.evidence[0]["examples"] and judged.to_json()["size"] == 8
    # The same members give the same id in every run.
    again, _ = find_campaigns(lambda: rows, accounts, OnlineScorer())
    assert {c.cluster_id for c in again} == {c.cluster_id for c in campaigns}


def test_missing_metadata_and_bad_addresses_degrade_gracefully() -> None:
    rows = [row(T0 + i * MINUTE, "anon", "hello there", ip) for i, ip in enumerate(["garbage", None, "2001:db8::1"])]
    profile = build_profiles(rows, {})["anon"]
    assert profile.bad_address == 1 and profile.no_address == 1 and list(profile.ips) == ["2001:db8::1"]
    unavailable = " ".join(profile.unavailable())
    assert "malformed address" in unavailable and "payment fingerprint" in unavailable and "sign-up" in unavailable
    campaigns, stats = find_campaigns(lambda: rows, {}, OnlineScorer())
    assert campaigns == [] and stats.accounts == 1


def test_a_rare_client_fingerprint_links_and_a_common_one_does_not() -> None:
    """A TLS fingerprint only one script has links its accounts; the SDK's header order, shared by all, does not."""
    sdk_order, script_tls = "ho:0123456789abcdef", "t13d1516h2_8daaf6152771_b186095e22b6"
    rows: list[Row] = []
    for i in range(40):
        tls = script_tls if i < 2 else f"t13d1715h2_{i:012x}_000000000000"
        client = Client(f"198.51.100.{i}", SDK, sdk_order, tls=tls)
        rows += [(*row(T0 + (i * 5 + j) * MINUTE, f"acc-{i}", f"question {i}.{j}", None)[:7], client) for j in range(5)]
    profiles = build_profiles(rows, {})
    ctx = Context(list(profiles.values()))
    [shared] = [e for e in link(0, 1, profiles["acc-0"], profiles["acc-1"], ctx).evidence]
    assert shared.kind == "shared_client_fingerprint" and "tls:" + script_tls[:20] in shared.detail
    assert shared.strength > 0.5
    # The header order alone, common to all 40 accounts, is no evidence at all.
    assert link(0, 1, profiles["acc-2"], profiles["acc-3"], ctx).evidence == ()


def test_campaign_json_carries_its_links_strongest_first_and_bounded(
    traffic: tuple[list[Row], dict[str, Account]], monkeypatch: pytest.MonkeyPatch
) -> None:
    rows, accounts = traffic
    campaigns, _ = find_campaigns(lambda: rows, accounts, OnlineScorer())
    alpha = next(c for c in campaigns if c.members[0].startswith("alpha")).to_json()
    links = alpha["links"]
    members = {m["account_id"] for m in alpha["members"]}
    assert links and alpha["links_omitted"] == 0
    weights = [lk["weight"] for lk in links]
    assert weights == sorted(weights, reverse=True)
    for lk in links:
        assert {lk["a"], lk["b"]} <= members and lk["a"] != lk["b"]
        assert abs(lk["weight"] - sum(e["score"] for e in lk["evidence"])) < 0.01
        assert {e["category"] for e in lk["evidence"]} & {"content", "behaviour"}  # only admissible links
        assert all(set(e) == {"kind", "category", "score", "detail"} and e["detail"] for e in lk["evidence"])
    kinds = {e["kind"] for lk in links for e in lk["evidence"]}
    assert {"shared_payment", "shared_system_prompt", "synchronised"} <= kinds

    monkeypatch.setattr(campaign_module, "MAX_LINKS", 3)
    bounded, _ = find_campaigns(lambda: rows, accounts, OnlineScorer())
    capped = next(c for c in bounded if c.members[0].startswith("alpha")).to_json()
    assert capped["links"] == links[:3] and capped["links_omitted"] == len(links) - 3
