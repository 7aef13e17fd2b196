"""`/personality voice show|set` and `/personality voice-sample remove` driven from the fake
Discord, their effect asserted where it lands: the voice set is the one the fake ElevenLabs
is asked to speak with, and a removed sample is not sent in the next clone."""

from __future__ import annotations

import pytest

from tzurot.audio import encode_tone
from tzurot.testing.discord_e2e import VoiceWorld, World, member_actor, running_bot, slash_text
from tzurot.testing.fake_discord import Json
from tzurot.testing.fake_elevenlabs import DEFAULT_ELEVENLABS_KEY
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

pytestmark = pytest.mark.e2e

RACHEL = "21m00Tcm4TlvDq8ikWAM"


async def give_keys(world: World, user: Json) -> None:
    await world.set_key(user)
    await world.cli.SetWalletKey(
        gw.SetWalletKeyRequest(
            actor=member_actor(user), provider="elevenlabs", api_key=DEFAULT_ELEVENLABS_KEY
        )
    )


async def owned_by_alice(world: World, slug: str) -> None:
    await world.cli.CreatePersonality(
        gw.CreatePersonalityRequest(
            actor=member_actor(world.alice),
            personality=common.Personality(
                slug=slug, display_name=slug.title(), system_prompt=f"You are {slug}.", public=True
            ),
        )
    )


async def test_voice_set_from_discord_is_the_voice_elevenlabs_speaks_with(
    voice_scene: VoiceWorld,
) -> None:
    world, eleven = voice_scene.world, voice_scene.eleven
    await give_keys(world, world.alice)
    await owned_by_alice(world, "echo")
    before = len(eleven.tts_calls())
    async with running_bot(world):
        unset = await slash_text(
            world, world.alice, "personality", "voice", "show", personality="echo"
        )
        bobs = await slash_text(
            world, world.bob, "personality", "voice", "set",
            personality="echo", provider="elevenlabs", voice_id=RACHEL,
        )  # fmt: skip
        chosen = await slash_text(
            world, world.alice, "personality", "voice", "set",
            personality="echo", provider="elevenlabs", voice_id=RACHEL, stability=0.25,
            speed=1.1, frequency="always",
        )  # fmt: skip
        shown = await slash_text(
            world, world.bob, "personality", "voice", "show", personality="echo"
        )
        said = await world.discord.say(world.general, world.alice, "@Echo say something")
        job = await world.delivered(f"{said.id}:echo")
        await world.discord.wait_until(lambda: len(eleven.tts_calls()) > before)
    assert unset == "Echo has no voice."  # its display name, not what was typed
    assert "only the owner" in bobs
    expected = (
        f"Echo speaks with elevenlabs voice `{RACHEL}`; stability 0.25, speed 1.1; speaks: always."
    )
    assert chosen == f"**Echo** (`echo`) {expected.removeprefix('Echo ')}"  # the one set
    assert shown == expected  # as anyone sees it
    (call,) = eleven.tts_calls()[before:]
    assert f"/{RACHEL}/" in call.path
    assert call.body["text"] == job.content
    assert call.body["voice_settings"] == {
        "stability": pytest.approx(0.25),
        "speed": pytest.approx(1.1),
    }


async def test_a_removed_voice_sample_is_not_sent_in_the_next_clone(
    voice_scene: VoiceWorld,
) -> None:
    world, eleven = voice_scene.world, voice_scene.eleven
    await give_keys(world, world.alice)
    await owned_by_alice(world, "wisp")
    samples = [
        world.discord.upload(world.general, "keep.mp3", encode_tone(2.0), "audio/mpeg"),
        world.discord.upload(world.general, "drop.wav", encode_tone(1.5, fmt="wav"), "audio/wav"),
    ]
    async with running_bot(world):
        for sample in samples:
            added = await slash_text(
                world, world.alice, "personality", "voice-sample", "upload",
                personality="wisp", file=sample,
            )  # fmt: skip
            assert "Added" in added
        offered = await world.discord.slash(
            world.general,
            world.alice,
            "personality",
            {"personality": "wisp", "sample": "drop"},
            subcommand=["voice-sample", "remove"],
            focused="sample",
        )
        await world.discord.wait_until(offered.choices)
        ((name, sample_id),) = [(c["name"], c["value"]) for c in offered.choices()]
        bobs = await slash_text(
            world, world.bob, "personality", "voice-sample", "remove",
            personality="wisp", sample=sample_id,
        )  # fmt: skip
        removed = await slash_text(
            world, world.alice, "personality", "voice-sample", "remove",
            personality="wisp", sample=sample_id,
        )  # fmt: skip
        listed = await slash_text(
            world, world.alice, "personality", "voice-sample", "list", personality="wisp"
        )
        cloned = await slash_text(
            world, world.alice, "personality", "voice", "clone", personality="wisp"
        )
    assert name == "drop.wav (2 s)"
    assert "only the owner" in bobs
    assert removed == "Removed the sample from **Wisp** (`wisp`)'s voice samples."
    assert "(1/25" in listed
    assert "drop.wav" not in listed
    assert "Cloned from 1 sample" in cloned
    (call,) = [c for c in eleven.clone_calls() if c.body.get("name") == "Wisp"]
    assert [filename for filename, _ in call.body["files"]] == ["keep.mp3"]
