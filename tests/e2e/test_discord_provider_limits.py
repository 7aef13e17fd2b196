"""What a user reads when the provider limits an answer, through the fake Discord: a 429 says
when to try again (the provider is asked once more only when its Retry-After fits in the
time an answer has), also when it refused a helper model (the voice message's
transcription), and thinking that used up max_tokens says what to change; none is asked
again blindly."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tzurot.audio import encode_tone
from tzurot.cli.localdb import create_database
from tzurot.testing.discord_e2e import World, discord_world, running_bot
from tzurot.testing.fake_discord import Json, Posted
from tzurot.testing.fake_provider import ScriptedReply

pytestmark = pytest.mark.e2e

TOTAL_SECONDS = 3.0
"""All of one answer's attempts (TZUROT_TOTAL_TIMEOUT_SECONDS): short, so a Retry-After the
SDK would have slept through (up to 120 s) does not fit."""


@pytest.fixture(scope="module")
async def limits_mesh(
    postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    database = create_database(postgres_url, f"test_{uuid.uuid4().hex[:20]}")
    async with discord_world(
        database,
        tmp_path_factory.mktemp("limits"),
        inference={
            "total_timeout_seconds": TOTAL_SECONDS,
            "attachment_hosts": ["127.0.0.1"],  # the fake Discord's CDN
            "transcription_provider": "openrouter",
        },
    ) as w:
        yield w


@pytest.fixture
def world(limits_mesh: World) -> World:
    return limits_mesh.scene()


async def lilith_answers(world: World, text: str, attachments: list[Json] | None = None) -> Posted:
    async with running_bot(world):
        await world.discord.say(
            world.general, world.alice, f"@Lilith {text}", attachments=attachments or []
        )
        (answer,) = await world.discord.wait_until(
            lambda: world.discord.webhook_messages(world.general)
        )
    assert isinstance(answer, Posted)
    assert answer.author_name == "Lilith"
    return answer


async def test_a_rate_limited_provider_tells_the_user_when_to_try_again(world: World) -> None:
    await world.set_key(world.alice)
    before = len(world.provider.chat_requests())
    world.provider.fail_next(429, retry_after=30)  # longer than an answer may take
    answer = await lilith_answers(world, "are you there?")
    assert "*Lilith's candle gutters.*" in answer.content
    assert "Rate limited: try again in 30 seconds." in answer.content
    assert len(world.provider.chat_requests()) - before == 1


async def test_a_rate_limited_transcription_tells_the_user_when_to_try_again(world: World) -> None:
    """The helper model's 429 reaches the user as the answer's would: once, not after the
    openai SDK's hidden retries (up to a minute each) past the reply's deadline."""
    await world.set_key(world.alice)
    transcriptions = len(world.provider.transcription_requests())
    chats = len(world.provider.chat_requests())
    world.provider.fail_next(429, times=3, retry_after=30, path="/v1/audio/transcriptions")
    voice = world.discord.upload(world.general, "hello.mp3", encode_tone(1.0), "audio/mpeg")
    answer = await lilith_answers(world, "listen to this", [voice])
    assert "*Lilith's candle gutters.*" in answer.content
    assert "Rate limited: try again in 30 seconds." in answer.content
    assert len(world.provider.transcription_requests()) - transcriptions == 1
    assert len(world.provider.chat_requests()) == chats  # no clean-up, no answer asked for


async def test_thinking_that_used_up_max_tokens_tells_the_user_what_to_change(
    world: World,
) -> None:
    await world.set_key(world.alice)
    before = len(world.provider.chat_requests())

    def thinks_to_the_limit(body: dict[str, Any]) -> ScriptedReply:
        return ScriptedReply("", reasoning="Let me weigh every word", finish_reason="length")

    world.provider.reply = thinks_to_the_limit
    answer = await lilith_answers(world, "think hard about this")
    assert "*Lilith's candle gutters.*" in answer.content
    assert "raise max_tokens or lower thinking_level" in answer.content
    assert len(world.provider.chat_requests()) - before == 1
