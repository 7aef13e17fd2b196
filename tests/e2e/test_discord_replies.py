"""The bot's replies against Discord's rule for a reply to a message that is gone: Create
Message refuses a `message_reference` to a message that does not exist unless
`fail_if_not_exists` is false (discord-api-docs resources/message, "Message Reference
Structure"; the fake refuses it so: fake_discord/replies.py). The voice message replies to the
answer it speaks; that answer deleted while its speech was made (and paid for), the voice
still arrives, as a plain message."""

from __future__ import annotations

import asyncio

import pytest

from tzurot.testing.discord_e2e import VoiceWorld, member_actor, running_bot, slash_text
from tzurot.testing.fake_discord import Json
from tzurot.testing.fake_discord.records import Posted
from tzurot.testing.fake_discord.voice_messages import IS_VOICE_MESSAGE
from tzurot.testing.fake_elevenlabs import DEFAULT_ELEVENLABS_KEY
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

pytestmark = pytest.mark.e2e

RACHEL = "21m00Tcm4TlvDq8ikWAM"


def voice_messages(vw: VoiceWorld, channel: Json) -> list[Posted]:
    return [
        m
        for m in vw.world.discord.messages.get(int(channel["id"]), [])
        if m.flags & IS_VOICE_MESSAGE and not m.deleted
    ]


async def test_a_voice_whose_answer_was_deleted_meanwhile_still_arrives(
    voice_scene: VoiceWorld,
) -> None:
    world, eleven = voice_scene.world, voice_scene.eleven
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
                provider="elevenlabs",
                voice_id=RACHEL,
                frequency=common.VOICE_FREQUENCY_ON_REQUEST,
            ),
        )
    )
    before = len(eleven.tts_calls())
    eleven.audio_gate = gate = asyncio.Event()  # the speech is billed, its audio held
    try:
        async with running_bot(world) as bot:
            assert "on:" in await slash_text(world, world.alice, "voice", "enable")
            said = await world.discord.say(world.general, world.alice, "@Lilith say it")
            await world.delivered(f"{said.id}:lilith")
            (text,) = world.discord.webhook_messages(world.general)
            await world.discord.wait_until(lambda: len(eleven.tts_calls()) > before)
            await world.discord.delete_message(text)  # a moderator removes the answer
            gate.set()
            (voice,) = await world.discord.wait_until(
                lambda: voice_messages(voice_scene, world.general)
            )
            assert bot.flow is not None
            await bot.flow.voice.drain()
    finally:
        eleven.audio_gate = None
        gate.set()
    assert voice.data.get("message_reference") is None  # sent as a normal message
    assert voice.data["type"] == 0
    assert not world.discord.refusals
