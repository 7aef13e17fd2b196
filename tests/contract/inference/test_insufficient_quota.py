"""OpenAI answers a key whose account has no credit left with 429 `insufficient_quota`, not
OpenRouter's 402. The fake answers as the vendor it stands for (`quota_shape`), and every
OpenAI-compatible call inference makes (chat, transcription, speech) reads that 429 as the
quota refusal it is: PROVIDER_QUOTA_EXCEEDED, never asked again, never "rate limited, try
again later"; an ordinary 429 stays a rate limit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx2
import pytest
from pydantic import SecretStr

from tzurot.inference.dialects import ProviderCall
from tzurot.inference.llm import LlmClient
from tzurot.inference.providers import Provider
from tzurot.inference.retries import RetryPolicy, helper_completion, whole_answer
from tzurot.inference.speech import OpenAISpeechClient, VoiceSpec
from tzurot.runtime.errors import ResourceExhausted
from tzurot.testing.fake_provider import DEFAULT_KEY, QUOTA_MESSAGE, FakeProvider

pytestmark = pytest.mark.contract

SPENT = "sk-openai-no-credit"
CHAT = ProviderCall(messages=[{"role": "user", "content": "hi"}], body={})


@pytest.fixture
async def fake() -> AsyncIterator[FakeProvider]:
    async with FakeProvider(valid_keys={DEFAULT_KEY, SPENT}) as provider:
        provider.spent_keys.add(SPENT)
        provider.quota_shape = "openai"
        yield provider


@pytest.fixture
async def llm() -> AsyncIterator[LlmClient]:
    client = LlmClient(timeout_seconds=10.0)
    try:
        yield client
    finally:
        await client.aclose()


async def test_the_fake_refuses_a_spent_openai_key_as_openai_does(fake: FakeProvider) -> None:
    async with httpx2.AsyncClient(base_url=fake.base_url) as http:
        auth = {"Authorization": f"Bearer {SPENT}"}
        chat = await http.post(
            "/chat/completions",
            headers=auth,
            json={"model": "fake/echo", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert chat.status_code == 429
        assert chat.json() == {
            "error": {
                "message": QUOTA_MESSAGE,
                "type": "insufficient_quota",
                "param": None,
                "code": "insufficient_quota",
            }
        }
        # Listing models costs nothing: the key itself works.
        assert (await http.get("/models", headers=auth)).status_code == 200
        fake.quota_shape = "openrouter"  # OpenRouter's shape stays its 402
        refused = await http.post(
            "/chat/completions",
            headers=auth,
            json={"model": "fake/echo", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert refused.status_code == 402


async def test_a_chat_with_no_quota_is_a_quota_refusal_and_not_asked_again(
    fake: FakeProvider, llm: LlmClient
) -> None:
    provider = Provider("openai", fake.base_url)
    with pytest.raises(ResourceExhausted) as caught:
        await helper_completion(
            llm, provider, SecretStr(SPENT), "fake/echo", CHAT, RetryPolicy(failures=2)
        )
    assert caught.value.reason == "PROVIDER_QUOTA_EXCEEDED"
    assert caught.value.retry_after_seconds is None
    assert "add credit" in caught.value.message
    assert SPENT not in caught.value.message
    assert len(fake.chat_requests()) == 1


async def test_an_injected_insufficient_quota_on_transcription_is_a_quota_refusal(
    fake: FakeProvider, llm: LlmClient
) -> None:
    fake.fail_next(429, code="insufficient_quota", retry_after=1, path="/v1/audio/transcriptions")
    provider = Provider("openai", fake.base_url)
    with pytest.raises(ResourceExhausted) as caught:
        await whole_answer(
            lambda: llm.transcribe(
                provider,
                SecretStr(DEFAULT_KEY),
                model="whisper-1",
                audio=b"OggS" + bytes(100),
                filename="voice.ogg",
                content_type="audio/ogg",
            ),
            RetryPolicy(),
        )
    assert caught.value.reason == "PROVIDER_QUOTA_EXCEEDED"
    assert len(fake.transcription_requests()) == 1  # a rate limit's Retry-After of 1 s is retried


async def test_an_ordinary_429_is_still_a_rate_limit_waited_out_once(
    fake: FakeProvider, llm: LlmClient
) -> None:
    fake.fail_next(429, retry_after=0.05, path="/v1/audio/transcriptions")
    provider = Provider("openai", fake.base_url)
    heard = await whole_answer(
        lambda: llm.transcribe(
            provider,
            SecretStr(DEFAULT_KEY),
            model="whisper-1",
            audio=b"OggS" + bytes(100),
            filename="voice.ogg",
            content_type="audio/ogg",
        ),
        RetryPolicy(),
    )
    assert heard.text == fake.transcript
    assert len(fake.transcription_requests()) == 2


async def test_openai_speech_with_no_quota_is_a_quota_refusal_asked_once(
    fake: FakeProvider,
) -> None:
    async with httpx2.AsyncClient() as http:
        client = OpenAISpeechClient(http)
        provider = Provider("openai", fake.base_url)
        speech = client.synthesize(provider, SecretStr(SPENT), VoiceSpec("openai", "alloy"), "hi")
        with pytest.raises(ResourceExhausted) as caught:
            await asyncio.wait_for(anext(speech), 10)
    assert caught.value.reason == "PROVIDER_QUOTA_EXCEEDED"
    assert len(fake.speech_requests()) == 1
