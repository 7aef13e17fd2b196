"""Attachments: downloaded from a local HTTP server (standing in for Discord's CDN) within
size and type limits, then given to the model as image parts, described by a vision model,
or transcribed (Whisper-style multipart on the fake provider) and cleaned."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import grpc
import httpx2
import pytest
from aiohttp import web
from pydantic import SecretStr

from tzurot.inference.answering import AnswerSettings
from tzurot.inference.attachments import AttachmentLimits, AttachmentReader, HttpDownloader
from tzurot.inference.domain import (
    AttachmentRead,
    AttachmentRef,
    Character,
    HelperCallPending,
    ModelChoice,
    PromptSent,
    ReplyFinished,
    ReplyRequest,
    UsageSpent,
)
from tzurot.inference.keys import KeyResolver
from tzurot.inference.llm import LlmClient
from tzurot.inference.providers import ProviderRegistry
from tzurot.inference.reply_settings import ModelName, ReplySettings
from tzurot.inference.retries import MAX_RATE_LIMIT_WAIT_SECONDS
from tzurot.inference.service import Inference
from tzurot.runtime.errors import (
    FailedPrecondition,
    InvalidArgument,
    ResourceExhausted,
    TzurotError,
)
from tzurot.testing.fake_provider import FakeProvider

pytestmark = pytest.mark.contract

KEY = "plantedATTACHzq7Wm3Xv9Rt2"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(200))
OGG = b"OggS" + bytes(300)
LIMITS = AttachmentLimits(max_image_bytes=1000, max_audio_bytes=2000, max_attachments=3)
RETRIES = AnswerSettings(failure_retries=2, retry_backoff=0.01)


@dataclass
class Cdn:
    base: str
    hits: list[str]


@pytest.fixture
async def cdn() -> AsyncIterator[Cdn]:
    hits: list[str] = []

    async def serve(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        hits.append(name)
        if name == "cat.png":
            return web.Response(body=PNG, content_type="image/png")
        if name == "voice.ogg":
            return web.Response(body=OGG, content_type="audio/ogg")
        if name == "page.png":
            return web.Response(text="<html>", content_type="text/html")
        if name == "big.png":  # no Content-Length: the limit must hold while streaming
            response = web.StreamResponse(headers={"Content-Type": "image/png"})
            response.enable_chunked_encoding()
            await response.prepare(request)
            for _ in range(20):
                await response.write(bytes(100))
            await response.write_eof()
            return response
        return web.Response(status=404)

    app = web.Application()
    app.router.add_get("/att/{name}", serve)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield Cdn(f"http://127.0.0.1:{port}/att", hits)
    finally:
        await runner.cleanup()


@pytest.fixture
async def fake() -> AsyncIterator[FakeProvider]:
    async with FakeProvider(valid_keys={KEY}, any_model=True) as provider:
        yield provider


class Vault:
    """The user holds a key for every provider except `keyless`."""

    async def decrypt(self, user_id: str, provider: str) -> SecretStr | None:
        return None if provider == "keyless" else SecretStr(KEY)


class NoHistory:
    async def recent_turns(
        self, channel_id: str, personality_id: str, limit: int, *, whole_channel: bool = False
    ) -> list[object]:
        return []


@pytest.fixture
async def inference(fake: FakeProvider) -> AsyncIterator[Inference]:
    llm = LlmClient(timeout_seconds=10.0)
    client = httpx2.AsyncClient()
    try:
        yield Inference(
            providers=ProviderRegistry({"fakeai": fake.base_url}),
            keys=KeyResolver(Vault()),
            history=NoHistory(),  # type: ignore[arg-type]  # returns no turns at all
            llm=llm,
            settings=ReplySettings(
                answer=RETRIES,
                vision=ModelName("fakeai", "fake/vision"),
                transcription=ModelName("fakeai", "whisper-1"),
                transcript_cleanup=ModelName("fakeai", "fake/cheap"),
            ),
            attachments=AttachmentReader(HttpDownloader(client, ["127.0.0.1"]), llm, LIMITS),
            clock=lambda: datetime(2025, 6, 3, tzinfo=UTC),
        )
    finally:
        await llm.aclose()
        await client.aclose()


def request(model: str, *attachments: AttachmentRef, content: str = "look") -> ReplyRequest:
    return ReplyRequest(
        job_id="j",
        user_id="u-1",
        author_name="Ann",
        channel_id="c",
        character=Character(id="p", name="Lilith"),
        model=ModelChoice(provider="fakeai", model=model),
        content=content,
        attachments=attachments,
    )


def image(cdn: Cdn, name: str = "cat.png", **changes: object) -> AttachmentRef:
    ref = AttachmentRef(
        url=f"{cdn.base}/{name}", content_type="image/png", filename=name, size_bytes=len(PNG)
    )
    return replace(ref, **changes)  # type: ignore[arg-type]  # test helper


async def finish(inference: Inference, req: ReplyRequest) -> ReplyFinished:
    events = [e async for e in inference.generate_reply(req)]
    last = events[-1]
    assert isinstance(last, ReplyFinished)
    return last


async def failure(inference: Inference, req: ReplyRequest) -> TzurotError:
    with pytest.raises(TzurotError) as caught:
        await finish(inference, req)
    return caught.value


async def test_a_vision_model_gets_the_image_as_a_part(
    inference: Inference, fake: FakeProvider, cdn: Cdn
) -> None:
    finished = await finish(inference, request("openai/gpt-4o", image(cdn)))
    [call] = fake.chat_requests()
    user = call.body["messages"][-1]
    assert user["role"] == "user"
    assert user["content"] == [
        {"type": "text", "text": "Ann: look"},
        {
            "type": "image_url",
            "image_url": {"url": "data:image/png;base64," + base64.b64encode(PNG).decode()},
        },
    ]
    assert finished.report.prompt_tokens_estimate > 1105


async def test_a_model_without_vision_gets_a_description(
    inference: Inference, fake: FakeProvider, cdn: Cdn
) -> None:
    fake.enqueue("A grey cat asleep on a red sofa.")
    fake.enqueue("What a lazy beast.")
    finished = await finish(inference, request("fake/echo", image(cdn)))
    describe, reply = fake.chat_requests()
    assert describe.body["model"] == "fake/vision"
    parts = describe.body["messages"][0]["content"]
    assert parts[1]["image_url"]["url"].startswith("data:image/png;base64,")
    assert reply.body["messages"][-1] == {
        "role": "user",
        "content": "Ann: look\n[Image cat.png: A grey cat asleep on a red sofa.]",
    }
    assert finished.content == "What a lazy beast."
    assert finished.attachments[0].description == "A grey cat asleep on a red sofa."


async def test_audio_is_transcribed_cleaned_and_kept_for_history(
    inference: Inference, fake: FakeProvider, cdn: Cdn
) -> None:
    fake.transcript = "um hello lilith how are you"
    fake.enqueue("Hello, Lilith. How are you?")  # the cleanup model
    fake.enqueue("I am well, child.")
    voice = AttachmentRef(
        url=f"{cdn.base}/voice.ogg", content_type="audio/ogg", filename="voice.ogg"
    )
    finished = await finish(inference, request("fake/echo", voice, content=""))
    [transcription] = fake.transcription_requests()
    assert transcription.body["model"] == "whisper-1"
    assert (transcription.body["file_name"], transcription.body["file_size"]) == (
        "voice.ogg",
        len(OGG),
    )
    assert transcription.body["file_content_type"] == "audio/ogg"
    cleanup, reply = fake.chat_requests()
    assert cleanup.body["model"] == "fake/cheap"
    assert cleanup.body["temperature"] == 0.0
    assert cleanup.body["messages"][-1] == {
        "role": "user",
        "content": "um hello lilith how are you",
    }
    assert (
        reply.body["messages"][-1]["content"] == "Ann: [Voice message: Hello, Lilith. How are you?]"
    )
    assert finished.user_content == "[Voice message: Hello, Lilith. How are you?]"
    assert finished.attachments[0].description == "Hello, Lilith. How are you?"


async def test_an_image_too_large_by_its_declared_size_is_never_fetched(
    inference: Inference, fake: FakeProvider, cdn: Cdn
) -> None:
    err = await failure(inference, request("openai/gpt-4o", image(cdn, size_bytes=5000)))
    assert isinstance(err, InvalidArgument)
    assert (err.field, err.reason) == ("attachments[0]", "ATTACHMENT_TOO_LARGE")
    assert err.message == "the attachment is larger than 1000 bytes"
    assert (cdn.hits, fake.requests) == ([], [])


async def test_the_size_limit_holds_while_streaming(
    inference: Inference, fake: FakeProvider, cdn: Cdn
) -> None:
    err = await failure(inference, request("openai/gpt-4o", image(cdn, "big.png", size_bytes=0)))
    assert isinstance(err, InvalidArgument)
    assert err.reason == "ATTACHMENT_TOO_LARGE"
    assert cdn.hits == ["big.png"]
    assert fake.requests == []


@pytest.mark.parametrize(
    ("name", "content_type", "reason", "fetched"),
    [
        ("page.png", "image/png", "ATTACHMENT_TYPE_NOT_SUPPORTED", True),  # the server disagrees
        ("doc.pdf", "application/pdf", "ATTACHMENT_TYPE_NOT_SUPPORTED", False),
        ("x.bmp", "image/bmp", "ATTACHMENT_TYPE_NOT_SUPPORTED", False),
    ],
)
async def test_types_are_checked_before_and_during_the_download(  # noqa: PLR0917  # parametrized
    inference: Inference, cdn: Cdn, name: str, content_type: str, reason: str, fetched: bool
) -> None:
    err = await failure(
        inference, request("openai/gpt-4o", image(cdn, name, content_type=content_type))
    )
    assert isinstance(err, InvalidArgument)
    assert (err.field, err.reason) == ("attachments[0]", reason)
    assert bool(cdn.hits) == fetched


async def test_only_allowed_hosts_are_fetched(inference: Inference, cdn: Cdn) -> None:
    ref = image(cdn, url="http://169.254.169.254/latest/meta-data")
    err = await failure(inference, request("openai/gpt-4o", ref))
    assert isinstance(err, InvalidArgument)
    assert err.reason == "ATTACHMENT_HOST"


async def test_an_expired_link_says_so(inference: Inference, cdn: Cdn) -> None:
    err = await failure(inference, request("openai/gpt-4o", image(cdn, "gone.png")))
    assert isinstance(err, FailedPrecondition)
    assert err.reason == "ATTACHMENT_UNAVAILABLE"
    assert "HTTP 404" in err.message


async def test_too_many_attachments(inference: Inference, cdn: Cdn) -> None:
    err = await failure(inference, request("openai/gpt-4o", *[image(cdn)] * 4))
    assert isinstance(err, InvalidArgument)
    assert (err.field, err.reason) == ("attachments", "TOO_MANY_ATTACHMENTS")
    assert cdn.hits == []


async def test_a_failed_cleanup_keeps_the_raw_transcript(
    inference: Inference, fake: FakeProvider, cdn: Cdn
) -> None:
    """The transcription is paid for already: a clean-up that fails leaves it raw, and, as it
    failed otherwise than by refusing the user's key, the reading names no key."""
    fake.transcript = "um hello there"
    fake.cut_after_chunks = 0  # the clean-up's stream ends before any answer: UNAVAILABLE
    events: list[object] = []
    asked = 0
    async for event in inference.generate_reply(request("fake/echo", voice_note(cdn))):
        events.append(event)
        if isinstance(event, AttachmentRead):
            asked = len(fake.chat_requests())
            fake.cut_after_chunks = None  # the answer streams whole
    # What the calls may bill while they run: test_helper_calls_pending.py.
    told = [e for e in events if not isinstance(e, HelperCallPending)]
    read, finished = told[0], told[-1]
    assert isinstance(read, AttachmentRead)
    assert isinstance(finished, ReplyFinished)
    assert read.attachment.description == "um hello there"
    assert [p.request_type for p in read.paid] == ["transcription"]
    assert read.refused_key_providers == ()
    # The clean-up was asked, and failed; as nothing of it came, it was asked again as an
    # answer would be (retries.py), then given up.
    assert asked == 1 + RETRIES.failure_retries


async def test_each_paid_reading_is_announced_before_the_answer(
    inference: Inference, fake: FakeProvider, cdn: Cdn
) -> None:
    """Each attachment a helper model read goes out as it is paid for, with each call's
    usage: the gateway records it whatever becomes of the answer."""
    fake.enqueue("A grey cat.")  # the description
    fake.enqueue("Hello there.")  # the clean-up
    fake.enqueue("Nice.")
    voice = AttachmentRef(
        url=f"{cdn.base}/voice.ogg", content_type="audio/ogg", filename="voice.ogg"
    )
    events = [e async for e in inference.generate_reply(request("fake/echo", image(cdn), voice))]
    # What each call may bill while it runs: test_helper_calls_pending.py.
    first, second = [e for e in events if not isinstance(e, HelperCallPending)][:2]
    assert isinstance(first, AttachmentRead)
    assert isinstance(second, AttachmentRead)
    assert isinstance(events[-1], ReplyFinished)
    assert (first.index, first.attachment.description) == (0, "A grey cat.")
    assert [(p.request_type, p.provider, p.model) for p in first.paid] == [
        ("image_description", "fakeai", "fake/vision")
    ]
    assert (second.index, second.attachment.description) == (1, "Hello there.")
    transcription, cleanup = second.paid
    assert (transcription.request_type, transcription.model) == ("transcription", "whisper-1")
    assert transcription.audio_seconds == fake.transcript_seconds  # whisper-1 bills seconds
    assert (cleanup.request_type, cleanup.model) == ("transcript_cleanup", "fake/cheap")
    assert cleanup.usage.input_tokens > 0
    assert cleanup.usage.output_tokens > 0


async def test_what_was_paid_is_announced_when_the_answer_fails(
    inference: Inference, fake: FakeProvider, cdn: Cdn
) -> None:
    fake.enqueue("Hello there.")  # the clean-up
    fake.enqueue("")  # the answer, empty twice: UNAVAILABLE EMPTY_ANSWER
    fake.enqueue("")
    voice = AttachmentRef(
        url=f"{cdn.base}/voice.ogg", content_type="audio/ogg", filename="voice.ogg"
    )
    seen: list[object] = []

    async def answer() -> None:
        async for event in inference.generate_reply(request("fake/echo", voice, content="")):
            seen.append(event)

    with pytest.raises(TzurotError) as caught:
        await answer()
    assert caught.value.reason == "EMPTY_ANSWER"
    # What the clean-up read, then the two empty answers (each request announced) paid for.
    read, *announced, spent = [e for e in seen if not isinstance(e, HelperCallPending)]
    assert [type(e) for e in announced] == [PromptSent, PromptSent]
    assert isinstance(read, AttachmentRead)
    assert read.attachment.description == "Hello there."
    assert isinstance(spent, UsageSpent)
    assert spent.failed


async def test_an_attachment_read_before_is_not_read_again(
    inference: Inference, fake: FakeProvider, cdn: Cdn
) -> None:
    """What the gateway kept from an earlier attempt comes back as the description."""
    voice = AttachmentRef(
        url=f"{cdn.base}/voice.ogg",
        content_type="audio/ogg",
        filename="voice.ogg",
        description="Hello there.",
    )
    fake.enqueue("Hi.")
    events = [e async for e in inference.generate_reply(request("fake/echo", voice, content=""))]
    assert not any(isinstance(e, AttachmentRead) for e in events)
    assert (fake.transcription_requests(), cdn.hits) == ([], [])
    [reply] = fake.chat_requests()
    assert reply.body["messages"][-1]["content"] == "Ann: [Voice message: Hello there.]"


async def test_only_the_helper_models_a_message_needs_are_keyed(
    fake: FakeProvider, cdn: Cdn
) -> None:
    """An image for a model without vision needs the describer's key, not the transcriber's."""
    llm = LlmClient(timeout_seconds=10.0)
    client = httpx2.AsyncClient()
    inference = Inference(
        providers=ProviderRegistry({"fakeai": fake.base_url, "keyless": fake.base_url}),
        keys=KeyResolver(Vault()),
        history=NoHistory(),  # type: ignore[arg-type]  # returns no turns at all
        llm=llm,
        settings=ReplySettings(
            vision=ModelName("fakeai", "fake/vision"),
            transcription=ModelName("keyless", "whisper-1"),
            transcript_cleanup=ModelName("keyless", "fake/cheap"),
        ),
        attachments=AttachmentReader(HttpDownloader(client, ["127.0.0.1"]), llm, LIMITS),
        clock=lambda: datetime(2025, 6, 3, tzinfo=UTC),
    )
    try:
        fake.enqueue("A grey cat.")
        fake.enqueue("Nice cat.")
        finished = await finish(inference, request("fake/echo", image(cdn)))
        assert finished.content == "Nice cat."
        voice = AttachmentRef(
            url=f"{cdn.base}/voice.ogg", content_type="audio/ogg", filename="voice.ogg"
        )
        err = await failure(inference, request("fake/echo", voice, content=""))
        assert err.reason == "NO_API_KEY"
        assert "keyless" in err.message
    finally:
        await llm.aclose()
        await client.aclose()


async def test_the_report_names_every_user_key_the_reply_used(fake: FakeProvider, cdn: Cdn) -> None:
    """The describer runs on another provider: both of the user's keys were used (the gateway
    marks each used in keyvault, so `/wallet list` shows it)."""
    llm = LlmClient(timeout_seconds=10.0)
    client = httpx2.AsyncClient()
    try:
        inference = Inference(
            providers=ProviderRegistry({"fakeai": fake.base_url, "visionai": fake.base_url}),
            keys=KeyResolver(Vault()),
            history=NoHistory(),  # type: ignore[arg-type]  # returns no turns at all
            llm=llm,
            settings=ReplySettings(vision=ModelName("visionai", "fake/vision")),
            attachments=AttachmentReader(HttpDownloader(client, ["127.0.0.1"]), llm, LIMITS),
            clock=lambda: datetime(2025, 6, 3, tzinfo=UTC),
        )
        fake.enqueue("A grey cat.")
        fake.enqueue("Lazy beast.")
        described = await finish(inference, request("fake/echo", image(cdn)))
        plain = await finish(inference, request("fake/echo"))
    finally:
        await llm.aclose()
        await client.aclose()
    assert described.report.user_key_providers == ("fakeai", "visionai")
    assert plain.report.user_key_providers == ("fakeai",)


class RevokedCleanerVault(Vault):
    """The user's key for `cleanai` was revoked at the provider (the fake refuses it)."""

    async def decrypt(self, user_id: str, provider: str) -> SecretStr | None:
        return SecretStr("sk-revoked") if provider == "cleanai" else SecretStr(KEY)


async def test_a_cleanup_refusing_the_users_key_is_reported_not_used(
    fake: FakeProvider, cdn: Cdn
) -> None:
    """Her key for the clean-up's provider is refused (401): the raw transcript goes on, the
    reading names that provider (gateway marks the key inactive: no error tells it), and the
    report does not call the key used (that would make it active again). A clean-up failing
    for another reason names no key."""
    llm = LlmClient(timeout_seconds=10.0)
    client = httpx2.AsyncClient()
    try:
        inference = Inference(
            providers=ProviderRegistry({"fakeai": fake.base_url, "cleanai": fake.base_url}),
            keys=KeyResolver(RevokedCleanerVault()),
            history=NoHistory(),  # type: ignore[arg-type]  # returns no turns at all
            llm=llm,
            settings=ReplySettings(
                transcription=ModelName("fakeai", "whisper-1"),
                transcript_cleanup=ModelName("cleanai", "fake/cheap"),
            ),
            attachments=AttachmentReader(HttpDownloader(client, ["127.0.0.1"]), llm, LIMITS),
            clock=lambda: datetime(2025, 6, 3, tzinfo=UTC),
        )
        fake.transcript = "um hello there"
        fake.enqueue("Hi.")  # the answer (the refused clean-up takes none)
        events = [e async for e in inference.generate_reply(request("fake/echo", voice_note(cdn)))]
    finally:
        await llm.aclose()
        await client.aclose()
    told = [e for e in events if not isinstance(e, HelperCallPending)]
    read, finished = told[0], told[-1]
    assert isinstance(read, AttachmentRead)
    assert isinstance(finished, ReplyFinished)
    assert read.attachment.description == "um hello there"  # raw
    assert [p.request_type for p in read.paid] == ["transcription"]
    assert read.refused_key_providers == ("cleanai",)
    assert finished.report.user_key_providers == ("fakeai",)


# -- rate limits and failures of the helper models: retries.py, as for an answer ------------

TRANSCRIPTIONS = "/v1/audio/transcriptions"
CHAT = "/v1/chat/completions"
GUARD_SECONDS = 10.0
"""Longer than any wait the policy allows here; the SDK would sleep 30 s on these 429s."""


def voice_note(cdn: Cdn) -> AttachmentRef:
    return AttachmentRef(url=f"{cdn.base}/voice.ogg", content_type="audio/ogg", filename="v.ogg")


async def test_a_rate_limited_transcription_tells_the_user_when_to_try_again(
    inference: Inference, fake: FakeProvider, cdn: Cdn
) -> None:
    """A 429 asking more than MAX_RATE_LIMIT_WAIT_SECONDS fails the reply at once with its
    Retry-After, as an answer's 429 does: one request, no answer asked for."""
    fake.fail_next(429, times=3, retry_after=MAX_RATE_LIMIT_WAIT_SECONDS + 10, path=TRANSCRIPTIONS)
    async with asyncio.timeout(GUARD_SECONDS):
        err = await failure(inference, request("fake/echo", voice_note(cdn), content=""))
    assert isinstance(err, ResourceExhausted)
    assert err.reason == "PROVIDER_RATE_LIMITED"
    assert err.retry_after_seconds == pytest.approx(MAX_RATE_LIMIT_WAIT_SECONDS + 10)
    assert len(fake.transcription_requests()) == 1  # no hidden retries
    assert fake.chat_requests() == []


async def test_a_short_rate_limit_on_a_transcription_is_waited_out_once(
    inference: Inference, fake: FakeProvider, cdn: Cdn
) -> None:
    fake.fail_next(429, retry_after=0.05, path=TRANSCRIPTIONS)
    fake.enqueue("Hello there.")  # the clean-up
    finished = await finish(inference, request("fake/echo", voice_note(cdn), content=""))
    assert finished.user_content == "[Voice message: Hello there.]"
    assert len(fake.transcription_requests()) == 2
    fake.fail_next(429, times=2, retry_after=0.05, path=TRANSCRIPTIONS)
    err = await failure(inference, request("fake/echo", voice_note(cdn), content=""))
    assert (err.reason, len(fake.transcription_requests())) == ("PROVIDER_RATE_LIMITED", 4)


async def test_a_transcription_that_failed_after_sending_is_not_bought_again(
    inference: Inference, fake: FakeProvider, cdn: Cdn
) -> None:
    """A 5xx may come after the provider transcribed (and billed) the audio."""
    fake.fail_next(503, times=3, path=TRANSCRIPTIONS)
    err = await failure(inference, request("fake/echo", voice_note(cdn), content=""))
    assert (err.code, err.reason) == (grpc.StatusCode.UNAVAILABLE, "PROVIDER_UNAVAILABLE")
    assert len(fake.transcription_requests()) == 1


async def test_a_rate_limited_description_is_reported_with_its_retry_after(
    inference: Inference, fake: FakeProvider, cdn: Cdn
) -> None:
    fake.fail_next(429, times=3, retry_after=MAX_RATE_LIMIT_WAIT_SECONDS + 10, path=CHAT)
    async with asyncio.timeout(GUARD_SECONDS):
        err = await failure(inference, request("fake/echo", image(cdn)))
    assert isinstance(err, ResourceExhausted)
    assert err.reason == "PROVIDER_RATE_LIMITED"
    assert err.retry_after_seconds == pytest.approx(MAX_RATE_LIMIT_WAIT_SECONDS + 10)
    assert len(fake.chat_requests()) == 1  # the description's: no answer asked for


async def test_a_short_rate_limit_on_a_description_is_waited_out_once(
    inference: Inference, fake: FakeProvider, cdn: Cdn
) -> None:
    fake.fail_next(429, times=2, retry_after=0.05, path=CHAT)  # the SDK asked a third time
    err = await failure(inference, request("fake/echo", image(cdn)))
    assert isinstance(err, ResourceExhausted)
    assert len(fake.chat_requests()) == 2  # asked once more after the wait, then told
    fake.fail_next(429, retry_after=0.05, path=CHAT)
    fake.enqueue("A cat.")  # the description
    fake.enqueue("Nice cat.")
    events = [e async for e in inference.generate_reply(request("fake/echo", image(cdn)))]
    told = [e for e in events if not isinstance(e, HelperCallPending)]
    read, finished = told[0], told[-1]
    assert isinstance(read, AttachmentRead)
    assert isinstance(finished, ReplyFinished)
    assert (read.attachment.description, finished.content) == ("A cat.", "Nice cat.")
    assert len(fake.chat_requests()) == 5  # the description twice more, then the answer


async def test_a_rate_limit_longer_than_the_callers_deadline_is_reported_at_once(
    inference: Inference, fake: FakeProvider, cdn: Cdn
) -> None:
    """5 s is under the cap, but the caller (its gRPC deadline) waits only 2 s more."""
    fake.fail_next(429, times=3, retry_after=5.0, path=TRANSCRIPTIONS)

    async def reply() -> None:
        async for _ in inference.generate_reply(
            request("fake/echo", voice_note(cdn)), time_limit=2.0
        ):
            pass

    with pytest.raises(ResourceExhausted) as caught:
        async with asyncio.timeout(2.0):
            await reply()
    assert caught.value.retry_after_seconds == pytest.approx(5.0)
    assert len(fake.transcription_requests()) == 1
