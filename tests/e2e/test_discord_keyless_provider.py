"""A user without any key talks to a personality on the operator's keyless chat server, through
the fake Discord, the real bot and the whole mesh, with guest mode off.

The operator's `TZUROT_PROVIDERS` declares a local chat server (`my-llm`: `"keyless": true`)
and a personality's free config names it. Review: the gateway could not know the server was
keyless (inference's ListProviders said nothing of it), so such a user was a guest: refused
"no API key" without guest mode, and spending the guests' daily share with it. Now inference
lists it in `keyless_providers`, the gateway admits her as no guest, and the server is asked
with the placeholder inference sends every keyless server, never a key of hers.

Review 315 (F1): admitted so, her job still went to inference as a free config, and inference
paid the helper models reading her attachments with the operator's key (a free vision model
on OpenRouter's system key), counted in no guest's share, though guest mode is off. Now the
gateway sends such a job as not free: the helper wants her own key. Without one her image is
left unread, with a note naming the key it wants, and she is answered all the same (helper
405; test_discord_keyless_attachments.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tzurot.testing.discord_e2e import USER_KEY, World, member_actor, running_bot, settled
from tzurot.testing.fake_provider import FakeProvider
from tzurot.v1 import gateway_pb2 as gw

from .keyless_mesh import import_hearth, keyless_world, operator_inference
from .keyless_mesh import local_server as local_server  # noqa: PLC0414  # the fixture

pytestmark = pytest.mark.e2e

PLACEHOLDER_KEY = "ollama"
"""What inference sends a keyless server (the OpenAI client insists on a key)."""
SYSTEM_KEY = "sk-or-operatorSYSTEMkey"
"""The operator's OpenRouter key (TZUROT_SYSTEM_KEYS), for free models on free configs."""
PNG = b"\x89PNG\r\n\x1a\n" + bytes(200)


@pytest.fixture(scope="module")
async def operator_mesh(
    local_server: FakeProvider, postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    async with keyless_world(
        postgres_url,
        tmp_path_factory.mktemp("keyless-provider"),
        local_server,
        inference=operator_inference(SYSTEM_KEY),
        gateway={"guest_mode": False},  # no answer for anyone without a key but this one
    ) as world:
        yield world


async def test_a_user_without_a_key_is_answered_by_the_operators_keyless_server(
    operator_mesh: World, local_server: FakeProvider
) -> None:
    world = operator_mesh.scene()
    await import_hearth(world)
    async with running_bot(world):
        said = await world.discord.say(world.general, world.alice, "@Hearth are you warm?")
        job = await world.delivered(f"{said.id}:hearth", within=15.0)

    (posted,) = world.discord.webhook_messages(world.general)
    assert posted.author_name.startswith("Hearth")
    assert job.content
    assert job.content in posted.content
    (request,) = local_server.chat_requests()
    assert request.body["model"] == "local/hearth"
    assert request.api_key == PLACEHOLDER_KEY  # no key of hers: she holds none
    held = await world.cli.ListWalletKeys(gw.ListWalletKeysRequest(actor=member_actor(world.alice)))
    assert list(held.keys) == []
    assert all(r.api_key != USER_KEY for r in local_server.requests)
    assert world.provider.chat_requests() == []  # nothing went to the keyed providers


async def test_her_image_is_not_described_on_the_operators_key(
    operator_mesh: World, local_server: FakeProvider
) -> None:
    """Hearth's model sees no images: a helper must describe hers. Its free model on the
    operator's OpenRouter key would cost him a call no guest's share counts (guest mode is
    off): it is not made, and Hearth is told the key it wants (helper 405: she is answered,
    not refused NO_API_KEY for the helper's provider)."""
    world = operator_mesh.scene()
    world.provider.valid_keys.add(SYSTEM_KEY)  # the operator's key works there
    await import_hearth(world)
    before = len(local_server.chat_requests())
    image = world.discord.upload(world.general, "hearth.png", PNG, "image/png")
    async with running_bot(world) as bot:
        await world.discord.say(
            world.general, world.alice, "@Hearth what is this?", attachments=[image]
        )
        await world.discord.wait_until(lambda: world.discord.webhook_messages(world.general))
        await settled(world, bot)

    (answer,) = world.discord.webhook_messages(world.general)
    assert answer.author_name.startswith("Hearth")
    assert all(r.api_key != SYSTEM_KEY for r in world.provider.requests)
    assert world.provider.chat_requests() == []  # no description asked, on any key
    (answered,) = local_server.chat_requests()[before:]  # an answer without it
    assert "/wallet set openrouter" in str(answered.body["messages"])
