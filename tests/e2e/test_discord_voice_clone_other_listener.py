"""A cloned voice belongs to the ElevenLabs account that cloned it, through Discord.

Alice owns a public personality and clones its voice with her own ElevenLabs key. Bob, with
an ElevenLabs key of his own, enables voice: ElevenLabs answers his key `voice_not_found` for
her clone (nothing billed), so his answers are spoken in ElevenLabs' default voice, paid by
his key, and he is told once, under the answer, why it does not sound like the personality;
he is never asked to clone it. Alice's own answers still come in her cloned voice.
"""

from __future__ import annotations

import uuid

import pytest

from tests.e2e.voice_posts import bot_texts, spoken_count, voice_messages
from tzurot.audio import encode_tone
from tzurot.bot.bot import TzurotBot
from tzurot.inference.speech import DEFAULT_ELEVENLABS_VOICE
from tzurot.testing.discord_e2e import (
    VoiceWorld,
    member_actor,
    running_bot,
    slash_text,
)
from tzurot.testing.fake_discord import Json
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

pytestmark = pytest.mark.e2e


async def drain(bot: TzurotBot) -> None:
    assert bot.flow is not None
    await bot.flow.voice.drain()


async def own_elevenlabs_key(vw: VoiceWorld, user: Json) -> str:
    """An ElevenLabs key of the user's own account, stored in their wallet."""
    key = f"sk_elevenlabs_{uuid.uuid4().hex}"
    vw.eleven.add_key(key)
    await vw.world.set_key(user)
    await vw.world.cli.SetWalletKey(
        gw.SetWalletKeyRequest(actor=member_actor(user), provider="elevenlabs", api_key=key)
    )
    return key


async def test_another_listener_hears_a_stock_voice_and_is_told_once_the_owner_her_clone(
    voice_mesh: VoiceWorld,
) -> None:
    vw = voice_mesh
    world = vw.world = vw.world.scene()
    alice_key = await own_elevenlabs_key(vw, world.alice)
    bob_key = await own_elevenlabs_key(vw, world.bob)
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
        (clone,) = vw.eleven.cloned_voices(alice_key)
        assert vw.eleven.cloned_voices(bob_key) == []  # her clone is in her account only
        for user in (world.alice, world.bob):
            assert "on:" in await slash_text(world, user, "voice", "enable")

        # Bob: twice, a stock voice paid by his key, told why once.
        for n in (1, 2):
            said = await world.discord.say(world.general, world.bob, f"@Ivy hello {n}")
            await world.delivered(f"{said.id}:ivy")
            await world.discord.wait_until(spoken_count(world, n))
            await drain(bot)
        bobs = [(c.path, c.key_valid) for c in vw.eleven.calls_with(bob_key) if "speech" in c.path]
        assert (
            bobs
            == [
                (f"/v1/text-to-speech/{clone.voice_id}/stream", True),  # voice_not_found
                (f"/v1/text-to-speech/{DEFAULT_ELEVENLABS_VOICE}/stream", True),
            ]
            * 2
        )
        (told,) = bot_texts(world, world.general)
        assert "stock ElevenLabs voice" in told.content
        assert "Ivy's voice is a clone in the ElevenLabs account of whoever cloned it" in (
            told.content
        )
        assert "clone it" not in told.content  # nothing he could do: never asked to clone
        assert "/personality" not in told.content
        assert bob_key not in told.content
        assert not any(world.discord.pings[told.id])

        # Alice: her own clone, no notice.
        said = await world.discord.say(world.general, world.alice, "@Ivy hi")
        await world.delivered(f"{said.id}:ivy")
        await world.discord.wait_until(lambda: len(voice_messages(world, world.general)) == 3)
        await drain(bot)
    alices = [c.path for c in vw.eleven.calls_with(alice_key) if "speech" in c.path]
    assert alices == [f"/v1/text-to-speech/{clone.voice_id}/stream"]
    assert len(bot_texts(world, world.general)) == 1
    assert not world.discord.refusals
