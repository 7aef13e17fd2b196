"""The owner whose own clone was deleted at ElevenLabs is told so, through Discord.

Alice clones Ivy's voice with her own ElevenLabs key, then deletes that voice in ElevenLabs
(its site, not Tzurot). ElevenLabs answers her key `voice_not_found` for it, as it answers
another account's key, so her answers are spoken in ElevenLabs' default voice. Before, she got
the notice meant for other listeners (the clone belongs to whoever cloned it: nothing to do);
now she is told her own clone is gone from her account and how to clone it again (the samples
are kept), once; Speak says the same.
"""

from __future__ import annotations

import uuid

import pytest

from tests.e2e.voice_posts import bot_texts, spoken_count
from tzurot.audio import encode_tone
from tzurot.inference.speech import DEFAULT_ELEVENLABS_VOICE
from tzurot.testing.discord_e2e import (
    VoiceWorld,
    member_actor,
    running_bot,
    slash_text,
)
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

pytestmark = pytest.mark.e2e


async def test_the_owner_whose_clone_was_deleted_at_elevenlabs_is_told_to_clone_it_again(
    voice_mesh: VoiceWorld,
) -> None:
    vw = voice_mesh
    world = vw.world = vw.world.scene()
    key = f"sk_elevenlabs_{uuid.uuid4().hex}"
    vw.eleven.add_key(key)
    await world.set_key(world.alice)
    await world.cli.SetWalletKey(
        gw.SetWalletKeyRequest(actor=member_actor(world.alice), provider="elevenlabs", api_key=key)
    )
    await world.cli.CreatePersonality(
        gw.CreatePersonalityRequest(
            actor=member_actor(world.alice),
            personality=common.Personality(
                slug="ivy", display_name="Ivy", system_prompt="You are Ivy.", public=True
            ),
        )
    )
    sample = world.discord.upload(world.general, "hello.mp3", encode_tone(1.5), "audio/mpeg")
    async with running_bot(world) as bot:
        added = await slash_text(
            world, world.alice, "personality", "voice-sample", "upload",
            personality="ivy", file=sample,
        )  # fmt: skip
        assert "Added" in added
        cloned = await slash_text(
            world, world.alice, "personality", "voice", "clone", personality="ivy"
        )
        assert "Cloned from 1 sample" in cloned
        (clone,) = vw.eleven.cloned_voices(key)
        del vw.eleven.voices[clone.voice_id]  # she deleted it in ElevenLabs
        assert "on:" in await slash_text(world, world.alice, "voice", "enable")

        for n in (1, 2):  # twice: told once
            said = await world.discord.say(world.general, world.alice, f"@Ivy hello {n}")
            await world.delivered(f"{said.id}:ivy")
            await world.discord.wait_until(spoken_count(world, n))
            assert bot.flow is not None
            await bot.flow.voice.drain()
        answer = world.discord.webhook_messages(world.general)[-1]
        asked = await world.discord.context_menu(world.general, world.alice, "Speak", answer)
        await world.discord.wait_until(lambda: any("Spoken" in t for t in asked.texts()))
    spoken = [c.path for c in vw.eleven.calls_with(key) if "speech" in c.path]
    assert (
        spoken
        == [
            f"/v1/text-to-speech/{clone.voice_id}/stream",  # voice_not_found
            f"/v1/text-to-speech/{DEFAULT_ELEVENLABS_VOICE}/stream",
        ]
        * 3
    )
    (told,) = bot_texts(world, world.general)
    assert told.content == (
        f"-# Spoken for <@{world.alice['id']}> in a stock ElevenLabs voice: Ivy's voice is a "
        "clone you made, and it is no longer in your ElevenLabs account (deleted there). Clone "
        "it again with `/personality voice clone personality:ivy`: its samples are kept."
    )
    assert "whoever cloned it" not in told.content  # not the other listeners' notice
    assert not any(world.discord.pings[told.id])
    reply = "".join(asked.texts())
    assert "a clone you made, and it is no longer in your ElevenLabs account" in reply
    assert "/personality voice clone" in reply
    assert not world.discord.refusals
