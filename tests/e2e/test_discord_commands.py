"""Slash commands through the fake Discord: interactions, modals and autocomplete."""

from __future__ import annotations

import pytest

from tzurot.testing.discord_e2e import USER_KEY, World, running_bot
from tzurot.testing.fake_discord import FakeInteraction
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

pytestmark = pytest.mark.e2e


async def answered(world: World, interaction: FakeInteraction) -> str:
    """The text of the bot's final answer to an interaction."""
    await world.discord.wait_until(lambda: any(t for t in interaction.texts()))
    return "\n".join(t for t in interaction.texts() if t)


async def test_commands_are_synced_to_the_development_guild_on_start(world: World) -> None:
    async with running_bot(world):
        pass
    synced = world.discord.synced_commands[world.guild["id"]]
    wallet = next(c for c in synced if c["name"] == "wallet")
    assert {o["name"] for o in wallet["options"]} >= {"set", "list", "remove", "test"}


async def test_wallet_set_opens_a_modal_and_the_key_lands_in_keyvault(
    world: World, capfd: pytest.CaptureFixture[str]
) -> None:
    async with running_bot(world):
        opened = await world.discord.slash(
            world.general, world.alice, "wallet", {"provider": "openrouter"}, subcommand=["set"]
        )
        modal = await world.discord.wait_until(opened.modal)
        assert "openrouter" in modal["title"]
        submitted = await world.discord.submit_modal(opened, world.alice, {"api_key": USER_KEY})
        text = await world.discord.wait_until(
            lambda: "".join(submitted.texts()) and "".join(submitted.texts())
        )
        assert "Saved your openrouter key" in text
        assert submitted.is_ephemeral()

        # The key is now Alice's: her next message is answered with it.
        await world.discord.say(world.general, world.alice, "@Lilith hi")
        await world.discord.wait_until(lambda: world.discord.webhook_messages(world.general))
    assert world.provider.chat_requests()[-1].api_key == USER_KEY
    keys = await world.cli.ListWalletKeys(
        gw.ListWalletKeysRequest(actor=common.Actor(user_id=world.alice["id"]))
    )
    assert [k.provider for k in keys.keys] == ["openrouter"]
    # The key never came back through Discord: not in a message nor in any answer.
    seen = [p.content for p in world.discord.webhook_messages()] + opened.texts() + text.split()
    assert not any(USER_KEY in s for s in seen)
    assert not any(USER_KEY in str(r) for r in opened.responses + submitted.responses)
    # Nor in any log line of the bot or the mesh (all in this process).
    logged = capfd.readouterr()
    assert "SetWalletKey" in logged.out + logged.err
    assert USER_KEY not in logged.out + logged.err


async def test_a_rejected_key_is_not_saved_and_the_user_is_told_why(world: World) -> None:
    async with running_bot(world):
        opened = await world.discord.slash(
            world.general, world.bob, "wallet", {"provider": "openrouter"}, subcommand=["set"]
        )
        await world.discord.wait_until(opened.modal)
        submitted = await world.discord.submit_modal(
            opened, world.bob, {"api_key": "sk-or-not-a-real-key-123"}
        )
        text = await answered(world, submitted)
    assert "was not saved" in text
    assert "sk-or-not-a-real-key-123" not in text


async def test_wallet_list_and_remove(world: World) -> None:
    await world.set_key(world.alice)
    async with running_bot(world):
        listed = await world.discord.slash(
            world.general, world.alice, "wallet", subcommand=["list"]
        )
        text = await answered(world, listed)
        assert f"**openrouter** (…{USER_KEY[-4:]}): active" in text
        assert listed.is_ephemeral()
        assert USER_KEY not in text

        options = await world.discord.slash(
            world.general,
            world.alice,
            "wallet",
            {"provider": "open"},
            subcommand=["remove"],
            focused="provider",
        )
        await world.discord.wait_until(options.choices)
        assert [c["value"] for c in options.choices()] == ["openrouter"]

        removed = await world.discord.slash(
            world.general, world.alice, "wallet", {"provider": "openrouter"}, subcommand=["remove"]
        )
        assert "Removed your openrouter key" in await answered(world, removed)
        again = await world.discord.slash(world.general, world.alice, "wallet", subcommand=["list"])
        assert "no API keys" in await answered(world, again)


async def test_wallet_set_autocompletes_provider_names(world: World) -> None:
    async with running_bot(world):
        typed = await world.discord.slash(
            world.general,
            world.alice,
            "wallet",
            {"provider": "an"},
            subcommand=["set"],
            focused="provider",
        )
        await world.discord.wait_until(typed.choices)
    assert [c["value"] for c in typed.choices()] == ["anthropic"]


async def test_without_a_development_guild_commands_are_synced_globally(world: World) -> None:
    world.discord.synced_commands.clear()
    async with running_bot(world, dev_guild_id=None):
        pass
    assert list(world.discord.synced_commands) == ["global"]
    assert "wallet" in {c["name"] for c in world.discord.synced_commands["global"]}
