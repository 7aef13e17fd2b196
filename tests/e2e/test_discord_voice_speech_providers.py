"""Only a provider inference says speaks is a voice's (ListProvidersResponse.speech_providers),
through the fake Discord, the real bot and the whole mesh, set up as the Kubernetes manifests
ship it (`TZUROT_LOOPBACK_PROVIDERS=false`).

The operator's `TZUROT_PROVIDERS` adds a chat back end (`deepseek`, a base URL) and a keyless
speech server it declares (`my-tts`: `"speech": true, "keyless": true`). Review: the chat back
end was taken as a voice (ListProviders gave names only) and failed at every answer; and a
keyless speech server under a name of its own asked each listener for a key. Now
`/personality voice set` refuses `deepseek` in words naming the option and the providers that
can speak, stores nothing, and takes `my-tts`, which then speaks an answer for a listener who
holds no key for it."""

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

REFUSED = (
    "provider 'deepseek' is a chat provider, not a speech provider; the providers that can "
    "speak here: elevenlabs, my-tts, openai (the operator declares a speech server with "
    '"speech": true in TZUROT_PROVIDERS)'
)
PLACEHOLDER_KEY = "ollama"
"""What inference sends a keyless server (the OpenAI client insists on a key)."""


@pytest.fixture(scope="module")
async def servers() -> AsyncIterator[tuple[FakeProvider, FakeProvider]]:
    """A chat back end and a keyless speech server, the operator's."""
    async with (
        FakeProvider(valid_keys={USER_KEY}, any_model=True) as chat,
        FakeProvider(require_key=False, any_model=True) as speech,
    ):
        yield chat, speech


@pytest.fixture(scope="module")
async def operator_mesh(
    servers: tuple[FakeProvider, FakeProvider],
    postgres_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[World]:
    chat, speech = servers
    database = create_database(postgres_url, f"test_{uuid.uuid4().hex[:20]}")
    declared = {"base_url": speech.base_url, "speech": True, "keyless": True}
    async with discord_world(
        database,
        tmp_path_factory.mktemp("speech-providers"),
        providers={"deepseek": chat.base_url, "my-tts": declared},  # TZUROT_PROVIDERS
        inference={"loopback_providers": False},  # as in a pod (the manifests' configmap)
    ) as world:
        yield world


async def test_a_chat_provider_is_refused_as_a_voice_and_a_declared_speech_server_speaks(
    operator_mesh: World, servers: tuple[FakeProvider, FakeProvider]
) -> None:
    chat, speech = servers
    world = operator_mesh.scene()
    alice = member_actor(world.alice)
    await world.set_key(world.alice)  # her OpenRouter key, for the answer; none for my-tts
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
        refused = await slash(
            world, world.alice, "personality", "voice", "set",
            personality="echo", provider="deepseek", voice_id="af_bella", frequency="always",
        )  # fmt: skip
        unset = await slash(world, world.alice, "personality", "voice", "show", personality="echo")
        chosen = await slash(
            world, world.alice, "personality", "voice", "set",
            personality="echo", provider="my-tts", voice_id="af_bella", frequency="always",
        )  # fmt: skip
        said = await world.discord.say(world.general, world.alice, "@Echo say something")
        job = await world.delivered(f"{said.id}:echo")
        await world.discord.wait_until(lambda: voice_messages(world, world.general))
    assert refused == REFUSED
    assert unset == "Echo has no voice."  # the refusal stored nothing
    assert chosen.startswith("**Echo** (`echo`) speaks with my-tts voice `af_bella`"), chosen
    stored = await world.cli.GetPersonalityVoice(gw.GetPersonalityVoiceRequest(personality="echo"))
    assert (stored.voice.provider, stored.voice.voice_id) == ("my-tts", "af_bella")
    assert stored.voice.frequency == common.VOICE_FREQUENCY_ALWAYS
    (request,) = speech.speech_requests()  # spoken with no key of hers: it is keyless
    assert request.body["input"] == job.content
    assert request.api_key == PLACEHOLDER_KEY
    listed = await world.cli.ListWalletKeys(gw.ListWalletKeysRequest(actor=alice))
    assert "my-tts" not in {key.provider for key in listed.keys}
    assert chat.speech_requests() == []
