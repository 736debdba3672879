"""Account features, the online scorer and the analyzer, on small crafted traffic."""

from __future__ import annotations

import random
from pathlib import Path

import orjson

from distillguard.detect.analyze import analyze
from distillguard.detect.features import FEATURES, AccountState, ModelClock
from distillguard.detect.scorer import AccountInfo, OnlineScorer
from distillguard.detect.signals import extract

START_US = 1_793_000_000_000_000
# Items of the GSM8K test set (MIT licence), which the benchmark index knows.
GSM8K_TEST = [
    "Janet\u2019s ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins for her "
    "friends every day with four. She sells the remainder at the farmers' market daily for $2 per fresh duck egg. "
    "How much in dollars does she make every day at the farmers' market?",
    "A robe takes 2 bolts of blue fiber and half that much white fiber.  How many bolts in total does it take?",
    "Josh decides to try flipping a house.  He buys a house for $80,000 and then puts in $50,000 in repairs.  This "
    "increased the value of the house by 150%.  How much profit did he make?",
]
TOPICS = [
    "photosynthesis",
    "the French revolution",
    "quicksort",
    "black holes",
    "contract law",
    "inflation",
    "the immune system",
    "TCP congestion control",
    "plate tectonics",
    "Bayesian statistics",
    "opera",
    "compilers",
    "vaccines",
    "game theory",
    "the Roman empire",
    "neural networks",
]


def chat(text: str, **kw: object) -> dict[str, object]:
    return {"model": "frontier-1", "messages": [{"role": "user", "content": text}], **kw}


def harvester(i: int, rng: random.Random) -> dict[str, object]:
    topic = f"{rng.choice(TOPICS)} ({rng.randrange(10_000)})"
    return chat(
        f"Think out loud and show every step of your reasoning before answering: explain {topic} in depth.",
        max_tokens=8192,
    )


def casual(i: int, rng: random.Random) -> dict[str, object]:
    return chat(f"hey, can you recommend a good book about {rng.choice(TOPICS)}? something light {i}")


def evaluation(i: int, rng: random.Random) -> dict[str, object]:
    return chat(f"Question: {GSM8K_TEST[i % 3]}\nAnswer: Let's think step by step.", temperature=0)


def feed(scorer: OnlineScorer, account: str, make, count: int, gap_s: float, seed: int = 0) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(seed)
    for i in range(count):
        ts = START_US + int(i * gap_s * 1e6)
        scorer.observe(account, ts, extract(make(i, rng)), 200, 50, 400, "frontier-1")
        if i % 16 == 15:  # the gateway flushes every few milliseconds
            scorer.flush()
    scorer.flush()


def test_harvester_is_flagged_early_and_casual_user_is_not() -> None:
    scorer = OnlineScorer(rescore_every=4)
    feed(scorer, "harvester", harvester, 300, gap_s=2.0)
    feed(scorer, "casual", casual, 60, gap_s=600.0)
    final = {s.account_id: (s, first, until) for s, first, until in scorer.final_scores()}
    score, first, until = final["harvester"]
    assert score.verdict in ("throttle", "degrade", "challenge", "block")
    assert score.reasons[0].signal == "cot_elicitation"
    assert until is not None and until <= 200 and first is not None
    assert final["casual"][0].verdict == "allow" and final["casual"][1] is None


def test_evaluation_run_with_step_by_step_is_not_flagged() -> None:
    scorer = OnlineScorer(accounts={"evalco": AccountInfo(verified=True)})
    feed(scorer, "evalco", evaluation, 600, gap_s=0.2)
    [(score, first, _)] = scorer.final_scores()
    assert score.verdict == "allow" and first is None
    assert any(r.signal == "benchmark_evaluation" for r in score.reasons)


def test_state_features_are_finite_and_named() -> None:
    state = AccountState()
    clock = ModelClock()
    rng = random.Random(1)
    for i in range(50):
        ts = START_US + i * 1_000_000
        state.update(
            ts,
            extract(harvester(i, rng)),
            429 if i % 10 == 0 else 200,
            10,
            100,
            "frontier-1",
            clock.observe("frontier-1", ts),
        )
    features = state.features()
    assert list(features) == list(FEATURES)
    assert all(v == v and abs(v) < 1e9 for v in features.values())
    assert features["rate_limited_share"] == 0.1 and features["cot_share"] == 1.0


def test_model_pivot_is_seen() -> None:
    clock = ModelClock()
    state = AccountState()
    sig = extract(chat("explain entropy"))
    clock.observe("frontier-1", START_US)  # the log begins with the old model only
    release = START_US + 3 * 86_400_000_000
    for i in range(20):
        ts = release + 3_600_000_000 + i * 60_000_000
        state.update(ts, sig, 200, 5, 5, "frontier-2", clock.observe("frontier-2", ts))
    assert state.features()["new_model_pivot"] == 1.0


def test_analyze_writes_one_verdict_per_account_and_skips_bad_lines(tmp_path: Path) -> None:
    rng = random.Random(0)
    lines = []
    for i in range(240):
        who, make = ("harvester", harvester) if i % 2 else ("casual", casual)
        ts = START_US + i * 3_000_000
        event = {
            "event_id": f"e{i}",
            "ts": f"2026-11-01T00:{i // 60 % 60:02d}:{i % 60:02d}.000000Z",
            "account_id": who,
            "request": make(i, rng),
            "response": {"status": 200, "usage": {"prompt_tokens": 30, "completion_tokens": 300}},
        }
        del ts
        lines.append(orjson.dumps(event))
    lines.insert(10, b"{broken")
    lines.append(orjson.dumps({"event_id": "x", "ts": "2026-11-01T00:00:00Z"}))
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(lines[::-1]) + b"\n")  # reversed: analyze must restore time order
    out = tmp_path / "verdicts.jsonl"
    report = analyze(events, out, workers=1)
    verdicts = {v["account_id"]: v for v in map(orjson.loads, out.read_bytes().splitlines())}
    assert set(verdicts) == {"harvester", "casual"}
    assert report.skipped == 2 and report.skip_reasons == {"not JSON": 1, "missing account_id": 1}
    assert report.out_of_order > 0
    assert verdicts["harvester"]["verdict"] != "allow" and verdicts["casual"]["verdict"] == "allow"
    assert verdicts["harvester"]["first_flagged_at"].startswith("2026-11-01T00:")
    assert verdicts["harvester"]["cluster_id"] is None
    assert {
        "account_id",
        "risk",
        "verdict",
        "cluster_id",
        "reasons",
        "first_flagged_at",
        "events_until_flagged",
    } <= set(verdicts["casual"])
    parallel = tmp_path / "parallel.jsonl"
    analyze(events, parallel, workers=2)
    assert parallel.read_bytes() == out.read_bytes()


class _StubModel:
    """Stands in for the learned model: returns a fixed risk."""

    version = "stub"

    def __init__(self, risk: float) -> None:
        self.risk = risk

    def predict_risk(self, vectors: list[list[float]]) -> list[float]:
        return [self.risk] * len(vectors)


def _verdict_with_model(risk: float, make) -> str:  # type: ignore[no-untyped-def]
    scorer = OnlineScorer(model=_StubModel(risk))  # type: ignore[arg-type]
    feed(scorer, "acct", make, 200, gap_s=600.0)
    [(score, _, _)] = scorer.final_scores()
    return score.verdict


def test_the_model_alone_cannot_enforce_beyond_throttle() -> None:
    assert _verdict_with_model(0.65, casual) == "watch"  # an unexplained number: watched, not acted on
    assert _verdict_with_model(0.97, casual) == "throttle"  # very confident, still no reason: throttle at most
    assert _verdict_with_model(0.97, harvester) == "block"  # the same risk with a rule reason behind it


def test_a_rescoring_point_reached_while_the_batch_is_scored_is_not_lost() -> None:
    """The gateway takes a batch, scores it off the loop, and completes it; calls keep arriving meanwhile. A rescoring
    point reached in between (calls 2 and 8 here, or outside evidence) is scored as soon as the batch completes,
    instead of waiting for the next point (call 16) while the verdict trails the traffic."""
    scorer = OnlineScorer(rescore_every=8)
    rng = random.Random(0)

    def call(i: int) -> None:
        scorer.observe("h", START_US + i * 1_000_000, extract(harvester(i, rng)), 200, 50, 400, "frontier-1")

    call(0)
    batch = scorer.take()  # the account at 1 call
    for i in range(1, 10):
        call(i)  # calls 2 .. 10 arrive while the first batch is being scored
    batch.predict()
    assert [s.events for s in scorer.complete(batch)] == [1]
    assert [s.events for s in scorer.flush()] == [10]  # queued again at once, scored on everything so far
    assert scorer.flush() == []  # and only once

    batch = scorer.take()
    assert batch.accounts == []
    scorer.touch("h")  # new outside evidence (partner intel) about an account not in flight: queued as before
    assert [s.events for s in scorer.flush()] == [10]
    call(10)
    call(11)
    batch = scorer.take()
    assert batch.accounts == []  # calls 11 and 12 are no rescoring points
    call(15)  # 13 calls: still none
    scorer.touch("h")
    assert [s.events for s in scorer.complete(scorer.take())] == [13]
