"""Log readers (native and the peer's format) and the evaluation arithmetic."""

from __future__ import annotations

import orjson
import pytest

from distillguard.detect.evaluate import Label, evaluate, tpr_at_fpr
from distillguard.events.readers import Record, Skip, glasswally_record, native_record

NATIVE = {
    "event_id": "e1",
    "ts": "2026-11-01T10:00:00.000000Z",
    "account_id": "a",
    "endpoint": "/v1/completions",
    "model": "m",
    "request": {"model": "m", "prompt": "hi"},
    "response": {"status": 429, "usage": None},
}


def test_native_record() -> None:
    record = native_record(orjson.dumps(NATIVE))
    assert isinstance(record, Record)
    assert (record.account_id, record.endpoint, record.status, record.prompt_tokens) == (
        "a",
        "/v1/completions",
        429,
        None,
    )
    assert record.ts_us == 1_793_527_200_000_000


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"{not json", "not JSON"),
        (b"[1]", "not a JSON object"),
        (orjson.dumps({**NATIVE, "account_id": None}), "missing account_id"),
        (orjson.dumps({**NATIVE, "ts": "yesterday"}), "missing or invalid ts"),
        (orjson.dumps({**NATIVE, "request": "text"}), "missing request"),
    ],
)
def test_bad_lines_are_skipped_with_a_reason(line: bytes, reason: str) -> None:
    assert native_record(line) == Skip(reason)


def test_glasswally_mapping() -> None:
    line = orjson.dumps(
        {
            "account_id": "sk-1",
            "timestamp": "2026-02-27T20:08:29.149978+00:00",
            "model": "gpt-4o",
            "prompt": "Think out loud: how does a compiler work?",
            "system_prompt": "You are GPT-4.",
            "token_count": 42,
            "max_tokens": 4096,
            "client_ip": "1.2.3.4",
            "campaign_label": "campaign_0001",
        }
    )
    record = glasswally_record(line)
    assert isinstance(record, Record)
    assert record.request["messages"][0] == {"role": "system", "content": "You are GPT-4."}
    assert record.request["messages"][1]["content"].startswith("Think out loud")
    assert record.request["max_tokens"] == 4096 and record.prompt_tokens == 42 and record.status == 200
    assert glasswally_record(orjson.dumps({"account_id": "x", "timestamp": "2026-01-01T00:00:00Z"})) == Skip(
        "missing prompt"
    )


def test_tpr_at_fpr() -> None:
    import numpy as np

    y = np.array([0] * 1000 + [1] * 10)
    # Benign scores spread over [0, 0.5]; nine attackers well above, one at 0.45 among the benign.
    scores = np.concatenate([np.linspace(0, 0.5, 1000), np.linspace(0.6, 1.0, 9), [0.45]])
    assert tpr_at_fpr(y, scores, 0.0) == pytest.approx(0.9)
    assert tpr_at_fpr(y, scores, 0.01) == pytest.approx(0.9)  # 0.45 sits above 10% of the benign scores
    assert tpr_at_fpr(y, scores, 0.2) == pytest.approx(1.0)


def test_evaluation_report() -> None:
    verdicts = [
        {"account_id": "b1", "risk": 0.1, "verdict": "allow", "events": 100},
        {"account_id": "b2", "risk": 0.2, "verdict": "allow", "events": 80},
        {"account_id": "app", "risk": 0.6, "verdict": "throttle", "events": 5000},
        {"account_id": "x1", "risk": 0.9, "verdict": "degrade", "events": 400, "events_until_flagged": 40},
        {"account_id": "x2", "risk": 0.99, "verdict": "block", "events": 600, "events_until_flagged": 60},
    ]
    labels = {
        "b1": Label("benign", "casual_chat", None),
        "b2": Label("benign", "casual_chat", None),
        "app": Label("benign", "business_app", None),
        "x1": Label("attack", "cot_harvester", None),
        "x2": Label("attack", "cot_harvester", None),
    }
    report = evaluate(verdicts, labels, {"volume": {"b1": 1.0, "b2": 0.5, "app": 9.0, "x1": 5.0, "x2": 6.0}})
    assert report["roc_auc"] == 1.0
    assert report["flagged_benign_share"] == pytest.approx(1 / 3)
    cot = report["populations"]["cot_harvester"]
    assert cot["median_events_until_flagged"] == 50
    assert cot["served_before_flagged_share"] == pytest.approx(100 / 1000)
    assert cot["baselines_auc"]["volume"] == pytest.approx(2 / 3)
    assert report["populations"]["business_app"]["flagged_share"] == 1.0
