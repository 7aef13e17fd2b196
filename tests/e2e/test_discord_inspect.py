"""Inspect through the fake Discord: the memories that informed an answer, by their text, and
the model's reasoning in a spoiler when the user keeps it (the keep_reasoning setting)."""

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


async def test_inspect_shows_the_memories_by_their_text(world: World) -> None:
    await world.set_key(world.alice)
    async with running_bot(world):
        said = await world.discord.say(
            world.general, world.alice, "@Lilith I am terribly afraid of grey moths"
        )
        await world.delivered(f"{said.id}:lilith")
        # Memory forms off the request path; wait until it is stored.
        for _ in range(600):
            stats = await world.cli.GetMemoryStats(
                gw.GetMemoryStatsRequest(actor=_actor(world.alice), personality="lilith")
            )
            if stats.total:
                break
            await asyncio.sleep(0.1)
        assert stats.total, "no memory formed from the exchange"
        # With the conversation cleared, the memory (not history) carries the fact.
        await world.cli.ClearHistory(
            gw.ClearHistoryRequest(
                actor=_actor(world.alice),
                location=common.Location(
                    guild_id=world.guild["id"], channel_id=world.general["id"]
                ),
                personality="lilith",
            )
        )
        asked = await world.discord.say(world.general, world.alice, "@Lilith grey moths?")
        await world.delivered(f"{asked.id}:lilith")
        answer = world.discord.webhook_messages(world.general)[-1]
        inspected = await world.discord.context_menu(world.general, world.alice, "Inspect", answer)
        text = await answered(world, inspected)
    assert "Memories (" in text
    assert "afraid of grey moths" in text.split("Memories (", 1)[1]
    assert "Memories: none" not in text


async def test_inspect_shows_the_reasoning_only_when_the_user_keeps_it(world: World) -> None:
    await world.set_key(world.alice)
    world.provider.enqueue("Plainly put.", reasoning="The user wants brevity, so be brief.")
    world.provider.enqueue("Plainly again.", reasoning="Second thoughts about the moon.")
    async with running_bot(world):
        first = await world.discord.say(world.general, world.alice, "@Lilith be brief")
        await world.delivered(f"{first.id}:lilith")
        keep = await world.discord.slash(
            world.general,
            world.alice,
            "settings",
            {"key": "keep_reasoning", "value": "true"},
            subcommand=["set"],
        )
        assert "keep_reasoning" in await answered(world, keep)
        second = await world.discord.say(world.general, world.alice, "@Lilith again")
        await world.delivered(f"{second.id}:lilith")
        before, after = world.discord.webhook_messages(world.general)
        not_kept = await answered(
            world, await world.discord.context_menu(world.general, world.alice, "Inspect", before)
        )
        kept = await answered(
            world, await world.discord.context_menu(world.general, world.alice, "Inspect", after)
        )
    assert "Reasoning" not in not_kept
    assert "brevity" not in not_kept
    assert "Reasoning: ||Second thoughts about the moon.||" in kept
