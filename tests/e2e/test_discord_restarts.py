"""Reactions and Inspect find an answer through the gateway, so they work on any answer in
history, from whichever bot process, after a restart."""

from __future__ import annotations

import pytest

from tzurot.testing.discord_e2e import World, running_bot, settled

pytestmark = pytest.mark.e2e


async def test_inspect_and_regenerate_work_after_a_restart(world: World) -> None:
    await world.set_key(world.alice)
    world.provider.reply = "First thoughts."
    async with running_bot(world):
        said = await world.discord.say(world.general, world.alice, "@Lilith think about it")
        await world.delivered(f"{said.id}:lilith")
    (answer,) = world.discord.webhook_messages(world.general)
    paid = len(world.provider.chat_requests())
    world.provider.reply = "Second thoughts."
    async with running_bot(world) as bot:  # a new process: nothing of the first one's memory
        inspected = await world.discord.context_menu(world.general, world.alice, "Inspect", answer)
        await world.discord.wait_until(lambda: any(inspected.texts()))
        await world.discord.react(answer, world.bob, "🔄")  # not Bob's answer: ignored
        await settled(world, bot)
        after_bob = not answer.deleted, len(world.provider.chat_requests())
        await world.discord.react(answer, world.alice, "🔄")
        (again,) = await world.discord.wait_until(
            lambda: [
                m
                for m in world.discord.webhook_messages(world.general)
                if m.content.endswith("Second thoughts.")
            ]
        )
    assert after_bob == (True, paid)  # Bob's reaction: nothing deleted, nothing paid
    text = "\n".join(inspected.texts())
    assert "not an answer" not in text
    assert "history turns, paid with your key" in text  # what informed it: Alice's own answer
    assert answer.deleted
    assert again.author_name == "Lilith"
    assert len(world.provider.chat_requests()) == paid + 1  # Bob's reaction cost nothing
    # The regenerated answer was built from the original message, fetched from Discord.
    assert (
        world.provider.chat_requests()[-1]
        .body["messages"][-1]["content"]
        .endswith("think about it")
    )


async def test_delete_works_after_a_restart(world: World) -> None:
    await world.set_key(world.alice)
    async with running_bot(world):
        said = await world.discord.say(world.general, world.alice, "@Lilith hello")
        await world.delivered(f"{said.id}:lilith")
    (answer,) = world.discord.webhook_messages(world.general)
    async with running_bot(world):
        await world.discord.react(answer, world.alice, "❌")
        await world.discord.wait_until(lambda: answer.deleted)
    assert world.discord.webhook_messages(world.general) == []
