"""The show_reasoning setting through the fake Discord and the whole mesh: a user who sets it
with /settings sees the model's reasoning as a spoiler in a message under the answer; another
user sees none; the reasoning never reaches history."""

from __future__ import annotations

import pytest

from tzurot.bot.commands.common import NOT_YET
from tzurot.testing.discord_e2e import World, running_bot
from tzurot.testing.fake_discord import FakeInteraction

pytestmark = pytest.mark.e2e

THOUGHT = "She asks twice || so answer | plainly"


async def answered(world: World, interaction: FakeInteraction) -> str:
    await world.discord.wait_until(lambda: any(interaction.texts()))
    text = "\n".join(t for t in interaction.texts() if t)
    assert NOT_YET not in text, "the gateway answered UNIMPLEMENTED"
    return text


async def test_reasoning_shows_as_a_spoiler_only_to_whoever_set_show_reasoning(
    world: World,
) -> None:
    await world.set_key(world.alice)
    await world.set_key(world.bob)
    async with running_bot(world):
        done = await world.discord.slash(
            world.general,
            world.alice,
            "settings",
            {"key": "show_reasoning", "value": "on"},
            subcommand=["set"],
        )
        assert "`show_reasoning`: now **on** (your default)" in await answered(world, done)
        world.provider.enqueue("Yes, plainly.", reasoning=THOUGHT)
        asked = await world.discord.say(world.general, world.alice, "@Lilith plainly?")
        await world.delivered(f"{asked.id}:lilith")
        world.provider.enqueue("And to you.", reasoning="Bob must not see this thought")
        other = await world.discord.say(world.general, world.bob, "@Lilith and me?")
        await world.delivered(f"{other.id}:lilith")
    answer, reasoning, bobs = world.discord.webhook_messages(world.general)
    assert answer.content.endswith("Yes, plainly.")
    assert reasoning.author_name == answer.author_name
    assert reasoning.content == (
        "-# 💭 Reasoning\u2060\n||She asks twice |\u200b|\u200b so answer |\u200b plainly||"
    )
    assert bobs.content.endswith("And to you.")
    assert "Reasoning" not in bobs.content
    # Bob's prompt carried Alice's exchange as history: the answer, never its reasoning.
    history = world.provider.chat_requests()[-1].body["messages"]
    assert any("Yes, plainly." in str(m["content"]) for m in history)
    assert not any("asks twice" in str(m["content"]) for m in history)
