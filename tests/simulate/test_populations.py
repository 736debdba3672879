"""Each population shows the behaviour it is documented to have (and would fail these if it broke)."""

from __future__ import annotations

import itertools
import re
import statistics
from collections import Counter, defaultdict
from datetime import timedelta

from distillguard.simulate import POPULATIONS, benchmarks
from distillguard.simulate.models import NEW
from distillguard.timefmt import parse_rfc3339
from tests.simulate.conftest import Run, prompt_text, user_text

HYDRA_THRESHOLD = 100


def _hours(events: list[dict[str, object]]) -> Counter[int]:
    return Counter(parse_rfc3339(str(e["ts"])).hour for e in events)


def test_every_population_is_present_with_traffic(run: Run) -> None:
    assert set(run.result.populations) == set(POPULATIONS)
    for name in POPULATIONS:
        assert run.by_population[name], name
        assert POPULATIONS[name].label in ("benign", "attack")
        assert POPULATIONS[name].summary


# ------------------------------------------------------------------------------------------------- benign
def test_business_app_one_system_prompt_24_7_many_keys(run: Run) -> None:
    for account in run.accounts_of("business_app"):
        events = run.by_account[account]
        systems = {e["request"]["messages"][0]["content"] for e in events}
        assert len(systems) == 1, "a business app has one fixed system prompt"
        assert all(e["request"]["messages"][0]["role"] == "system" for e in events)
        assert len({e["key_id"] for e in events}) >= 2
        if len(events) > 500:
            assert len(_hours(events)) == 24, "busy apps run around the clock"
        labels = [e for e in events if e["request"].get("logprobs")]
        for e in labels:
            assert e["request"]["max_tokens"] <= 5 and e["request"]["temperature"] == 0
    verified = [run.account_by_id[a]["verified"] for a in run.accounts_of("business_app")]
    assert sum(verified) >= len(verified) * 0.6


def test_business_app_content_is_narrow_and_templated(run: Run) -> None:
    events = run.by_population["business_app"]
    # Many calls, few distinct opening words: templated fillers, not open-ended content.
    firsts = Counter(user_text(e).split()[0] for e in events if user_text(e))
    assert len(events) > 1000
    assert len(firsts) < len(events) / 20


def test_eval_run_replays_public_benchmark_test_items(run: Run) -> None:
    items = [item for name in benchmarks.NAMES for item in benchmarks.procedural(name).items]
    events = run.by_population["eval_run"]
    assert len(events) > 500
    sample = events[:: len(events) // 300]
    assert all(any(item in user_text(e) for item in _candidates(user_text(e), items)) for e in sample)
    assert all(e["request"].get("temperature") == 0 for e in events)
    # Public test sets: the same prompts come from several unrelated accounts.
    senders = defaultdict(set)
    for e in events:
        senders[user_text(e)].add(e["account_id"])
    assert max(len(s) for s in senders.values()) >= 2
    # High concurrency: many calls within the same second.
    per_second = Counter((e["account_id"], e["ts"][:19]) for e in events)
    assert max(per_second.values()) >= 5


def _candidates(text: str, items: list[str]) -> list[str]:
    # Cheap prefilter: items whose first 40 characters occur in the text.
    return [item for item in items if item[:40] in text]


def test_eval_prompts_use_harness_wrappers(run: Run) -> None:
    texts = [user_text(e) for e in run.by_population["eval_run"]]
    assert any("step by step" in t for t in texts) or any(t.rstrip().endswith("Answer:") for t in texts)


def test_casual_chat_is_multi_turn_multilingual_and_diurnal(run: Run) -> None:
    events = run.by_population["casual_chat"]
    assert any(sum(m["role"] == "assistant" for m in e["request"]["messages"]) >= 2 for e in events)
    scripts = set()
    for e in events:
        text = user_text(e)
        if re.search(r"[\u4e00-\u9fff\u3040-\u30ff]", text):
            scripts.add("cjk")
        elif re.search(r"[\u0400-\u04ff]", text):
            scripts.add("cyrillic")
        elif re.search(r"[\uac00-\ud7af]", text):
            scripts.add("hangul")
        elif re.search(r"[áéíóúãçñüöäß¿¡]", text):
            scripts.add("latin-accented")
        else:
            scripts.add("latin")
    assert len(scripts) >= 3
    hours = _hours(events)
    assert max(hours.values()) > 3 * max(1, min(hours.get(h, 0) for h in range(24)))
    assert sum(e["stream"] for e in events) > len(events) * 0.3


def test_developer_code_tools_repeats(run: Run) -> None:
    events = run.by_population["developer"]
    assert any("tools" in e["request"] for e in events)
    assert any("```" in prompt_text(e) or " in Python" in prompt_text(e) for e in events)
    # Double submits: the same body twice from one account within seconds.
    seen: dict[tuple[str, bytes], str] = {}
    repeats = 0
    for e in events:
        key = (e["account_id"], repr(e["request"]).encode())
        if key in seen and parse_rfc3339(e["ts"]) - parse_rfc3339(seen[key]) < timedelta(seconds=10):
            repeats += 1
        seen[key] = e["ts"]
    assert repeats >= 1


def test_researcher_long_prompts_and_reasoning(run: Run) -> None:
    texts = [user_text(e) for e in run.by_population["researcher"]]
    assert max(len(t) for t in texts) > 2000
    assert any("step by step" in t or "reasoning" in t for t in texts)


# ------------------------------------------------------------------------------------------------- attack
def test_solo_harvester_hits_429s_and_hammers(run: Run) -> None:
    events = run.by_population["solo_harvester"]
    refusals = [e for e in events if e["response"]["status"] == 429]
    assert refusals, "bursts overshoot the limit"
    # Hammering: the next call comes before the server's retry_after has passed.
    by_account = defaultdict(list)
    for e in events:
        by_account[e["account_id"]].append(e)
    early = 0
    for account_events in by_account.values():
        for prev, nxt in itertools.pairwise(account_events):
            if prev["response"]["status"] == 429:
                gap = parse_rfc3339(nxt["ts"]) - parse_rfc3339(prev["ts"])
                early += gap < timedelta(milliseconds=prev["extra"]["retry_after_ms"])
    assert early > len(refusals) / 2
    # Single-turn, few templates: no multi-turn history.
    assert all(not any(m["role"] == "assistant" for m in e["request"].get("messages", [])) for e in events)


def test_slow_and_low_stays_under_the_limit_without_rhythm(run: Run) -> None:
    for account in run.accounts_of("slow_and_low"):
        events = run.by_account[account]
        refused = sum(e["response"]["status"] == 429 for e in events)
        assert refused <= len(events) * 0.02
        per_day = Counter(e["ts"][:10] for e in events if e["response"]["status"] == 200)
        assert max(per_day.values()) <= 500
    hours = _hours(run.by_population["slow_and_low"])
    assert len(hours) == 24
    assert min(hours.values()) > 0.5 * max(hours.values()), "flat 24/7 pacing"


def test_cot_harvester_wrappers_in_several_languages(run: Run) -> None:
    events = run.by_population["cot_harvester"]
    texts = [prompt_text(e) for e in events]
    cot_markers = (
        "step by step", "reason through", "chain of thought",
        "一步一步", "思考过程", "шаг за шагом", "paso a paso", "Schritt für Schritt", "段階的",
    )  # fmt: skip
    assert all(any(m in t for m in cot_markers) for t in texts)
    assert all(e["request"]["max_tokens"] >= 4096 for e in events)
    # Some scripts squeeze a second turn out of the answer (multi-turn elicitation).
    assert any(any(m["role"] == "assistant" for m in e["request"].get("messages", [])) for e in events)
    for account in run.accounts_of("cot_harvester"):
        langs = {m for t in (prompt_text(e) for e in run.by_account[account]) for m in cot_markers[3:] if m in t}
        assert langs, "every CoT harvester uses at least one non-English wrapper"


def test_logprob_harvester_small_outputs_with_top_logprobs(run: Run) -> None:
    for e in run.by_population["logprob_harvester"]:
        assert e["request"]["max_tokens"] <= 5
        assert e["request"]["logprobs"] in (True, 5)
    texts = {user_text(e) for e in run.by_population["logprob_harvester"]}
    assert len(texts) > 0.5 * len(run.by_population["logprob_harvester"]), "broad content"


def test_synthetic_data_populations(run: Run) -> None:
    self_instruct = [prompt_text(e) for e in run.by_population["self_instruct"]]
    assert any("20 diverse task instructions" in t for t in self_instruct)
    assert any("JSON" in t for t in self_instruct)
    evol = [prompt_text(e) for e in run.by_population["evol_paraphraser"]]
    assert all("Rewritten Prompt" in t or "Paraphrase" in t for t in evol)
    rubric = [prompt_text(e) for e in run.by_population["rubric_grader"]]
    assert all("Score the following answer" in t or "Which response is better" in t for t in rubric)
    pairwise = [e for e in run.by_population["rubric_grader"] if "Which response is better" in prompt_text(e)]
    assert pairwise and all(e["request"]["max_tokens"] == 1 for e in pairwise)


def test_reseller_mixes_customer_traffic_with_harvesting(run: Run) -> None:
    for account in run.accounts_of("reseller_mixed"):
        events = run.by_account[account]
        multi_turn = sum(any(m["role"] == "assistant" for m in e["request"].get("messages", [])) for e in events)
        single = len(events) - multi_turn
        assert multi_turn > 0, "real customers hold conversations"
        assert single > 0.25 * len(events), "and a large share is single-turn harvesting"


def test_hydra_members_are_small_and_share_campaign_evidence(run: Run) -> None:
    members = run.accounts_of("hydra_campaign")
    campaigns: dict[str, list[str]] = defaultdict(list)
    for account in members:
        campaigns[run.label_by_id[account]["campaign_id"]].append(account)
    assert len(campaigns) >= 2, "several campaigns per run"
    sizes = [len(run.by_account[a]) for a in members]
    assert max(sizes) < 2 * HYDRA_THRESHOLD and statistics.median(sizes) < HYDRA_THRESHOLD
    for ids in campaigns.values():
        if len(ids) < 5:
            continue
        events = [e for a in ids for e in run.by_account[a]]
        # A shared script: one user agent dominates, and proxies are reused across members.
        _, count = Counter(e["client"]["user_agent"] for e in events).most_common(1)[0]
        assert count > 0.6 * len(events)
        ips_by_member = [{e["client"]["ip"] for e in run.by_account[a]} for a in ids]
        shared = sum(
            1 for i, s in enumerate(ips_by_member) if any(s & o for j, o in enumerate(ips_by_member) if j != i)
        )
        assert shared >= 2
        # Created in bursts: at least three members signed up within two hours.
        created = sorted(parse_rfc3339(run.account_by_id[a]["created_at"]) for a in ids)
        assert any(created[i + 2] - created[i] < timedelta(hours=2) for i in range(len(created) - 2))
        # Synchronised: most calls land within 30 s of another member's call.
        stamps = sorted((parse_rfc3339(e["ts"]), e["account_id"]) for e in events)
        synced = sum(
            1
            for i, (ts, acct) in enumerate(stamps)
            if any(abs(ts - t2) < timedelta(seconds=30) and a2 != acct for t2, a2 in stamps[max(0, i - 8) : i + 9])
        )
        assert synced > 0.5 * len(events)
        # Partitioned sweep: no member repeats another member's harvested item.
        owners: dict[str, set[str]] = defaultdict(set)
        for e in events:
            if len(e["request"].get("messages", [])) >= 1 and "\n" in user_text(e):
                owners[user_text(e)].add(e["account_id"])
        assert all(len(o) == 1 for o in owners.values())
    # Cover traffic: ordinary conversations mixed in with the sweep.
    hydra_events = run.by_population["hydra_campaign"]
    assert any(any(m["role"] == "assistant" for m in e["request"].get("messages", [])) for e in hydra_events)
    # Shared payment cards within campaigns.
    cards = Counter(run.account_by_id[a]["payment_fingerprint"] for a in members)
    cards.pop(None, None)
    assert cards and cards.most_common(1)[0][1] >= 2


def test_model_release_pivot_versus_gradual_adoption(run: Run) -> None:
    release = run.config.start + timedelta(days=run.config.days * 0.6)
    for e in run.events:
        if e["model"] == NEW and parse_rfc3339(e["ts"]) < release:
            assert e["response"]["status"] == 404
    pivot_after = [
        e for e in run.by_population["model_pivot"] if parse_rfc3339(e["ts"]) > release + timedelta(hours=10)
    ]
    assert sum(e["model"] == NEW for e in pivot_after) > 0.8 * len(pivot_after)
    benign_early = [
        e
        for p in ("casual_chat", "developer", "researcher", "business_app")
        for e in run.by_population[p]
        if release < parse_rfc3339(e["ts"]) < release + timedelta(hours=6)
    ]
    assert sum(e["model"] == NEW for e in benign_early) < 0.2 * max(1, len(benign_early))
