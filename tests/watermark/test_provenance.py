"""Provenance tests against suspect endpoints on loopback: one that learned our marks, one that did not, and ones
that fail; only the first is called inherited."""

from __future__ import annotations

import asyncio
import random
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
import pytest
from aiohttp import web
from typer.testing import CliRunner

from distillguard.cli import app
from distillguard.watermark.provenance import examine, probe_prompts, served_contexts
from distillguard.watermark.text import derive_key, mark
from tests.watermark.test_text import ANSWER

KEY = derive_key(b"deployment-secret")
SENTENCES = [s.strip() + "." for s in ANSWER.replace("\n", " ").split(".") if len(s.split()) > 3]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def suspect(answer: Callable[[str], web.StreamResponse | str]) -> Iterator[str]:
    """An OpenAI-compatible chat endpoint answering each prompt with ``answer(prompt)``, in a thread."""

    async def chat(request: web.Request) -> web.StreamResponse:
        prompt = (await request.json())["messages"][0]["content"]
        reply = answer(prompt)
        if isinstance(reply, web.StreamResponse):
            return reply
        return web.json_response({"choices": [{"index": 0, "message": {"role": "assistant", "content": reply}}]})

    loop = asyncio.new_event_loop()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app)
    port = free_port()
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.run_until_complete(runner.cleanup())
        loop.close()


def prose(prompt: str) -> str:
    rng = random.Random(prompt)
    return " ".join(rng.sample(SENTENCES, 6))


def test_a_model_that_learned_our_marks_is_told_apart_from_one_that_did_not() -> None:
    with suspect(lambda p: mark(prose(p), KEY, "strong")) as student:
        report = examine(student, "student", [KEY], queries=200)
    assert report.verdict == "inherited" and report.detection.p_value <= 1e-6
    assert report.queries_answered == 200 and report.evidence and report.to_json()["queries"]["sent"] == 200
    with suspect(prose) as control:
        clean = examine(control, "control", [KEY], queries=200)
    assert clean.verdict == "not_detected" and clean.detection.p_value >= 0.01
    # Restricted to the contexts we served, the evidence is the same kind, and never more contexts than served.
    served = served_contexts(mark(prose(p), KEY, "strong") for p in probe_prompts(50))
    with suspect(lambda p: mark(prose(p), KEY, "strong")) as student:
        restricted = examine(student, "student", [KEY], queries=200, served=served)
    assert restricted.restricted_to_served and 0 < restricted.detection.scored <= len(served)


@pytest.mark.parametrize(
    "failure",
    [
        lambda p: web.Response(status=500, text="boom"),
        lambda p: web.Response(status=200, text="not json"),
        lambda p: "",
    ],
)
def test_a_failing_endpoint_is_inconclusive_never_detected(failure: Callable[[str], web.StreamResponse | str]) -> None:
    with suspect(failure) as broken:
        report = examine(broken, "m", [KEY], queries=20)
    assert report.verdict == "inconclusive" and not report.detection.detected


def test_an_unreachable_endpoint_is_inconclusive() -> None:
    report = examine(f"http://127.0.0.1:{free_port()}/v1", "m", [KEY], queries=5, timeout_s=2)
    assert report.verdict == "inconclusive" and report.queries_answered == 0 and sum(report.errors.values()) == 5


def test_the_cli_reports_and_exits_by_verdict(tmp_path: Path) -> None:
    env = {"DISTILLGUARD_SECRET": "deployment-secret"}
    runner = CliRunner()
    args = ["provenance", "test", "--data-dir", str(tmp_path), "--model", "m", "--queries", "150"]
    with suspect(lambda p: mark(prose(p), KEY, "strong")) as student:
        out = tmp_path / "report.json"
        result = runner.invoke(app, [*args, "--endpoint", student, "--out", str(out)], env=env)
    assert result.exit_code == 0, result.output
    assert "inherited" in result.output and orjson.loads(out.read_bytes())["verdict"] == "inherited"
    with suspect(prose) as control:
        assert runner.invoke(app, [*args, "--endpoint", control], env=env).exit_code == 3
    with suspect(lambda p: web.Response(status=503)) as broken:
        result = runner.invoke(app, [*args, "--endpoint", broken, "--json"], env=env)
    assert result.exit_code == 4 and orjson.loads(result.stdout)["queries"]["errors"] == {"http_503": 150}
