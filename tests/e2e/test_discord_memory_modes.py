"""/memory incognito and /memory fresh through the fake Discord and the whole mesh: nothing is
remembered while incognito; after a fresh start older memories leave the provider's prompt."""

from __future__ import annotations

import asyncio

import pytest

from tzurot.bot.commands.common import NOT_YET
from tzurot.testing.discord_e2e import World, running_bot
from tzurot.testing.fake_discord import FakeInteraction
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

pytestmark = pytest.mark.e2e


async def answered(world: World, interaction: FakeInteraction) -> str:
    await world.discord.wait_until(lambda: any(interaction.texts()))
    text = "\n".join(t for t in interaction.texts() if t)
    assert NOT_YET not in text, "the gateway answered UNIMPLEMENTED"
    return text


def _actor(user: dict[str, str]) -> common.Actor:
    return common.Actor(user_id=str(user["id"]), display_name=str(user["username"]))


async def memories(world: World, user: dict[str, str], personality: str) -> int:
    stats = await world.cli.GetMemoryStats(
        gw.GetMemoryStatsRequest(actor=_actor(user), personality=personality)
    )
    return stats.total


async def until_remembered(world: World, user: dict[str, str], personality: str) -> None:
    """Memory forms off the request path: waits until `personality` has one of `user`."""
    for _ in range(600):
        if await memories(world, user, personality):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"no memory of {user['username']} formed for {personality}")


def system_text(world: World) -> str:
    messages = world.provider.chat_requests()[-1].body["messages"]
    return "\n".join(str(m["content"]) for m in messages if m["role"] == "system")


async def clear_history(world: World, personality: str) -> None:
    await world.cli.ClearHistory(
        gw.ClearHistoryRequest(
            actor=_actor(world.alice),
            location=common.Location(guild_id=world.guild["id"], channel_id=world.general["id"]),
            personality=personality,
        )
    )


async def test_nothing_said_while_incognito_is_remembered(world: World) -> None:
    await world.set_key(world.alice)
    async with running_bot(world):
        on = await world.discord.slash(
            world.general,
            world.alice,
            "memory",
            {"personality": "Lilith", "state": "on"},
            subcommand=["incognito"],
        )
        assert "Incognito with Lilith until <t:" in await answered(world, on)
        said = await world.discord.say(world.general, world.alice, "@Lilith my cat is Pixel")
        await world.delivered(f"{said.id}:lilith")
        # Sage is not incognito: once Sage remembers, the outbox has passed Lilith's exchange.
        told = await world.discord.say(world.general, world.alice, "@Sage I grow tomatoes")
        await world.delivered(f"{told.id}:sage")
        await until_remembered(world, world.alice, "Sage")
        stats = await world.discord.slash(
            world.general, world.alice, "memory", {"personality": "Lilith"}, subcommand=["stats"]
        )
        shown = await answered(world, stats)
        off = await world.discord.slash(
            world.general,
            world.alice,
            "memory",
            {"personality": "Lilith", "state": "off"},
            subcommand=["incognito"],
        )
        assert "Incognito is off" in await answered(world, off)
    assert await memories(world, world.alice, "Lilith") == 0
    assert "Lilith has no memories of you yet." in shown
    assert "Incognito until <t:" in shown


async def test_after_a_fresh_start_older_memories_leave_the_prompt(world: World) -> None:
    await world.set_key(world.alice)
    async with running_bot(world):
        said = await world.discord.say(
            world.general, world.alice, "@Lilith I am terribly afraid of grey moths"
        )
        await world.delivered(f"{said.id}:lilith")
        await until_remembered(world, world.alice, "Lilith")
        await clear_history(world, "lilith")
        asked = await world.discord.say(world.general, world.alice, "@Lilith grey moths?")
        await world.delivered(f"{asked.id}:lilith")
        remembered = system_text(world)
        fresh = await world.discord.slash(
            world.general, world.alice, "memory", {"personality": "Lilith"}, subcommand=["fresh"]
        )
        assert "A fresh start with Lilith" in await answered(world, fresh)
        stats = await world.discord.slash(
            world.general, world.alice, "memory", {"personality": "Lilith"}, subcommand=["stats"]
        )
        assert "Fresh since <t:" in await answered(world, stats)
        await clear_history(world, "lilith")
        again = await world.discord.say(world.general, world.alice, "@Lilith grey moths, again?")
        await world.delivered(f"{again.id}:lilith")
        forgotten = system_text(world)
    assert "afraid of grey moths" in remembered  # the memory was in use before
    assert "afraid of grey moths" not in forgotten
