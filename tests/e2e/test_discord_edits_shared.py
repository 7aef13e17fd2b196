"""Editing a message several exchanges share, through the fake Discord and the whole mesh:
every personality that answered it reads the edited text afterwards, whether it was addressed
by name or answered in a group round (whose prompt shows the oldest copy of the message). On
the group mesh of test_discord_groups.py."""

from __future__ import annotations

import pytest

from tests.e2e import test_discord_groups as groups
from tests.e2e.test_discord_groups import activate, answers, set_channel, talkative
from tzurot.testing.discord_e2e import World, running_bot, settled

pytestmark = pytest.mark.e2e

# The group mesh's fixtures, for this module (its own mesh, clock and fresh channels).
clock, changelog, group_mesh, world = (
    groups.clock,
    groups.changelog,
    groups.group_mesh,
    groups.world,
)


def said_before(world: World, model: str) -> list[str]:
    """The users' turns before the last one in `model`'s last prompt (oldest first)."""
    asked = [r for r in world.provider.chat_requests() if r.body["model"] == model]
    return [str(m["content"]) for m in asked[-1].body["messages"][:-1] if m["role"] == "user"]


async def test_each_personality_addressed_reads_the_edit(world: World) -> None:
    async with running_bot(world) as bot:
        said = await world.discord.say(
            world.general, world.alice, "@Lilith @Sage my cat is called Tom"
        )
        await world.delivered(f"{said.id}:lilith")
        await world.delivered(f"{said.id}:sage")
        await world.discord.edit_message(said, "@Lilith @Sage my cat is called Felix")
        await settled(world, bot)
        for name in ("lilith", "sage"):
            asked = await world.discord.say(world.general, world.alice, f"@{name} his name?")
            await world.delivered(f"{asked.id}:{name}")
    for model in ("fake/lilith", "fake/sage"):
        turns = [t for t in said_before(world, model) if "my cat is called" in t]
        assert turns == ["Alice: my cat is called Felix"], (model, turns)


async def test_a_group_round_reads_the_edit(world: World) -> None:
    await activate(world, "Lilith", "Sage")
    await talkative(world, lilith=1.0, sage=1.0)
    await set_channel(world, "group_max_speakers", 2)
    await set_channel(world, "group_chain_cap", 0)
    async with running_bot(world) as bot:
        said = await world.discord.say(world.general, world.alice, "my cat is called Tom")
        await world.discord.wait_until(lambda: len(answers(world)) >= 2)
        await settled(world, bot)
        await world.discord.edit_message(said, "my cat is called Felix")
        await settled(world, bot)
        await world.discord.say(world.general, world.alice, "what is his name, Sage?")
        await world.discord.wait_until(lambda: len(answers(world)) >= 3)
    asked = [r for r in world.provider.chat_requests() if "his name" in str(r.body["messages"])]
    turns = [str(m["content"]) for m in asked[-1].body["messages"] if m["role"] == "user"]
    assert [t for t in turns if "my cat is called" in t] == ["Alice: my cat is called Felix"]
