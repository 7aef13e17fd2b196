"""A voice with a speech server the operator added and declared (`TZUROT_PROVIDERS`'
`"speech": true`, README "Voice"),
through the fake Discord, the real bot and the whole mesh, set up as the Kubernetes manifests
ship it (`TZUROT_LOOPBACK_PROVIDERS=false`): `/personality voice set` takes the name (the
gateway asks inference which providers speak), and the answers are spoken by that server
(its `/audio/speech`, with the user's key for it); a name inference does not list is refused in
words naming those that speak, and a local speech server the operator has not given an address
(`kokoro`) is refused as inference refuses it, FAILED_PRECONDITION PROVIDER_NOT_CONFIGURED
saying what the operator must set (README, review 277); nothing is stored by either. The bot
suggests the built-in speech providers as the name is typed, and lets any be typed."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import grpc
import pytest

from tzurot.cli.localdb import create_database
from tzurot.runtime.errors import PROVIDER_NOT_CONFIGURED, from_rpc_error
from tzurot.testing.discord_e2e import USER_KEY, World, discord_world, member_actor, running_bot
from tzurot.testing.discord_e2e import slash_text as slash
from tzurot.testing.fake_provider import FakeProvider
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

from .voice_posts import voice_messages

pytestmark = pytest.mark.e2e

REFUSED = "unknown provider; the providers that can speak here: elevenlabs, my-tts, openai"
"""What inference says speaks, in a pod: ElevenLabs, OpenAI (the local speech servers have no
address) and the operator's own speech server, declared so."""
NOT_SET_UP = (
    "provider 'kokoro' is not set up on this server: its default address is inference's own "
    "loopback, where nothing runs in this deployment; the operator must give it its server's "
    "address (TZUROT_PROVIDERS)"
)


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
        # The operator's TZUROT_PROVIDERS: a speech server, declared so (it takes a key).
        providers={"my-tts": {"base_url": speech_server.base_url, "speech": True}},
        inference={"loopback_providers": False},  # as in a pod (the manifests' configmap)
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
        not_set_up = await slash(
            world, world.alice, "personality", "voice", "set",
            personality="echo", provider="kokoro", voice_id="af_bella",
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
    assert refused == REFUSED
    assert not_set_up == NOT_SET_UP  # the operator's to set, not an unknown name (review 277)
    assert unset == "Echo has no voice."  # nothing stored by either refusal
    (request,) = speech_server.speech_requests()
    assert (request.body["voice"], request.body["speed"]) == ("af_bella", 1.5)
    assert request.body["input"] == job.content
    assert world.provider.speech_requests() == []  # not OpenAI's, nor any other's
    with pytest.raises(grpc.aio.AioRpcError) as caught:  # an API client is told the same
        await world.cli.SetPersonalityVoice(
            gw.SetPersonalityVoiceRequest(
                personality="echo",
                voice=common.VoiceConfig(provider="kokoro", voice_id="af_bella"),
            )
        )
    assert caught.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert from_rpc_error(caught.value).reason == PROVIDER_NOT_CONFIGURED
    kept = await world.cli.GetPersonalityVoice(gw.GetPersonalityVoiceRequest(personality="echo"))
    assert kept.voice.provider == "my-tts"
