"""A voice with a speech server the operator added (`TZUROT_PROVIDERS`, README "Voice"),
through the fake Discord, the real bot and the whole mesh: `/personality voice set` takes the
name (the gateway asks inference which providers there are), and the answers are spoken by
that server (its `/audio/speech`, with the user's key for it); a name inference does not
speak with is refused in words naming those it does, and nothing is stored. The bot suggests
the built-in speech providers as the name is typed, and lets any be typed."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from tzurot.cli.localdb import create_database
from tzurot.testing.discord_e2e import USER_KEY, World, discord_world, member_actor, running_bot
from tzurot.testing.discord_e2e import slash_text as slash
from tzurot.testing.fake_provider import FakeProvider
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

from .voice_posts import voice_messages

pytestmark = pytest.mark.e2e

TAKEN = "elevenlabs, kokoro, my-tts, openai, openedai-speech"
"""What inference lists that speaks: its built-in speech providers, ElevenLabs and the
operator's own."""


@pytest.fixture(scope="module")
async def speech_server() -> AsyncIterator[FakeProvider]:
    async with FakeProvider(valid_keys={USER_KEY}, any_model=True) as server:
        yield server


@pytest.fixture(scope="module")
async def operator_mesh(
    speech_server: FakeProvider, postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    database = create_database(postgres_url, f"test_{uuid.uuid4().hex[:20]}")
    async with discord_world(
        database,
        tmp_path_factory.mktemp("voice-provider"),
        providers={"my-tts": speech_server.base_url},  # the operator's TZUROT_PROVIDERS
    ) as world:
        yield world


async def test_an_operator_speech_server_is_set_from_discord_and_speaks(
    operator_mesh: World, speech_server: FakeProvider
) -> None:
    world = operator_mesh.scene()
    alice = member_actor(world.alice)
    await world.set_key(world.alice)  # her OpenRouter key: the answer
    await world.cli.SetWalletKey(  # her key for the speech server
        gw.SetWalletKeyRequest(actor=alice, provider="my-tts", api_key=USER_KEY)
    )
    await world.cli.CreatePersonality(
        gw.CreatePersonalityRequest(
            actor=alice,
            personality=common.Personality(
                slug="echo", display_name="Echo", system_prompt="You are Echo.", public=True
            ),
        )
    )
    async with running_bot(world):
        await world.discord.wait_until(lambda: world.guild["id"] in world.discord.synced_commands)
        offered = await world.discord.slash(
            world.general, world.alice, "personality",
            {"personality": "echo", "provider": "open"},
            subcommand=["voice", "set"], focused="provider",
        )  # fmt: skip
        await world.discord.wait_until(offered.choices)
        refused = await slash(
            world, world.alice, "personality", "voice", "set",
            personality="echo", provider="mistral", voice_id="af_bella",
        )  # fmt: skip
        unset = await slash(world, world.alice, "personality", "voice", "show", personality="echo")
        chosen = await slash(
            world, world.alice, "personality", "voice", "set",
            personality="echo", provider="my-tts", voice_id="af_bella", speed=1.5,
            frequency="always",
        )  # fmt: skip
        assert chosen.startswith("**Echo** (`echo`) speaks with my-tts voice `af_bella`"), chosen
        said = await world.discord.say(world.general, world.alice, "@Echo say something")
        job = await world.delivered(f"{said.id}:echo")
        await world.discord.wait_until(lambda: voice_messages(world, world.general))
    assert [c["value"] for c in offered.choices()] == ["openai", "openedai-speech"]
    assert refused == f"a voice's provider is one of {TAKEN}"
    assert unset == "Echo has no voice."  # nothing stored by the refusal
    (request,) = speech_server.speech_requests()
    assert (request.body["voice"], request.body["speed"]) == ("af_bella", 1.5)
    assert request.body["input"] == job.content
    assert world.provider.speech_requests() == []  # not OpenAI's, nor any other's
