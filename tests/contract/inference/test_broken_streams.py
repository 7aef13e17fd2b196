"""An answer the provider broke off mid-stream, on the fake provider through the real client:
the connection dropped, the body ended unfinished, an error event, a stream gone idle. The
provider billed the prompt and what it generated, and its usage chunk never came: the reply
reports the round estimated (UsageSpent, failed, estimated: the prompt's and the received
text's tokens) as the last word before its error."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from pydantic import SecretStr

from tzurot.inference.answering import AnswerSettings
from tzurot.inference.domain import (
    Character,
    ModelChoice,
    ReplyEvent,
    ReplyFinished,
    ReplyRequest,
    UsageSpent,
)
from tzurot.inference.keys import KeyResolver
from tzurot.inference.llm import LlmClient
from tzurot.inference.providers import ProviderRegistry
from tzurot.inference.reply_settings import ReplySettings
from tzurot.inference.service import Inference
from tzurot.inference.tokens import TokenCounter
from tzurot.runtime.errors import TzurotError
from tzurot.testing.fake_provider import FakeProvider

pytestmark = pytest.mark.contract

KEY = "plantedBROKENzq7Wm3Xv9Rt2"
ANSWER = "Once upon a time there was a lighthouse keeper who counted the ships every night"
REQUEST = ReplyRequest(
    job_id="job-1",
    user_id="3f1f9a8e-8c1e-4d5b-9a57-0f3c2b1a9d10",
    author_name="Ann",
    channel_id="chan-1",
    character=Character(id="p-1", name="Lilith", system_prompt="You are Lilith."),
    model=ModelChoice(provider="fakeai", model="fake/echo"),
    content="tell me a story",
)


class Vault:
    async def decrypt(self, user_id: str, provider: str) -> SecretStr | None:
        return SecretStr(KEY)


class NoHistory:
    async def recent_turns(
        self, channel_id: str, personality_id: str, limit: int, *, whole_channel: bool = False
    ) -> list[object]:
        return []


@pytest.fixture
async def fake() -> AsyncIterator[FakeProvider]:
    async with FakeProvider(valid_keys={KEY}, reply=ANSWER) as provider:
        yield provider


@pytest.fixture
async def inference(fake: FakeProvider) -> AsyncIterator[Inference]:
    llm = LlmClient(timeout_seconds=10.0)
    try:
        yield Inference(
            providers=ProviderRegistry({"fakeai": fake.base_url}),
            keys=KeyResolver(Vault()),
            history=NoHistory(),  # type: ignore[arg-type]  # no turns: its items never read
            llm=llm,
            settings=ReplySettings(
                answer=AnswerSettings(idle_timeout=0.3, retry_backoff=0.0, min_attempt_seconds=0)
            ),
        )
    finally:
        await llm.aclose()


async def collect(inference: Inference, events: list[ReplyEvent]) -> None:
    async for event in inference.generate_reply(REQUEST):
        events.append(event)


async def broken(inference: Inference) -> tuple[list[ReplyEvent], TzurotError]:
    events: list[ReplyEvent] = []
    with pytest.raises(TzurotError) as caught:
        await collect(inference, events)
    return events, caught.value


def received(words: int) -> str:
    """The first `words` chunks the fake sent of ANSWER (each word after the first with the
    space before it)."""
    return " ".join(ANSWER.split(" ")[:words])


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("drop_after_chunks", "PROVIDER_UNAVAILABLE"),  # the connection closed mid-answer
        ("cut_after_chunks", "PROVIDER_UNAVAILABLE"),  # a clean end of body, unfinished
        ("error_after_chunks", "PROVIDER_UNAVAILABLE"),  # OpenRouter's error event (502)
    ],
)
async def test_a_stream_broken_mid_answer_reports_its_estimated_usage(
    fake: FakeProvider, inference: Inference, fault: str, reason: str
) -> None:
    setattr(fake, fault, 6)
    events, error = await broken(inference)
    assert error.reason == reason
    assert not any(isinstance(e, ReplyFinished) for e in events)
    spent = events[-1]  # the last word before the error
    assert isinstance(spent, UsageSpent)
    assert spent.failed
    (paid,) = spent.paid
    assert (paid.request_type, paid.provider, paid.model, paid.estimated) == (
        "",
        "fakeai",
        "fake/echo",
        True,
    )
    (sent,) = fake.chat_requests()  # never asked again: the provider had begun answering
    assert paid.usage.input_tokens >= len(sent.body["messages"])
    assert paid.usage.output_tokens > 0
    assert paid.usage.output_tokens == TokenCounter("fake/echo").count(received(6))


async def test_a_stream_gone_idle_mid_answer_reports_its_estimated_usage(
    fake: FakeProvider, inference: Inference
) -> None:
    """Its first word came (it began answering), the next not within idle_timeout (0.3 s)."""
    fake.chunk_delay = 0.6
    events, error = await broken(inference)
    assert error.reason == "PROVIDER_TIMEOUT"
    spent = events[-1]
    assert isinstance(spent, UsageSpent)
    assert spent.failed
    (paid,) = spent.paid
    assert paid.estimated
    assert paid.usage.output_tokens == TokenCounter("fake/echo").count(received(1))


async def test_a_whole_answer_reports_no_estimate(fake: FakeProvider, inference: Inference) -> None:
    events = [e async for e in inference.generate_reply(replace(REQUEST, job_id="job-2"))]
    assert isinstance(events[-1], ReplyFinished)
    assert not [e for e in events if isinstance(e, UsageSpent)]
