"""A user without any key sends a photo and a voice note to a personality on the operator's
keyless chat server, through the fake Discord, the real bot and the whole mesh.

Hearth's model sees no images: a helper model must describe the photo (a free vision model
on OpenRouter, where the operator has a system key), another transcribe the voice note (on
OpenAI). The gateway sends her job as not free (review 315 F1), so neither may run on the
operator's key, and she holds none of her own. Before, the whole turn was refused NO_API_KEY
for the helper's provider, though the answer itself costs nobody a key. Now she is answered:
each attachment is left unread, no helper is asked, and the message Hearth reads says which
provider's key would read it and how to add it (`/wallet set <provider>`). Nothing is in her
`/usage` for a helper."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from tzurot.testing.discord_e2e import World, member_actor, running_bot
from tzurot.testing.fake_provider import FakeProvider
from tzurot.v1 import gateway_pb2 as gw
from tzurot.v1 import keyvault_pb2 as kv
from tzurot.v1 import keyvault_pb2_grpc as kv_grpc

from .keyless_mesh import LOCAL, import_hearth, keyless_world, operator_inference
from .keyless_mesh import local_server as local_server  # noqa: PLC0414  # the fixture

pytestmark = pytest.mark.e2e

SYSTEM_KEY = "sk-or-operatorSYSTEMkey-405"
"""The operator's OpenRouter key (TZUROT_SYSTEM_KEYS), for free models on free configs."""
PNG = b"\x89PNG\r\n\x1a\n" + bytes(200)
OGG = b"OggS" + bytes(300)
IMAGE_NOTE = (
    "[Image hearth.png: not read; describing it needed an API key for openrouter "
    "(/wallet set openrouter)]"
)
VOICE_NOTE = (
    "[Voice message voice-message.ogg: not read; transcribing it needed an API key for openai "
    "(/wallet set openai)]"
)
STALE_KEY = "sk-stale-myllm-key-7Qx2Vb9Lm4"
"""A key stored for the keyless server before keys for it were refused (or before the
operator declared it keyless)."""


@pytest.fixture(scope="module")
async def operator_mesh(
    local_server: FakeProvider, postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    async with keyless_world(
        postgres_url,
        tmp_path_factory.mktemp("keyless-attachments"),
        local_server,
        inference=operator_inference(SYSTEM_KEY, transcription_provider="openai"),
        gateway={"guest_mode": False},
    ) as world:
        yield world


async def usage_lines(world: World) -> list[str]:
    """Alice's /usage of today, a line per request type and model."""
    usage = await world.cli.GetUsage(
        gw.GetUsageRequest(actor=member_actor(world.alice), period=gw.USAGE_PERIOD_DAY)
    )
    return [f"{t.request_type} {t.provider}/{t.model}" for t in usage.totals]


async def test_her_photo_and_voice_note_are_left_unread_and_she_is_answered(
    operator_mesh: World, local_server: FakeProvider
) -> None:
    world = operator_mesh.scene()
    world.provider.valid_keys.add(SYSTEM_KEY)  # the operator's key works there
    await import_hearth(world)
    answers_before = len(local_server.chat_requests())
    helpers_before = len(world.provider.requests)
    image = world.discord.upload(world.general, "hearth.png", PNG, "image/png")
    voice = world.discord.upload(world.general, "voice-message.ogg", OGG, "audio/ogg")
    async with running_bot(world):
        said = await world.discord.say(
            world.general, world.alice, "@Hearth what is this?", attachments=[image, voice]
        )
        job = await world.delivered(f"{said.id}:hearth", within=15.0)

    (posted,) = world.discord.webhook_messages(world.general)  # the answer, not a refusal
    assert posted.author_name.startswith("Hearth")
    assert job.content
    assert job.content in posted.content
    (answered,) = local_server.chat_requests()[answers_before:]
    prompt = json.dumps(answered.body["messages"])
    assert IMAGE_NOTE in prompt
    assert VOICE_NOTE in prompt
    assert "image_url" not in prompt  # the photo itself is not in it
    assert "base64" not in prompt
    assert world.provider.requests[helpers_before:] == []  # no helper asked, on any key
    assert await usage_lines(world) == ["chat my-llm/local/hearth"]  # nothing for a helper


async def test_a_key_she_holds_for_the_keyless_server_pays_no_helper_on_the_operators_key(
    operator_mesh: World, local_server: FakeProvider
) -> None:
    """Review 327 M1: holding any key stored for the keyless server's provider, her job went
    to inference as free, and the operator's OpenRouter key described her photo. The gateway
    now refuses such a key (/wallet set), so it is planted in keyvault as the gateway stored
    it before. Her job goes as not free: her photo is left unread, with its note."""
    world = operator_mesh.scene()
    world.provider.valid_keys.add(SYSTEM_KEY)  # the operator's key works there
    await import_hearth(world)
    alice = (await world.cli.GetUser(gw.GetUserRequest(actor=member_actor(world.alice)))).user
    vault = kv_grpc.KeyVaultServiceStub(await world.mesh.channel("gateway", "keyvault"))
    await vault.PutKey(kv.PutKeyRequest(user_id=alice.id, provider=LOCAL, api_key=STALE_KEY))
    held = await world.cli.ListWalletKeys(gw.ListWalletKeysRequest(actor=member_actor(world.alice)))
    assert [k.provider for k in held.keys] == ["my-llm"]
    answers_before = len(local_server.chat_requests())
    helpers_before = len(world.provider.requests)
    image = world.discord.upload(world.general, "hearth.png", PNG, "image/png")
    async with running_bot(world):
        said = await world.discord.say(
            world.general, world.alice, "@Hearth and this?", attachments=[image]
        )
        await world.delivered(f"{said.id}:hearth", within=15.0)

    (posted,) = world.discord.webhook_messages(world.general)  # the answer, not a refusal
    assert posted.author_name.startswith("Hearth")
    helpers = world.provider.requests[helpers_before:]
    assert all(r.api_key != SYSTEM_KEY for r in helpers)  # never the operator's key
    assert helpers == []  # no helper asked, on any key
    (answered,) = local_server.chat_requests()[answers_before:]
    assert IMAGE_NOTE in json.dumps(answered.body["messages"])
    assert all(r.api_key != STALE_KEY for r in local_server.requests)
