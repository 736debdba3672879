"""The text watermark in a real gateway: answers marked the same whether streamed or not, exactly the keyed
rewrite of what the upstream sent, logged, and detected by the CLI and the admin API with the deployment's key."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import openai
import pytest
from openai.types.chat.completion_create_params import (
    CompletionCreateParamsNonStreaming,
    CompletionCreateParamsStreaming,
)

from distillguard.watermark.text import derive_key, mark
from tests.e2e.conftest import StartGateway
from tests.support.processes import Mock, cli

pytestmark = pytest.mark.e2e

# The mock's answers are short word salad with few sites: detection needs the text of many answers.
PROMPTS = [f"Tell me about topic number {i} in detail." for i in range(60)]


def test_answers_are_watermarked_and_detected(start_gateway: StartGateway, mock_upstream: Mock, tmp_path: Path) -> None:
    gw = start_gateway(config='[watermark]\nenabled = true\nstrength = "strong"\n')
    client = openai.OpenAI(base_url=gw.base_url, api_key=gw.keys["tester"], max_retries=0)
    direct = openai.OpenAI(base_url=mock_upstream.base_url, api_key="upstream-secret", max_retries=0)
    key = derive_key((gw.data_dir / "secret.key").read_bytes().strip())
    served: list[str] = []
    for prompt in PROMPTS:
        body: CompletionCreateParamsNonStreaming = {
            "model": "mock-gpt",
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": 1500,
        }
        whole = client.chat.completions.create(**body).choices[0].message.content
        original = direct.chat.completions.create(**body).choices[0].message.content
        assert original is not None and whole == mark(original, key, "strong")
        if len(served) < 6:
            streamed: CompletionCreateParamsStreaming = {**body, "stream": True}
            stream = client.chat.completions.create(**streamed)
            assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == whole
        served.append(whole)
    events = [e for e in gw.events() if e["response"]["status"] == 200]
    assert all(e["extra"]["watermark"]["key_id"] == key.key_id for e in events)
    assert sum(e["extra"]["watermark"]["changed"] for e in events) > 0, [e["extra"] for e in events]
    # The event log keeps what was served.
    assert {e["response"]["text"] for e in events} == set(served)

    leaked = tmp_path / "leaked.txt"
    leaked.write_text("\n\n".join(served))
    found = cli("watermark", "detect", str(leaked), "--json", data_dir=gw.data_dir, check=False)
    assert found.returncode == 0, found.stdout + found.stderr
    report = json.loads(found.stdout)
    assert report["detected"] and report["key_id"] == key.key_id and report["p_value"] <= 1e-6
    clean = tmp_path / "clean.txt"
    clean.write_text(
        "\n\n".join(
            direct.completions.create(model="mock-gpt", prompt=p, max_tokens=1500).choices[0].text for p in PROMPTS
        )
    )
    assert cli("watermark", "detect", str(clean), data_dir=gw.data_dir, check=False).returncode == 3

    token = next(
        w
        for w in cli("admin", "token", "create", "--name", "ana", data_dir=gw.data_dir).stdout.split()
        if w.startswith("dg-admin-")
    )
    with httpx.Client(base_url=gw.url, headers={"authorization": f"Bearer {token}"}) as http:
        reply = http.post("/admin/v1/watermark/detect", json={"text": leaked.read_text(), "accounts": ["tester"]})
        assert reply.status_code == 200 and reply.json()["detected"] and reply.json()["keys_tried"] == 8
        bad = http.post("/admin/v1/watermark/detect", json={"accounts": "x"})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "text"
