"""/wallet for the providers inference knows and gateway does not configure: one the operator
added with TZUROT_PROVIDERS ("groq", at the fake provider) and Brave Search (the web search
backend, at the fake Brave), through the whole mesh (gateway asks inference which providers
there are) and through the fake Discord and the real bot.

Brave has no free check: a new Brave key is stored unchecked (nothing is sent to Brave), and
`/wallet test brave` spends one search (count=1); a key Brave refuses is then marked inactive,
as any provider's."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest

from tzurot.cli.localdb import create_database
from tzurot.inference.providers import DEFAULT_PROVIDERS
from tzurot.testing.discord_e2e import USER_KEY, World, discord_world, member_actor, running_bot
from tzurot.testing.fake_discord import FakeInteraction
from tzurot.testing.fake_provider import FakeProvider
from tzurot.testing.fake_web import FakeBrave
from tzurot.v1 import gateway_pb2 as gw

pytestmark = pytest.mark.e2e

BRAVE_KEY = "BSAplantedBraveKey0q7f3e9c1"
REFUSED_KEY = "BSArefusedBraveKey5Hj2Qw9Zx"
INFERENCE_KNOWS = sorted({*DEFAULT_PROVIDERS, "groq", "elevenlabs", "brave"})


@dataclass
class OperatorWorld:
    world: World
    brave: FakeBrave


@pytest.fixture(scope="module")
async def operator_mesh(
    postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[OperatorWorld]:
    async with (
        FakeBrave({BRAVE_KEY}) as brave,
        FakeProvider(valid_keys={USER_KEY}, any_model=True) as groq,
    ):
        database = create_database(postgres_url, f"test_{uuid.uuid4().hex[:20]}")
        async with discord_world(
            database,
            tmp_path_factory.mktemp("wallet-providers"),
            inference={"search_backend": "brave", "brave_url": brave.base_url},
            providers={"groq": groq.base_url},  # the operator's TZUROT_PROVIDERS
        ) as world:
            yield OperatorWorld(world, brave)


@pytest.fixture
def scene(operator_mesh: OperatorWorld) -> OperatorWorld:
    operator_mesh.brave.requests.clear()
    return OperatorWorld(operator_mesh.world.scene(), operator_mesh.brave)


async def test_an_operator_provider_is_set_tested_and_removed_through_gateway(
    scene: OperatorWorld,
) -> None:
    world = scene.world
    bot = await world.mesh.gateway_stub("bot")
    alice = member_actor(world.alice)
    saved = await bot.SetWalletKey(
        gw.SetWalletKeyRequest(actor=alice, provider="groq", api_key=USER_KEY)
    )
    assert saved.key.provider == "groq"
    tested = await bot.TestWalletKey(gw.TestWalletKeyRequest(actor=alice, provider="groq"))
    assert tested.valid, tested.detail
    await bot.RemoveWalletKey(gw.RemoveWalletKeyRequest(actor=alice, provider="groq"))
    listed = await bot.ListWalletKeys(gw.ListWalletKeysRequest(actor=alice))
    assert list(listed.keys) == []

    with pytest.raises(grpc.aio.AioRpcError) as caught:  # inference lists no such provider
        await bot.SetWalletKey(
            gw.SetWalletKeyRequest(actor=alice, provider="mistral", api_key=USER_KEY)
        )
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == "unknown provider; known: " + ", ".join(INFERENCE_KNOWS)


async def test_a_brave_key_is_stored_unchecked_and_tested_with_one_search(
    scene: OperatorWorld,
) -> None:
    world, brave = scene.world, scene.brave
    bot = await world.mesh.gateway_stub("bot")
    alice, bob = member_actor(world.alice), member_actor(world.bob)
    for who, key in ((alice, BRAVE_KEY), (bob, REFUSED_KEY)):  # neither is tried
        saved = await bot.SetWalletKey(
            gw.SetWalletKeyRequest(actor=who, provider="brave", api_key=key)
        )
        assert (saved.key.provider, saved.key.hint) == ("brave", key[-4:])
    assert brave.requests == []

    tested = await bot.TestWalletKey(gw.TestWalletKeyRequest(actor=alice, provider="brave"))
    assert (tested.valid, tested.detail) == (
        True,
        "the key works (brave has no free check: this test spent one billed request on it)",
    )
    [request] = brave.requests
    assert "count=1" in request

    refused = await bot.TestWalletKey(gw.TestWalletKeyRequest(actor=bob, provider="brave"))
    assert (refused.valid, refused.detail) == (False, "the key was rejected by brave")
    [held] = (await bot.ListWalletKeys(gw.ListWalletKeysRequest(actor=bob))).keys
    assert (held.provider, held.active) == ("brave", False)  # marked inactive, as any provider's


async def answered(world: World, interaction: FakeInteraction) -> str:
    await world.discord.wait_until(lambda: any(interaction.texts()))
    return "\n".join(t for t in interaction.texts() if t)


async def slash(world: World, command: str, provider: str) -> str:
    asked = await world.discord.slash(
        world.general, world.alice, "wallet", {"provider": provider}, subcommand=[command]
    )
    return await answered(world, asked)


async def set_in_form(world: World, provider: str, key: str) -> tuple[str, str]:
    """`/wallet set provider`, the key typed into its form: the form's title and the answer."""
    opened = await world.discord.slash(
        world.general, world.alice, "wallet", {"provider": provider}, subcommand=["set"]
    )
    await world.discord.wait_until(opened.modal)
    modal = opened.modal()
    assert modal is not None
    submitted = await world.discord.submit_modal(opened, world.alice, {"api_key": key})
    return str(modal["title"]), await answered(world, submitted)


async def test_through_discord_the_operator_provider_and_brave(scene: OperatorWorld) -> None:
    world, brave = scene.world, scene.brave
    async with running_bot(world):
        # The bot does not know groq: the form is untitled, the gateway decides.
        title, text = await set_in_form(world, "groq", USER_KEY)
        assert title == "Your API key"
        assert text.startswith("Saved your groq key (…")
        assert await slash(world, "test", "groq") == "Your groq key works."
        assert await slash(world, "remove", "groq") == "Removed your groq key."

        # A name inference does not list: refused by the gateway, its list with groq in it.
        title, text = await set_in_form(world, "mistral", USER_KEY)
        assert title == "Your API key"
        assert text == "Your key was not saved: unknown provider; known: " + ", ".join(
            INFERENCE_KNOWS
        )

        title, text = await set_in_form(world, "brave", BRAVE_KEY)
        assert title == "Your brave API key"
        assert "Saved your brave key" in text
        assert "Brave Search has no free check, so it was not tried" in text
        assert brave.requests == []
        assert await slash(world, "test", "brave") == (
            "Your brave key works. Brave Search has no free check: this test was one search "
            "with it."
        )
        assert len(brave.requests) == 1
