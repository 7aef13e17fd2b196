"""A request the provider left silent past the first-event limit read the prompt and may bill
it: inference abandons it, estimates its prompt and asks again. When the bot then cancels
during the retry, the gateway's estimate of the cut-off reply counts that silent attempt's
prompt besides the retry's (which the provider began answering) and the text relayed. Before,
only the reply's own report (which a cancel never lets come) carried the silent attempt: the
usage row held the retry's prompt alone."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.e2e.test_estimated_usage import chat_usage, usage_rows
from tzurot.inference.broken_off import prompt_tokens
from tzurot.inference.prompt import estimate_prompt_tokens
from tzurot.inference.tokens import TokenCounter
from tzurot.testing.e2e import Harness, echo_mesh, request, set_key
from tzurot.testing.postgres import DatabaseFactory
from tzurot.testing.waits import until

pytestmark = pytest.mark.e2e

STORY = " ".join(f"word{i}" for i in range(80))
FIRST_EVENT_SECONDS = 0.5


@pytest.fixture
async def mesh(
    fresh_database: DatabaseFactory, tmp_path: Path
) -> AsyncIterator[tuple[Harness, str]]:
    database = fresh_database()
    settings = {"first_event_timeout_seconds": FIRST_EVENT_SECONDS}
    async with echo_mesh(database, tmp_path, inference=settings) as h:
        await set_key(h)
        yield h, database


async def test_a_cancel_after_a_silent_attempt_counts_its_prompt(
    mesh: tuple[Harness, str],
) -> None:
    h, database = mesh
    provider = h.provider
    provider.reply = STORY
    provider.stall_next(30.0)  # the first request: headers, then nothing past the limit
    provider.chunk_delay = 0.1  # the retry answers, slowly
    call = h.bot.Generate(request("tell me a long story", key="msg-silent"))
    relayed = ""
    async for event in call:
        if event.HasField("chunk"):
            relayed += event.chunk.text
            call.cancel()  # during the retry, once it answers
            break
    silent, answered = provider.chat_requests()
    assert answered.body["messages"] == silent.body["messages"]  # the same prompt again

    # the gateway notices the cancellation asynchronously
    rows = await until(
        lambda: usage_rows(database), "the cancel's usage row", within=30, every=0.05
    )
    (cancelled,) = rows
    assert (cancelled.request_type, cancelled.failed, cancelled.estimated) == ("chat", True, True)
    messages = silent.body["messages"]
    retry_prompt = prompt_tokens(messages, TokenCounter("fake/echo"))  # PromptSent's count
    silent_prompt = estimate_prompt_tokens(messages)  # the silent attempt's estimate
    assert silent_prompt > 0
    assert cancelled.input_tokens == retry_prompt + silent_prompt
    assert cancelled.output_tokens >= len(relayed) // 4
    assert await chat_usage(h) == (1, 1, 1)
