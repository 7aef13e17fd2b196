"""A free ElevenLabs account cannot clone a voice, and the owner is told so, through Discord.

ElevenLabs keeps Instant Voice Cloning for paid plans: a free account's key is refused 402
`paid_plan_required`. The owner asking `/personality voice clone` with such a key is told that
a paid plan is needed and what to do, never the key; the key stays active (it works for the
rest: speech, the voice list), and no voice is made.
"""

from __future__ import annotations

import uuid

import pytest

from tzurot.audio import encode_tone
from tzurot.testing.discord_e2e import (
    VoiceWorld,
    member_actor,
    running_bot,
    slash_text,
)
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

pytestmark = pytest.mark.e2e


async def test_a_clone_with_a_free_accounts_key_tells_her_a_paid_plan_is_needed(
    voice_mesh: VoiceWorld,
) -> None:
    vw = voice_mesh
    world = vw.world = vw.world.scene()
    key = f"sk_elevenlabs_{uuid.uuid4().hex}"
    vw.eleven.add_key(key, plan="free")
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
    async with running_bot(world):
        added = await slash_text(
            world, world.alice, "personality", "voice-sample", "upload",
            personality="ivy", file=sample,
        )  # fmt: skip
        assert "Added" in added
        told = await slash_text(
            world, world.alice, "personality", "voice", "clone", personality="ivy"
        )
        listed = await slash_text(world, world.alice, "wallet", "list")
    assert "needs a paid plan" in told
    assert "Instant Voice Cloning" in told
    assert "/wallet set elevenlabs" in told
    assert key not in told
    (call,) = vw.eleven.clone_calls()
    assert call.key_valid
    assert vw.eleven.cloned_voices(key) == []
    (line,) = [entry for entry in listed.splitlines() if "**elevenlabs**" in entry]
    assert ": active" in line
    assert "inactive" not in line
    assert not world.discord.refusals
