"""OpenAI's own limits through the fake Discord and the whole mesh, the fake answering as
OpenAI: a user whose own OpenAI key has no credit left (429 `insufficient_quota`) is told so
and asked to add credit, not to wait out a rate limit, and the provider is asked once; a voice
message over 1 MiB with an unusual file name is transcribed (the fake reads up to OpenAI's
25 MiB, and takes the format from the name's extension as OpenAI does)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from tzurot.audio import encode_tone
from tzurot.cli.localdb import create_database
from tzurot.testing.discord_e2e import World, discord_world, member_actor, running_bot
from tzurot.testing.fake_discord import Json, Posted
from tzurot.v1 import gateway_pb2 as gw

pytestmark = pytest.mark.e2e

OPENAI_KEY = "sk-proj-alice-openai-0123456789"
ORLA_SEED = b"""
name: Orla
system_prompt: You are Orla, a test personality on OpenAI.
llm: {provider: openai, model: gpt-4o-mini}
error_message: "*Orla sighs.*"
public: true
"""


@pytest.fixture(scope="module")
async def openai_mesh(
    postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    """Transcription on `openai` (the default), reading the fake Discord's CDN."""
    database = create_database(postgres_url, f"test_{uuid.uuid4().hex[:20]}")
    async with discord_world(
        database,
        tmp_path_factory.mktemp("openai"),
        inference={"attachment_hosts": ["127.0.0.1"]},
    ) as w:
        await w.cli.ImportPersonality(
            gw.ImportPersonalityRequest(format=gw.IMPORT_FORMAT_SEED_YAML, document=ORLA_SEED)
        )
        w.provider.valid_keys.add(OPENAI_KEY)
        yield w


@pytest.fixture
def world(openai_mesh: World) -> Iterator[World]:
    scene = openai_mesh.scene()
    scene.provider.quota_shape = "openai"  # the fake answers as OpenAI
    yield scene
    scene.provider.quota_shape = "openrouter"


async def set_openai_key(world: World, who: Json) -> None:
    await world.cli.SetWalletKey(
        gw.SetWalletKeyRequest(actor=member_actor(who), provider="openai", api_key=OPENAI_KEY)
    )


async def answer_to(world: World, text: str, name: str, attachments: list[Json]) -> Posted:
    async with running_bot(world):
        await world.discord.say(world.general, world.alice, text, attachments=attachments)
        (answer,) = await world.discord.wait_until(
            lambda: world.discord.webhook_messages(world.general), within=60
        )
    assert isinstance(answer, Posted)
    assert answer.author_name == name
    return answer


async def test_an_openai_key_with_no_quota_is_told_to_add_credit_and_asked_once(
    world: World,
) -> None:
    await set_openai_key(world, world.alice)  # the model list answers: the key is stored
    world.provider.spent_keys.add(OPENAI_KEY)
    before = len(world.provider.chat_requests())
    answer = await answer_to(world, "@Orla are you there?", "Orla", [])
    assert "*Orla sighs.*" in answer.content
    assert "Your openai quota or credit is used up." in answer.content
    assert "Rate limited" not in answer.content
    asked = world.provider.chat_requests()[before:]
    assert [r.api_key for r in asked] == [OPENAI_KEY]  # no retry sent


async def test_a_voice_message_over_a_mebibyte_with_an_odd_name_is_transcribed(
    world: World,
) -> None:
    await world.set_key(world.alice)
    await set_openai_key(world, world.alice)
    audio = encode_tone(130.0, fmt="ogg", rate=48_000)  # ~2 minutes of Opus
    assert len(audio) > 1024 * 1024
    voice = world.discord.upload(world.general, "memo from the car.opus", audio, "audio/ogg")
    before = len(world.provider.transcription_requests())
    await answer_to(world, "@Lilith listen to this", "Lilith", [voice])
    (heard,) = world.provider.transcription_requests()[before:]
    assert heard.api_key == OPENAI_KEY
    assert heard.body["file_name"] == "voice.ogg"  # the extension of its type, not its name
    assert heard.body["file_size"] == len(audio)
    lilith = [r for r in world.provider.chat_requests() if r.body["model"] == "fake/lilith"]
    assert world.provider.transcript in str(lilith[-1].body["messages"][-1]["content"])
