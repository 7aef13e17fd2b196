"""ElevenLabs' busy 429s against the fake: `too_many_concurrent_requests` (more voice messages
at once than the account's plan allows: two personalities speaking together on a Free key) and
`system_busy` come before anything is billed, so inference asks again after a short backoff
and the voice message arrives; a lasting one is told as a rate limit after a bounded number of
attempts, and a quota is never asked again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx2 as httpx
import pytest
from pydantic import SecretStr

from tzurot.inference.speech import BUSY_RETRIES, Accepted, ElevenLabsClient, VoiceSpec
from tzurot.runtime.errors import ResourceExhausted
from tzurot.testing.fake_elevenlabs import FakeElevenLabs

pytestmark = pytest.mark.contract

KEY = "sk_free_account"
SARAH = VoiceSpec("elevenlabs", "EXAVITQu4vr4xnSDxMaL")


@pytest.fixture
async def fake() -> AsyncIterator[FakeElevenLabs]:
    async with FakeElevenLabs(valid_keys=()) as eleven:
        eleven.add_key(KEY, plan="free")
        yield eleven


@pytest.fixture
async def client(fake: FakeElevenLabs) -> AsyncIterator[ElevenLabsClient]:
    async with httpx.AsyncClient() as http:
        yield ElevenLabsClient(http, fake.base_url, busy_backoff=0.2)


async def spoken(client: ElevenLabsClient, text: str = "hello there") -> list[Accepted | bytes]:
    async with asyncio.timeout(20):
        return [piece async for piece in client.synthesize(SecretStr(KEY), SARAH, text)]


async def test_three_voice_messages_at_once_on_a_free_plan_all_arrive(
    fake: FakeElevenLabs, client: ElevenLabsClient
) -> None:
    fake.latency = 0.3
    results = await asyncio.gather(*(spoken(client) for _ in range(3)))
    for pieces in results:
        assert pieces[0] == Accepted("eleven_multilingual_v2")
        assert sum(len(p) for p in pieces[1:] if isinstance(p, bytes)) > 0
    assert fake.peak_in_flight == 2  # never more than the plan allows
    assert len(fake.tts_calls()) > 3  # the third was refused, then asked again
    assert fake.characters_used == 3 * len("hello there")


async def test_system_busy_is_asked_again_after_a_backoff(
    fake: FakeElevenLabs, client: ElevenLabsClient
) -> None:
    fake.system_busy_next(2)
    pieces = await spoken(client)
    assert pieces[0] == Accepted("eleven_multilingual_v2")
    assert len(fake.tts_calls()) == 3


async def test_a_lasting_busy_is_told_as_a_rate_limit_after_bounded_attempts(
    fake: FakeElevenLabs, client: ElevenLabsClient
) -> None:
    fake.system_busy_next(BUSY_RETRIES + 5)
    with pytest.raises(ResourceExhausted) as caught:
        await spoken(client)
    assert caught.value.reason == "PROVIDER_RATE_LIMITED"
    assert len(fake.tts_calls()) == BUSY_RETRIES + 1


async def test_a_quota_is_never_asked_again(fake: FakeElevenLabs, client: ElevenLabsClient) -> None:
    fake.character_quota = 3
    with pytest.raises(ResourceExhausted) as caught:
        await spoken(client)
    assert caught.value.reason == "PROVIDER_QUOTA_EXCEEDED"
    assert len(fake.tts_calls()) == 1
