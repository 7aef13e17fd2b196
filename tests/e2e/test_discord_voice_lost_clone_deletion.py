"""Deleting a personality deletes the clones made for it whose answer was lost, through Discord.

A clone ElevenLabs made but whose voice id never reached gateway (its answer lost, or gateway
gone before storing it) is not in voice_clones. Before, only a later clone of the personality
swept it (by the mark in its description), so deleting the personality left it in the user's
ElevenLabs account for good, holding a slot of her plan. Now the deletion asks inference for
the clones marked for the personality in its owner's account (ListMarkedClones) and deletes
those nothing records, except a voice id another personality still stores (set by hand).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from tzurot.audio import encode_tone
from tzurot.testing.discord_e2e import (
    VoiceWorld,
    World,
    member_actor,
    running_bot,
    slash_text,
)
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw
from tzurot.v1 import inference_pb2 as inf
from tzurot.v1 import inference_pb2_grpc as inf_grpc

pytestmark = pytest.mark.e2e


async def personality_with_a_sample(world: World, slug: str) -> str:
    made = await world.cli.CreatePersonality(
        gw.CreatePersonalityRequest(
            actor=member_actor(world.alice),
            personality=common.Personality(
                slug=slug, display_name=slug.title(), system_prompt=f"You are {slug}."
            ),
        )
    )
    sample = world.discord.upload(world.general, "hello.mp3", encode_tone(1.0), "audio/mpeg")
    added = await slash_text(
        world, world.alice, "personality", "voice-sample", "upload",
        personality=slug, file=sample,
    )  # fmt: skip
    assert "Added" in added
    return made.personality.id


async def test_deleting_a_personality_deletes_its_clone_whose_answer_was_lost(
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
    async with running_bot(world):
        egret = await personality_with_a_sample(world, "egret")
        await personality_with_a_sample(world, "ibis")
        bot = await world.mesh.gateway_stub("bot")
        user_id = (await bot.GetUser(gw.GetUserRequest(actor=member_actor(world.alice)))).user.id
        inference = inf_grpc.InferenceServiceStub(
            await world.mesh.channel("gateway", target="inference")
        )

        async def clone_never_stored(*keep: str) -> str:
            """A clone for Egret that inference answered and gateway never stored."""

            async def parts() -> AsyncIterator[inf.CloneVoiceRequest]:
                header = inf.CloneVoiceHeader(
                    user_id=user_id, name="Egret", description="Tzurot personality egret",
                    personality_id=egret, keep_voice_ids=keep,
                )  # fmt: skip
                yield inf.CloneVoiceRequest(header=header)
                yield inf.CloneVoiceRequest(
                    sample=inf.CloneVoiceSample(filename="a.mp3", data=encode_tone(1.0))
                )

            return (await inference.CloneVoice(parts())).voice_id

        # One she found in her ElevenLabs account and set by hand as Ibis's voice: kept.
        reused = await clone_never_stored()
        await world.cli.SetPersonalityVoice(
            gw.SetPersonalityVoiceRequest(
                personality="ibis",
                voice=common.VoiceConfig(provider="elevenlabs", voice_id=reused),
            )
        )
        lost = await clone_never_stored(reused)  # its sweep keeps `reused`: Ibis stores it
        egret_other = await personality_with_a_sample(world, "egret-other")  # untouched
        other = await inference.CloneVoice(
            iter(
                [
                    inf.CloneVoiceRequest(
                        header=inf.CloneVoiceHeader(
                            user_id=user_id, name="Other", personality_id=egret_other
                        )
                    ),
                    inf.CloneVoiceRequest(
                        sample=inf.CloneVoiceSample(filename="a.mp3", data=encode_tone(1.0))
                    ),
                ]
            )
        )
        assert {reused, lost, other.voice_id} <= {v.voice_id for v in vw.eleven.cloned_voices(key)}
        deletes = len(vw.eleven.delete_calls())
        deleted = await slash_text(
            world, world.alice, "personality", "delete", personality="egret", confirm="DELETE"
        )
    assert "Deleted **Egret** (`egret`) for good" in deleted
    assert [c.path for c in vw.eleven.delete_calls()[deletes:]] == [f"/v1/voices/{lost}"]
    assert {v.voice_id for v in vw.eleven.cloned_voices(key)} == {reused, other.voice_id}
    assert not world.discord.refusals
