"""OpenAI-compatible speech under retries.py, against the fake provider: the openai SDK's own
retries are off, so a 429 is told at once (with its Retry-After) or waited out once, never
slept through twice unseen; once the provider took the text nothing is asked again."""

from __future__ import annotations

import asyncio

import httpx2 as httpx
import pytest
from pydantic import SecretStr

from tzurot.inference.providers import Provider
from tzurot.inference.retries import MAX_RATE_LIMIT_WAIT_SECONDS
from tzurot.inference.speech import Accepted, OpenAISpeechClient, VoiceSpec
from tzurot.runtime.errors import ResourceExhausted, Unavailable
from tzurot.testing.fake_provider import DEFAULT_KEY, FakeProvider

pytestmark = pytest.mark.contract

SPEECH = "/v1/audio/speech"
ALLOY = VoiceSpec("openai", "alloy")


async def speak(fake: FakeProvider, http: httpx.AsyncClient) -> list[Accepted | bytes]:
    client = OpenAISpeechClient(http)  # the production default: max_retries=2
    provider = Provider("openai", fake.base_url)
    async with asyncio.timeout(10):  # the SDK slept 30 s on each of these 429s
        return [e async for e in client.synthesize(provider, SecretStr(DEFAULT_KEY), ALLOY, "hi")]


async def test_a_rate_limited_speech_request_is_told_at_once() -> None:
    async with FakeProvider() as fake, httpx.AsyncClient() as http:
        fake.fail_next(429, times=3, retry_after=MAX_RATE_LIMIT_WAIT_SECONDS + 10, path=SPEECH)
        with pytest.raises(ResourceExhausted) as caught:
            await speak(fake, http)
        assert caught.value.reason == "PROVIDER_RATE_LIMITED"
        assert caught.value.retry_after_seconds == pytest.approx(MAX_RATE_LIMIT_WAIT_SECONDS + 10)
        assert len(fake.speech_requests()) == 1


async def test_a_short_rate_limit_on_speech_is_waited_out_once() -> None:
    async with FakeProvider() as fake, httpx.AsyncClient() as http:
        fake.fail_next(429, retry_after=0.05, path=SPEECH)
        events = await speak(fake, http)
        assert events[0] == Accepted("tts-1")
        assert len(fake.speech_requests()) == 2
        fake.fail_next(429, times=2, retry_after=0.05, path=SPEECH)  # the SDK asked a third time
        with pytest.raises(ResourceExhausted):
            await speak(fake, http)
        assert len(fake.speech_requests()) == 4


async def test_speech_that_failed_after_sending_is_not_bought_again() -> None:
    """A 5xx may come after the provider spoke (and billed) the text."""
    async with FakeProvider() as fake, httpx.AsyncClient() as http:
        fake.fail_next(503, times=3, path=SPEECH)
        with pytest.raises(Unavailable):
            await speak(fake, http)
        assert len(fake.speech_requests()) == 1
