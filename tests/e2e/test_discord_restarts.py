"""Reactions and Inspect find an answer through the gateway, so they work on any answer in
history, from whichever bot process, after a restart."""

from __future__ import annotations

import pytest

from tzurot.testing.discord_e2e import World, running_bot, settled
from tzurot.v1 import gateway_pb2 as gw

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


async def test_a_reply_after_a_restart_reaches_a_personality_whose_name_discord_refuses(
    world: World,
) -> None:
    """Webhook names may not contain "discord": "Discord Dan" posts as "Disc<hair space>ord
    Dan". After a restart the bot no longer remembers the answer, and that name finds no
    personality; the job that posted the answer does."""
    await world.cli.ImportPersonality(
        gw.ImportPersonalityRequest(
            format=gw.IMPORT_FORMAT_SEED_YAML,
            document=b"name: Discord Dan\nllm: {provider: openrouter, model: fake/dan}\n",
        )
    )
    await world.set_key(world.alice)
    world.provider.reply = "Hi, I am Dan."
    async with running_bot(world):
        said = await world.discord.say(world.general, world.alice, "@Discord Dan hello")
        await world.delivered(f"{said.id}:discord-dan")
    (answer,) = world.discord.webhook_messages(world.general)
    assert answer.author_name != "Discord Dan"  # cleaned for Discord
    world.provider.reply = "Still Dan."
    async with running_bot(world):  # a new process: nothing of the first one's memory
        again = await world.discord.say(world.general, world.alice, "and now?", reply_to=answer)
        await world.delivered(f"{again.id}:discord-dan")
    assert world.discord.webhook_messages(world.general)[-1].content.endswith("Still Dan.")
