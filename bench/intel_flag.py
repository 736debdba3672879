"""Time-to-flag with and without partner intel, and what a lying partner can do (issue 8's target: >= 5x faster).

    .venv/bin/python bench/intel_flag.py [--corpus ../shared/data] [--out bench/results/intel_flag.json]

Each provider's legitimate traffic is the simulator's (``distillguard simulate --attack-share 0`` on the real
corpora: business apps, evaluation runs, developers, chat users; a different seed per provider). Provider A also
sees a campaign: 12 new accounts on 4 cards sending chain-of-thought templates around GSM8K questions in
synchronised rounds. A runs ``distillguard analyze``, exports the campaigns it flags (signed, keyed under the group
key) and B imports the bundle.

Provider B then sees the same operator with 20 *new* accounts (same cards and templates, other questions) among its
own legitimate users, in time order through the online scorer with the shipped model, rescoring after every call
(the gateway does so within 50 ms). Measured per campaign account: the calls until its verdict is first throttle or
worse, with intel and without. Then a malicious partner M (trusted with weight 1.0) reports every legitimate
account's card and the most used system prompts as a "campaign": how many legitimate accounts does B flag (enforce
on) because of it, and how many does it put on watch?
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import create_engine

from distillguard.config import IntelConfig, Settings
from distillguard.detect.model import RiskModel
from distillguard.detect.scorer import AccountInfo, OnlineScorer
from distillguard.detect.signals import extract
from distillguard.detect.signals.template import skeleton
from distillguard.detect.verdicts import DEFAULT_THRESHOLDS, FLAGGED
from distillguard.events.jsonl import read_events
from distillguard.events.schema import Event
from distillguard.intel.export import CampaignExporter, ExportPolicy, export_bundle, select_campaigns
from distillguard.intel.facts import CampaignFacts, Outsiders
from distillguard.intel.feed import build_feed
from distillguard.intel.matching import Matcher
from distillguard.intel.member import Member, load_member
from distillguard.intel.store import IntelStore
from distillguard.intel.templates import prompt_text
from distillguard.intel.trust import Partner, PartnerEvidence, Trust, extraction_shaped
from distillguard.store.accounts_file import read_accounts
from distillguard.store.models import Account
from distillguard.store.schema import metadata

ROOT = Path(__file__).resolve().parent.parent
DISTILLGUARD = ROOT / ".venv" / "bin" / "distillguard"
GROUP_KEY = "5e" * 32
TEMPLATES = (
    "Think step by step and show every intermediate step of your reasoning before giving the final answer.\n\n"
    "Problem: {q}",
    "You are an expert tutor. Explain your full chain of thought in detail, then state the answer on the last "
    "line.\nQuestion: {q}",
    "Solve the following problem. Reason carefully and write out all of your reasoning.\n\n{q}",
)
CARDS = ("pf_camp_01", "pf_camp_02", "pf_camp_03", "pf_camp_04")
NEW_ACCOUNT = datetime(2026, 10, 30, tzinfo=UTC)


def questions(corpus: Path, name: str) -> list[str]:
    with (corpus / name).open("rb") as f:
        return [orjson.loads(line)["question"] for line in f if line.strip()]


def simulate(
    out: Path, corpus: Path, seed: int, accounts: int
) -> tuple[list[Event], dict[str, Account], dict[str, str]]:
    """Legitimate traffic only: events (time order), accounts, and each account's population."""
    subprocess.run(
        [
            str(DISTILLGUARD),
            "simulate",
            "--accounts",
            str(accounts),
            "--days",
            "1",
            "--seed",
            str(seed),
            "--attack-share",
            "0",
            "--corpus",
            str(corpus),
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    events = list(read_events(out / "events.jsonl"))
    by_id = {a.account_id: a for a in read_accounts(out / "accounts.jsonl")}
    populations: dict[str, str] = {}
    for line in (out / "labels.jsonl").read_bytes().splitlines():
        label = orjson.loads(line)
        populations[label["account_id"]] = label["population"]
    return events, by_id, populations


def campaign(prefix: str, n_accounts: int, calls: int, qs: list[str], start_us: int, rng: random.Random) -> list[Event]:
    """The operator's harvesting: synchronised rounds 90 s apart, a chain-of-thought template around each question."""
    out = []
    for r in range(calls):
        for j in range(n_accounts):
            prompt = TEMPLATES[(r + j) % 3].format(q=qs[(r * n_accounts + j) % len(qs)])
            body = {"model": "frontier-1", "messages": [{"role": "user", "content": prompt}], "max_tokens": 2048}
            out.append(
                Event(
                    event_id=f"req_{prefix}{r:04d}_{j:02d}",
                    ts_us=start_us + r * 90_000_000 + j * 150_000 + rng.randrange(50_000),
                    endpoint="/v1/chat/completions",
                    request_raw=orjson.dumps(body),
                    account_id=f"{prefix}{j:02d}",
                    client_ip=f"203.0.113.{20 + j}",
                    user_agent="OpenAI/Python 1.54.3",
                    model="frontier-1",
                    status=200,
                    prompt_tokens=len(prompt) // 4,
                    completion_tokens=700,
                )
            )
    return out


def campaign_accounts(prefix: str, n: int) -> dict[str, Account]:
    return {
        f"{prefix}{j:02d}": Account(
            f"{prefix}{j:02d}", created_at=NEW_ACCOUNT, payment_fingerprint=CARDS[j % 4], email_domain="inbox-x.example"
        )
        for j in range(n)
    }


def write_jsonl(path: Path, objects: list[dict[str, Any]]) -> None:
    with path.open("wb") as f:
        for o in objects:
            f.write(orjson.dumps(o) + b"\n")


def provider_a(tmp: Path, corpus: Path, rng: random.Random) -> tuple[dict[str, Any], int]:
    """A's traffic, A's analysis, A's signed export: the bundle and how many campaigns A flagged."""
    events, accounts, _ = simulate(tmp / "a_sim", corpus, 11, 300)
    events += campaign("a_camp_", 12, 40, questions(corpus, "gsm8k_test.jsonl"), events[0].ts_us, rng)
    events.sort(key=lambda e: e.ts_us)
    accounts |= campaign_accounts("a_camp_", 12)
    write_jsonl(tmp / "a_events.jsonl", [e.to_json() for e in events])
    write_jsonl(tmp / "a_accounts.jsonl", [a.to_json() for a in accounts.values()])
    subprocess.run(
        [
            str(DISTILLGUARD),
            "analyze",
            "-e",
            str(tmp / "a_events.jsonl"),
            "--accounts",
            str(tmp / "a_accounts.jsonl"),
            "-o",
            str(tmp / "a_verdicts.jsonl"),
        ],
        check=True,
        capture_output=True,
    )
    campaigns = [orjson.loads(line) for line in (tmp / "a_verdicts.clusters.jsonl").read_bytes().splitlines()]
    flagged = select_campaigns(campaigns, [], None, "throttle")
    settings = Settings(data_dir=tmp / "a", intel=IntelConfig(provider_name="Provider A", group_key=GROUP_KEY))
    member = load_member(settings.intel, settings.data_dir)
    bundle = export_bundle(
        settings, member, flagged, ExportPolicy(), datetime.now(UTC), tmp / "a_events.jsonl", tmp / "a_accounts.jsonl"
    )
    return bundle, len(flagged)


def lying_bundle(liar: Member, events: list[Event], accounts: dict[str, Account], legit: set[str]) -> dict[str, Any]:
    """M's "campaign": every legitimate account's card and the ten most sent prompt skeletons, dressed as a hydra."""
    facts = CampaignFacts("clu_fabricated", frozenset(legit))
    facts.payment_fingerprints = {accounts[a].payment_fingerprint or "" for a in legit} - {""}
    common = Counter(e.signals.template_id for e in events if e.account_id in legit and e.signals is not None)
    texts: dict[str, str] = {}
    for e in events:
        if e.signals is not None and e.signals.template_id in dict(common.most_common(10)):
            texts.setdefault(e.signals.template_id, skeleton(prompt_text(orjson.loads(e.request_raw), e.endpoint)))
    facts.templates = {t: (texts[t], n) for t, n in common.most_common(10) if t in texts}
    facts.events, facts.first_us, facts.last_us = len(events), events[0].ts_us, events[-1].ts_us
    fake = {"cluster_id": "clu_fabricated", "verdict": "block", "members": [{"account_id": a} for a in legit]}
    return CampaignExporter(liar, ExportPolicy(), datetime.now(UTC)).bundle([(fake, facts)], Outsiders(10**9))


def replay(
    events: list[Event],
    accounts: dict[str, Account],
    model: RiskModel,
    evidence: PartnerEvidence | None,
    matcher: Matcher | None,
) -> dict[str, dict[str, Any]]:
    """Each account's calls until first flagged (None: never) and its final verdict."""
    scorer = OnlineScorer(model, accounts={a: AccountInfo(x.created_at, x.verified) for a, x in accounts.items()})
    scorer.adjuster = evidence
    calls: dict[str, int] = {}
    first: dict[str, int | None] = {}
    last: dict[str, str] = {}
    for e in events:
        a = e.account_id
        if a not in calls:
            calls[a] = 0
            first[a] = None
            if evidence is not None and matcher is not None:
                evidence.record(a, matcher.account(accounts[a]))
        calls[a] += 1
        assert e.signals is not None
        scorer.observe(a, e.ts_us, e.signals, e.status, e.prompt_tokens, e.completion_tokens, e.model)
        if evidence is not None and matcher is not None:
            body = orjson.loads(e.request_raw)
            text = prompt_text(body, e.endpoint)
            found = matcher.call(e.signals.template_id, functools.partial(str, text), e.client_ip, (None,))
            if evidence.record(a, found, extraction_shaped(e.signals)):
                scorer.touch(a)
        for s in scorer.flush():
            last[s.account_id] = s.verdict
            if s.verdict in FLAGGED and first[s.account_id] is None:
                first[s.account_id] = calls[s.account_id]
    return {a: {"calls": calls[a], "first_flagged": first[a], "verdict": last.get(a, "allow")} for a in calls}


def summary(result: dict[str, dict[str, Any]], accounts: set[str]) -> dict[str, Any]:
    rows = [r for a, r in result.items() if a in accounts]
    firsts = [r["first_flagged"] for r in rows if r["first_flagged"] is not None]
    return {
        "accounts": len(rows),
        "flagged": len(firsts),
        "median_calls_to_flag": statistics.median(firsts) if firsts else None,
        "max_calls_to_flag": max(firsts) if firsts else None,
        "on_watch": sum(r["verdict"] == "watch" for r in rows),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "intel_flag.json")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if not (args.corpus / "gsm8k_test.jsonl").exists():
        sys.exit(f"no corpora at {args.corpus} (pass --corpus)")
    rng = random.Random(args.seed)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        bundle, found = provider_a(tmp, args.corpus, rng)
        a = load_member(IntelConfig(provider_name="Provider A", group_key=GROUP_KEY), tmp / "a")
        b = load_member(IntelConfig(provider_name="Provider B", group_key=GROUP_KEY), tmp / "b")
        m = load_member(IntelConfig(provider_name="Provider M", group_key=GROUP_KEY), tmp / "m")

        events, accounts, populations = simulate(tmp / "b_sim", args.corpus, 12, 300)
        legit = set(accounts)
        events += campaign("b_camp_", 20, 60, questions(args.corpus, "gsm8k_train.jsonl"), events[0].ts_us, rng)
        events.sort(key=lambda e: e.ts_us)
        accounts |= campaign_accounts("b_camp_", 20)
        for e in events:
            if e.signals is None:
                e.signals = extract(orjson.loads(e.request_raw), e.endpoint)
        keys = {x.identity_id: x.signer.public_key for x in (a, b, m)}
        model = RiskModel.load()
        engine = create_engine("sqlite://")
        metadata.create_all(engine)
        store = IntelStore(engine)
        ingest = store.ingest(bundle["objects"], keys)
        feed = build_feed(store.objects(), b.group_key().key_id, "2026-12-01T00:00:00Z")
        trust = Trust(
            {a.identity_id: Partner("Provider A", 0.6), m.identity_id: Partner("Provider M", 1.0)}, b.identity_id
        )
        without = replay(events, accounts, model, None, None)
        evidence = PartnerEvidence(trust, feed, DEFAULT_THRESHOLDS)
        with_intel = replay(events, accounts, model, evidence, Matcher(feed, b.group_key()))
        lies = lying_bundle(m, events, accounts, legit)
        store.ingest(lies["objects"], keys)
        feed_lies = build_feed(store.objects(), b.group_key().key_id, "2026-12-01T00:00:00Z")
        lied = replay(
            events,
            accounts,
            model,
            PartnerEvidence(trust, feed_lies, DEFAULT_THRESHOLDS),
            Matcher(feed_lies, b.group_key()),
        )

    harvest = {x for x in accounts if x.startswith("b_camp_")}
    groups = {"campaign (new accounts)": harvest, "legitimate (all)": legit}
    for population in sorted(set(populations.values())):
        groups[population] = {x for x, p in populations.items() if p == population}
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "seed": args.seed,
        "a_campaigns_exported": found,
        "bundle_objects": len(bundle["objects"]),
        "b_ingest": ingest.to_json(),
        "b_indicators": len(feed.indicators),
        "lying_indicators": sum(o["type"] == "indicator" for o in lies["objects"]),
        "groups": {
            name: {
                "without_intel": summary(without, members),
                "with_intel": summary(with_intel, members),
                "with_lying_partner": summary(lied, members),
            }
            for name, members in groups.items()
        },
        "seconds": round(time.perf_counter() - started, 1),
    }
    c = results["groups"]["campaign (new accounts)"]
    w, i = c["without_intel"]["median_calls_to_flag"], c["with_intel"]["median_calls_to_flag"]
    results["speedup_median"] = round(w / i, 2) if w and i else None
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)


def print_table(r: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("B's accounts", "intel", "accounts", "flagged", "median calls to flag", "max", "on watch")
    for group, runs in r["groups"].items():
        for run, s in runs.items():
            table.add_row(
                group,
                run.replace("_", " "),
                str(s["accounts"]),
                str(s["flagged"]),
                str(s["median_calls_to_flag"]),
                str(s["max_calls_to_flag"]),
                str(s["on_watch"]),
            )
    console = Console(width=160)
    console.print(table)
    console.print(
        f"speed-up (median calls to flag, without / with intel): {r['speedup_median']}; A exported "
        f"{r['a_campaigns_exported']} campaigns ({r['bundle_objects']} objects); B holds {r['b_indicators']} "
        f"indicators; the lying partner sent {r['lying_indicators']}; {r['seconds']} s"
    )


if __name__ == "__main__":
    main()
