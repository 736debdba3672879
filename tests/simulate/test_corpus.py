"""With the real corpora (../shared/data), when present: eval runs replay real test sets, self-instruct sends the
real Alpaca prompt, casual chat uses ShareGPT prompts. Skipped in a fresh clone."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from distillguard.simulate import SimulationConfig, benchmarks, simulate
from tests.simulate.conftest import prompt_text, read_jsonl, user_text

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "data"


@pytest.mark.skipif(not (CORPUS / "gsm8k_test.jsonl").exists(), reason="no ../shared/data corpus here")
def test_corpus_content_is_used(tmp_path: Path) -> None:
    config = SimulationConfig(
        accounts=120, days=1.0, seed=11, attack_share=0.3, events_scale=0.3, corpus=CORPUS,
        populations={"casual_chat": 1, "eval_run": 1, "self_instruct": 1, "cot_harvester": 1},
    )  # fmt: skip
    simulate(config, tmp_path)
    labels = {r["account_id"]: r["population"] for r in read_jsonl(tmp_path / "labels.jsonl")}
    events = read_jsonl(tmp_path / "events.jsonl")
    by_pop: dict[str, list[str]] = {}
    for e in events:
        by_pop.setdefault(labels[e["account_id"]], []).append(prompt_text(e))

    header = (CORPUS / "alpaca_generation_prompt.txt").read_text(encoding="utf-8").strip()[:200]
    assert any(header in t for t in by_pop["self_instruct"])
    sharegpt = {orjson.loads(line)["prompt"] for line in (CORPUS / "sharegpt_first_turns.jsonl").open("rb")}
    casual_firsts = [user_text(e) for e in events if labels[e["account_id"]] == "casual_chat"]
    assert any(t in sharegpt for t in casual_firsts)
    test_sets = set()
    for name in ("gsm8k_test.jsonl",):
        test_sets |= {orjson.loads(line)["question"] for line in (CORPUS / name).open("rb")}
    test_sets |= {orjson.loads(line)["prompt"] for line in (CORPUS / "humaneval.jsonl").open("rb")}
    test_sets |= set(orjson.loads((CORPUS / "mbppplus.json").read_bytes()).values())
    test_sets |= {orjson.loads(line)["Instruction"] for line in (CORPUS / "wizardlm_testset.jsonl").open("rb")}
    # No multiple-choice corpus is shipped: those runs use the procedural (equally fixed) test set.
    test_sets |= set(benchmarks.procedural("mmlu").items)
    eval_prompts = by_pop["eval_run"]
    assert eval_prompts
    hits = sum(1 for t in eval_prompts[:: max(1, len(eval_prompts) // 200)] if any(q in t for q in _near(t, test_sets)))
    assert hits == len(eval_prompts[:: max(1, len(eval_prompts) // 200)])


def _near(text: str, items: set[str]) -> list[str]:
    return [q for q in items if q[:30] in text]
