"""A speech too long for a voice message is refused before ElevenLabs is asked, through Discord.

Lilith speaks in an ElevenLabs voice at its slowest speed (0.7) and answers 10,000 Chinese
characters: some fifty minutes spoken, past the forty a voice message can hold. Before, the
speech was made (and billed by ElevenLabs) and only then refused for its length. Now inference
estimates its length from the text and the speed and refuses it first: the fake ElevenLabs
receives no request, no speech is recorded as paid, and the user is told under the answer (and
by Speak) why there is no voice message and what to do.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.e2e.voice_posts import bot_texts
from tzurot.db.engine import create_engine
from tzurot.testing.discord_e2e import (
    VoiceWorld,
    member_actor,
    running_bot,
    slash_text,
    voice_world,
)
from tzurot.testing.fake_elevenlabs import DEFAULT_ELEVENLABS_KEY
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

pytestmark = pytest.mark.e2e

RACHEL = "21m00Tcm4TlvDq8ikWAM"
HAN = "这是一个很长很长的故事" * 1000


@pytest.fixture(scope="module")
async def voice_mesh(
    postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[VoiceWorld]:
    async with voice_world(
        postgres_url,
        Path(tmp_path_factory.mktemp("voice-too-long")),
        gateway={"voice_max_characters": 10_000},
    ) as world:
        yield world


async def speech_rows(database: str) -> int:
    engine = create_engine(database)
    try:
        async with engine.connect() as conn:
            return int(
                await conn.scalar(
                    sa.text("SELECT count(*) FROM core.usage_log WHERE request_type = 'speech'")
                )
                or 0
            )
    finally:
        await engine.dispose()


async def test_an_overlong_speech_is_refused_before_elevenlabs_is_asked_and_she_is_told(
    voice_mesh: VoiceWorld,
) -> None:
    vw = voice_mesh
    world = vw.world = vw.world.scene()
    await world.set_key(world.alice)
    await world.cli.SetWalletKey(
        gw.SetWalletKeyRequest(
            actor=member_actor(world.alice), provider="elevenlabs", api_key=DEFAULT_ELEVENLABS_KEY
        )
    )
    await world.cli.SetPersonalityVoice(
        gw.SetPersonalityVoiceRequest(
            personality="lilith",
            voice=common.VoiceConfig(
                provider="elevenlabs", voice_id=RACHEL, speed=0.7,
                frequency=common.VOICE_FREQUENCY_ALWAYS,
            ),
        )
    )  # fmt: skip
    world.provider.reply = HAN
    async with running_bot(world) as bot:
        limited = await slash_text(world, world.alice, "voice", "limit", characters=10_000)
        assert "10000" in limited or "10,000" in limited
        said = await world.discord.say(world.general, world.alice, "@Lilith tell me a story")
        job = await world.delivered(f"{said.id}:lilith")
        (notice,) = await world.discord.wait_until(lambda: bot_texts(world, world.general))
        assert bot.flow is not None
        await bot.flow.voice.drain()
        answer = world.discord.webhook_messages(world.general)
        # On request, the same: Speak says why at once.
        asked = await world.discord.context_menu(world.general, world.alice, "Speak", answer[0])
        await world.discord.wait_until(lambda: any(asked.texts()))
    assert job.content == HAN[: len(job.content)]
    assert len(job.content) >= 9_000
    assert vw.eleven.tts_calls() == []  # ElevenLabs never asked
    assert await speech_rows(vw.database) == 0  # nothing paid
    assert notice.content.startswith(f"-# No voice message for <@{world.alice['id']}>: ")
    for told in (notice.content, "".join(asked.texts())):
        assert "the speech would last about" in told
        assert "longer than a voice message can be (40 minutes)" in told
        assert "nothing paid" in told
        assert "`/voice limit`" in told
    assert not world.discord.refusals
