"""Load that is stopped half-way: what a durability test needs to compare with what the gateway kept."""

from __future__ import annotations

import asyncio
import signal

import openai
from openai.types.chat import ChatCompletionMessageParam

from tests.support.processes import Gateway

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "durable?"}]


async def answered_until_sigterm(gw: Gateway, calls: int = 200, callers: int = 8) -> list[str]:
    """Keep ``callers`` concurrent calls going, send SIGTERM once ``calls`` have been answered, and return the request
    ids of every call answered before the gateway stopped (it must have exited cleanly, or by the signal)."""
    client = openai.AsyncOpenAI(base_url=gw.base_url, api_key=gw.keys["tester"], max_retries=0)
    answered: list[str] = []

    async def caller() -> None:
        while True:
            try:
                raw = await client.chat.completions.with_raw_response.create(model="mock-gpt", messages=MESSAGES)
            except (openai.APIConnectionError, openai.APIStatusError):
                return
            answered.append(raw.headers["x-request-id"])

    tasks = [asyncio.create_task(caller()) for _ in range(callers)]
    while len(answered) < calls:
        await asyncio.sleep(0.01)
    gw.proc.send_signal(signal.SIGTERM)
    await asyncio.wait_for(asyncio.gather(*tasks), 30)
    await client.close()
    # uvicorn re-raises the SIGTERM once its graceful shutdown is done, so the exit status names the signal.
    assert await asyncio.to_thread(gw.proc.wait, 30) in (0, -signal.SIGTERM)
    return answered
