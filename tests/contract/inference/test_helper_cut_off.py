"""A helper model's call during a reply that failed once its request went out, on the fake
provider through the real client: the provider may have billed it (the prompt it read, what
it streamed), and its usage never came. The reply reports it estimated (UsageSpent, failed,
estimated, under the helper's request_type): an image description's just before the reply's
error, a transcript clean-up's right after the reading that did without it (the reply goes
on with the raw transcript). A call refused, or one that failed before anything was sent,
reports nothing. While each call runs, what it may bill is said as its request goes out whole
(HelperCallPending), for a reply cut before any report: taken back when it is refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import httpx2
import pytest
from pydantic import SecretStr

from tzurot.inference.answering import AnswerSettings
from tzurot.inference.attachments import (
    CLEANUP_PROMPT,
    AttachmentLimits,
    AttachmentReader,
    HttpDownloader,
)
from tzurot.inference.broken_off import prompt_tokens
from tzurot.inference.domain import (
    AttachmentRead,
    AttachmentRef,
    Character,
    HelperCallPending,
    ModelChoice,
    PaidCall,
    ReplyEvent,
    ReplyFinished,
    ReplyRequest,
    TokenUsage,
    UsageSpent,
)
from tzurot.inference.keys import KeyResolver
from tzurot.inference.llm import LlmClient
from tzurot.inference.prompt import IMAGE_TOKENS
from tzurot.inference.providers import ProviderRegistry
from tzurot.inference.reply_settings import ModelName, ReplySettings
from tzurot.inference.service import Inference
from tzurot.inference.tokens import TokenCounter
from tzurot.runtime.errors import TzurotError
from tzurot.testing.cdn import local_cdn
from tzurot.testing.fake_provider import FakeProvider

from .cut_off_support import ATTACHMENTS, CLEANED, PNG, words

pytestmark = pytest.mark.contract

KEY = "plantedHELPERzq7Wm3Xv9Rt2"
DESCRIPTION = "A grey cat asleep on a red sofa by the window"


@pytest.fixture
async def cdn() -> AsyncIterator[str]:
    async with local_cdn(ATTACHMENTS) as base_url:
        yield base_url


@pytest.fixture
async def fake() -> AsyncIterator[FakeProvider]:
    async with FakeProvider(valid_keys={KEY}, any_model=True) as provider:
        yield provider


class Vault:
    async def decrypt(self, user_id: str, provider: str) -> SecretStr | None:
        return SecretStr(KEY)


class NoHistory:
    async def recent_turns(
        self, channel_id: str, personality_id: str, limit: int, *, whole_channel: bool = False
    ) -> list[object]:
        return []


@pytest.fixture
def timeout_seconds() -> float:
    return 10.0


@pytest.fixture
async def inference(fake: FakeProvider, timeout_seconds: float) -> AsyncIterator[Inference]:
    llm = LlmClient(timeout_seconds=timeout_seconds)
    client = httpx2.AsyncClient()
    try:
        yield Inference(
            providers=ProviderRegistry({"fakeai": fake.base_url}),
            keys=KeyResolver(Vault()),
            history=NoHistory(),  # type: ignore[arg-type]  # returns no turns at all
            llm=llm,
            settings=ReplySettings(
                answer=AnswerSettings(failure_retries=2, retry_backoff=0.01),
                vision=ModelName("fakeai", "fake/vision"),
                transcription=ModelName("fakeai", "whisper-1"),
                transcript_cleanup=ModelName("fakeai", "fake/cheap"),
            ),
            attachments=AttachmentReader(
                HttpDownloader(client, ["127.0.0.1"]), llm, AttachmentLimits()
            ),
        )
    finally:
        await llm.aclose()
        await client.aclose()


def request(*attachments: AttachmentRef) -> ReplyRequest:
    return ReplyRequest(
        job_id="j",
        user_id="u-1",
        author_name="Ann",
        channel_id="c",
        character=Character(id="p", name="Lilith"),
        model=ModelChoice(provider="fakeai", model="fake/echo"),  # no vision: described
        content="look",
        attachments=attachments,
    )


def image(cdn: str) -> AttachmentRef:
    return AttachmentRef(
        url=f"{cdn}/cat.png", content_type="image/png", filename="cat.png", size_bytes=len(PNG)
    )


def voice(cdn: str) -> AttachmentRef:
    return AttachmentRef(url=f"{cdn}/voice.ogg", content_type="audio/ogg", filename="voice.ogg")


async def collect(inference: Inference, req: ReplyRequest, events: list[ReplyEvent]) -> None:
    async for event in inference.generate_reply(req):
        events.append(event)


async def failed_reply(inference: Inference, req: ReplyRequest) -> tuple[list[ReplyEvent], str]:
    events: list[ReplyEvent] = []
    with pytest.raises(TzurotError) as caught:
        await collect(inference, req, events)
    return events, caught.value.reason


def said_and_told(events: list[ReplyEvent]) -> tuple[list[HelperCallPending], list[ReplyEvent]]:
    """What the reply said its helper calls may bill while they ran, and everything else."""
    said = [e for e in events if isinstance(e, HelperCallPending)]
    return said, [e for e in events if not isinstance(e, HelperCallPending)]


def only_estimate(spent: ReplyEvent) -> PaidCall:
    assert isinstance(spent, UsageSpent)
    assert spent.failed
    assert not spent.all_rounds
    (paid,) = spent.paid
    assert paid.estimated
    return paid


@pytest.mark.parametrize("fault", ["drop_after_chunks", "cut_after_chunks", "error_after_chunks"])
async def test_a_description_broken_mid_stream_is_reported_before_the_replys_error(
    inference: Inference, fake: FakeProvider, cdn: str, fault: str
) -> None:
    fake.enqueue(DESCRIPTION)
    setattr(fake, fault, 4)
    events, reason = await failed_reply(inference, request(image(cdn)))
    assert reason == "PROVIDER_UNAVAILABLE"
    (describe,) = fake.chat_requests()  # begun: never asked again, and no answer asked
    assert describe.body["model"] == "fake/vision"
    assert not [e for e in events if isinstance(e, AttachmentRead | ReplyFinished)]
    paid = only_estimate(events[-1])  # the last word before the error
    assert (paid.request_type, paid.provider, paid.model) == (
        "image_description",
        "fakeai",
        "fake/vision",
    )
    # Said as its request went out whole: the same prompt, nothing of the answer yet.
    said, _ = said_and_told(events)
    (prompt,) = [p.calls for p in said]
    assert prompt == (replace(paid, usage=TokenUsage(paid.usage.input_tokens, 0)),)
    assert paid.usage.input_tokens > IMAGE_TOKENS  # the prompt, its image counted
    assert paid.usage.output_tokens == TokenCounter("fake/vision").count(words(DESCRIPTION, 4))


@pytest.mark.parametrize("timeout_seconds", [0.5])
async def test_a_description_unanswered_in_time_is_reported_as_its_prompt(
    inference: Inference, fake: FakeProvider, cdn: str
) -> None:
    """The request went out and nothing of an answer came before the time limit: the
    provider may be at work on it, and billing it (NoAnswerInTime)."""
    fake.stall_next(3.0)
    events, reason = await failed_reply(inference, request(image(cdn)))
    assert reason == "PROVIDER_UNAVAILABLE"
    assert len(fake.chat_requests()) == 1  # never asked again once sent
    paid = only_estimate(events[-1])
    assert paid.request_type == "image_description"
    assert paid.usage.input_tokens > IMAGE_TOKENS
    assert paid.usage.output_tokens == 0


async def test_a_refused_or_unbegun_description_reports_nothing(
    inference: Inference, fake: FakeProvider, cdn: str
) -> None:
    fake.valid_keys.clear()  # a 401 once the request went out: nobody billed it
    events, reason = await failed_reply(inference, request(image(cdn)))
    assert reason == "INVALID_API_KEY"
    said, told = said_and_told(events)
    assert told == []
    assert [len(p.calls) for p in said] == [1, 0]  # said as it went out, then taken back
    fake.valid_keys.add(KEY)
    fake.cut_after_chunks = 0  # the body ends before any answer: asked again, then given up
    events, reason = await failed_reply(inference, request(image(cdn)))
    assert reason == "PROVIDER_UNAVAILABLE"
    said, told = said_and_told(events)
    assert told == []
    assert [len(p.calls) for p in said] == [1, 0] * 3  # each attempt, taken back


async def test_a_cleanup_broken_mid_stream_is_reported_next_to_its_reading(
    inference: Inference, fake: FakeProvider, cdn: str
) -> None:
    """The clean-up broke after two chunks: the reply goes on with the raw transcript, and
    the clean-up's estimate comes right after the reading (paid, not delivered)."""
    fake.transcript = "um hello there lilith how are you"
    fake.enqueue(CLEANED)  # the clean-up, dropped after two chunks
    fake.enqueue("I am well, child.")
    fake.drop_after_chunks = 2
    events: list[ReplyEvent] = []
    async for event in inference.generate_reply(request(voice(cdn))):
        events.append(event)
        if isinstance(event, AttachmentRead):
            fake.drop_after_chunks = None  # the answer streams whole
    said, (read, spent, *_, finished) = said_and_told(events)
    assert isinstance(read, AttachmentRead)
    assert read.attachment.description == fake.transcript  # raw: not cleaned
    assert [p.request_type for p in read.paid] == ["transcription"]
    paid = only_estimate(spent)
    assert (paid.request_type, paid.provider, paid.model) == (
        "transcript_cleanup",
        "fakeai",
        "fake/cheap",
    )
    counter = TokenCounter("fake/cheap")
    messages = [
        {"role": "system", "content": CLEANUP_PROMPT},
        {"role": "user", "content": fake.transcript},
    ]
    assert paid.usage.input_tokens == prompt_tokens(messages, counter)  # type: ignore[arg-type]  # plain dicts as ChatMessage
    assert paid.usage.output_tokens == counter.count(words(CLEANED, 2))
    # Until its report, what the clean-up may have been billed stays in flight beside the
    # transcription's own count: said before the reading that did without it.
    assert said[-1] == HelperCallPending(0, (read.paid[0], paid))
    assert events.index(said[-1]) < events.index(read)
    assert isinstance(finished, ReplyFinished)
    assert finished.content == "I am well, child."
    assert len(fake.chat_requests()) == 2  # the clean-up never asked again


async def test_a_refused_cleanup_reports_no_estimate(
    inference: Inference, fake: FakeProvider, cdn: str
) -> None:
    fake.transcript = "um hello there"
    fake.cut_after_chunks = 0  # the clean-up's body ends before any answer: nothing billed
    events: list[ReplyEvent] = []
    async for event in inference.generate_reply(request(voice(cdn))):
        events.append(event)
        if isinstance(event, AttachmentRead):
            fake.cut_after_chunks = None
    assert isinstance(events[-1], ReplyFinished)
    assert not [e for e in events if isinstance(e, UsageSpent)]
    said, (read, *_) = said_and_told(events)
    assert isinstance(read, AttachmentRead)
    assert said[-1] == HelperCallPending(0, read.paid)  # the clean-up taken back


async def test_what_each_call_may_bill_is_said_before_its_reading(
    inference: Inference, fake: FakeProvider, cdn: str
) -> None:
    """An image's description: its prompt once its request is out. A voice note: the
    transcription's own count once its transcript came (not the estimate of the audio), then
    with the clean-up's prompt once that is out; each reading carries them all."""
    fake.enqueue(DESCRIPTION)
    fake.enqueue(CLEANED)
    fake.enqueue("I see.")
    events: list[ReplyEvent] = []
    await collect(inference, request(image(cdn), voice(cdn)), events)
    said, told = said_and_told(events)
    described, heard = [e for e in told if isinstance(e, AttachmentRead)]
    ((prompt,),) = [p.calls for p in said if p.index == 0]
    assert prompt.request_type == "image_description"
    assert (prompt.estimated, prompt.usage.output_tokens) == (True, 0)
    assert prompt.usage.input_tokens > IMAGE_TOKENS  # the prompt, its image counted
    hearing = [p for p in said if p.index == 1]
    transcription, cleanup = heard.paid
    messages = [
        {"role": "system", "content": CLEANUP_PROMPT},
        {"role": "user", "content": fake.transcript},
    ]
    tokens = prompt_tokens(messages, TokenCounter("fake/cheap"))  # type: ignore[arg-type]  # plain dicts as ChatMessage
    estimate = replace(cleanup, usage=TokenUsage(tokens, 0), estimated=True)
    assert hearing[-2:] == [
        HelperCallPending(1, (transcription,)),
        HelperCallPending(1, (transcription, estimate)),
    ]
    assert not transcription.estimated  # the provider's own count
    for pending in said:
        assert events.index(pending) < events.index(described if pending.index == 0 else heard)
