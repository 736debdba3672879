"""The gateway's rescoring loop when a round fails or is cancelled: the round is logged as failed, and its accounts
are scored by the next round (or by the last flush at shutdown) instead of staying out of scoring for good."""

from __future__ import annotations

import logging
import threading

import orjson
import pytest

from distillguard.config import DetectConfig
from distillguard.events.schema import Event
from distillguard.gateway.detection import OnlineDetection
from tests.detect.test_failed_round import FlakyModel
from tests.detect.test_scoring import START_US
from tests.gateway.test_fail_modes import wait_for
from tests.support.servers import Redis

ENDPOINT = "/v1/chat/completions"
BODY = {"model": "frontier-1", "messages": [{"role": "user", "content": "Show every step: explain quicksort."}]}


def serve(detection: OnlineDetection, account: str) -> None:
    """One served call of ``account``, as the gateway records it."""
    event = Event(
        "e1",
        START_US,
        ENDPOINT,
        orjson.dumps(BODY),
        account_id=account,
        model="frontier-1",
        status=200,
        prompt_tokens=50,
        completion_tokens=400,
    )
    detection.observe(event, detection.signals(BODY, ENDPOINT))


class BlockingModel:
    """Stands in for a slow model: its first prediction waits until released; later ones answer at once."""

    version = "blocking"

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.calls = 0

    def predict_risk(self, vectors: list[list[float]]) -> list[float]:
        self.calls += 1
        if self.calls == 1:
            self.entered.set()
            self.release.wait(30)
        return [0.4] * len(vectors)


@pytest.mark.parametrize("shared", [False, True], ids=["in-process", "shared-in-redis"])
async def test_a_round_whose_model_raises_is_logged_and_the_next_scores_its_account(
    shared: bool, request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> None:
    state_url = request.getfixturevalue("redis_server").url if shared else ""
    detection = OnlineDetection(DetectConfig(model="rules", flush_interval_ms=5, state_url=state_url))
    model = FlakyModel([1])
    detection.scorer.model = model  # type: ignore[assignment]
    caplog.set_level(logging.ERROR, logger="distillguard.gateway.detection")
    detection.start()
    try:
        serve(detection, "h")
        await wait_for(lambda: detection.current("h") is not None)
    finally:
        await detection.stop()
    score = detection.current("h")
    assert score is not None and score.events == 1 and score.model_risk == pytest.approx(0.4)
    assert model.calls == 2
    assert [r.getMessage() for r in caplog.records] == ["rescoring round failed"]


async def test_a_round_cancelled_at_shutdown_is_scored_by_the_last_flush() -> None:
    detection = OnlineDetection(DetectConfig(model="rules", flush_interval_ms=5))
    model = BlockingModel()
    detection.scorer.model = model  # type: ignore[assignment]
    detection.start()
    try:
        serve(detection, "h")
        await wait_for(model.entered.is_set)
    finally:
        await detection.stop()  # cancels the round waiting on the model
        model.release.set()
    score = detection.current("h")
    assert score is not None and score.events == 1 and model.calls == 2


async def test_a_shared_round_under_way_at_shutdown_ends_and_stores_its_calls(redis_server: Redis) -> None:
    """Stopping while a round with state in Redis waits on the model: the round is let finish (its worker thread
    cannot be stopped, so cancelling it lost its calls), and the account's call is stored once."""
    detection = OnlineDetection(DetectConfig(model="rules", flush_interval_ms=5, state_url=redis_server.url))
    model = BlockingModel()
    detection.scorer.model = model  # type: ignore[assignment]
    detection.start()
    serve(detection, "h")
    await wait_for(model.entered.is_set)
    threading.Timer(0.2, model.release.set).start()  # the model answers while stop() waits
    await detection.stop()
    score = detection.current("h")
    assert score is not None and score.events == 1 and model.calls == 1
    assert detection.shared is not None and detection.shared.pending == 0
