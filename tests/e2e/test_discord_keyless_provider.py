"""A user without any key talks to a personality on the operator's keyless chat server, through
the fake Discord, the real bot and the whole mesh, with guest mode off.

The operator's `TZUROT_PROVIDERS` declares a local chat server (`my-llm`: `"keyless": true`)
and a personality's free config names it. Review: the gateway could not know the server was
keyless (inference's ListProviders said nothing of it), so such a user was a guest: refused
"no API key" without guest mode, and spending the guests' daily share with it. Now inference
lists it in `keyless_providers`, the gateway admits her as no guest, and the server is asked
with the placeholder inference sends every keyless server, never a key of hers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from tzurot.cli.localdb import create_database
from tzurot.testing.discord_e2e import USER_KEY, World, discord_world, member_actor, running_bot
from tzurot.testing.fake_provider import FakeProvider
from tzurot.v1 import gateway_pb2 as gw

pytestmark = pytest.mark.e2e

PLACEHOLDER_KEY = "ollama"
"""What inference sends a keyless server (the OpenAI client insists on a key)."""
HEARTH_SEED = b"""
name: Hearth
system_prompt: You are Hearth, a test personality on the operator's own server.
llm: {provider: my-llm, model: local/hearth, free_use: true}
"""


@pytest.fixture(scope="module")
async def local_server() -> AsyncIterator[FakeProvider]:
    """The operator's chat server: it takes no key."""
    async with FakeProvider(require_key=False, any_model=True) as server:
        yield server


@pytest.fixture(scope="module")
async def operator_mesh(
    local_server: FakeProvider, postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    database = create_database(postgres_url, f"test_{uuid.uuid4().hex[:20]}")
    declared = {"base_url": local_server.base_url, "keyless": True}
    async with discord_world(
        database,
        tmp_path_factory.mktemp("keyless-provider"),
        providers={"my-llm": declared},  # TZUROT_PROVIDERS
        inference={"loopback_providers": False},  # as in a pod (the manifests' configmap)
        gateway={"guest_mode": False},  # no answer for anyone without a key but this one
    ) as world:
        yield world


async def test_a_user_without_a_key_is_answered_by_the_operators_keyless_server(
    operator_mesh: World, local_server: FakeProvider
) -> None:
    world = operator_mesh.scene()
    await world.cli.ImportPersonality(
        gw.ImportPersonalityRequest(format=gw.IMPORT_FORMAT_SEED_YAML, document=HEARTH_SEED)
    )
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
