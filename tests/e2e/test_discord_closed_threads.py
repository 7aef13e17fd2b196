"""Locked and archived threads, through the fake Discord (which refuses there what Discord's
docs say it refuses: topics/threads.mdx) and the real mesh: nothing is generated for a message
in a thread locked to the bot, and an answer whose thread a moderator closes while it streams
stops quietly, without reopening the thread."""

from __future__ import annotations

import pytest

from tzurot.testing.discord_e2e import World, running_bot, settled
from tzurot.testing.fake_discord import Json

pytestmark = pytest.mark.e2e


def bot_messages(world: World, channel: Json) -> list[str]:
    """What the bot posted as itself (its notices) in `channel`."""
    bot = world.discord.bot_user["id"]
    return [
        m.content
        for m in world.discord.messages.get(int(channel["id"]), [])
        if m.data["author"]["id"] == bot
    ]


async def test_no_generation_for_a_message_in_a_locked_thread(world: World) -> None:
    """Only a moderator (Manage Threads; the server's owner here) can write in a locked
    thread, and the bot, without Manage Threads, could post nothing there: no provider call,
    nothing posted, nothing Discord had to refuse."""
    moderator = world.discord.owner
    await world.set_key(moderator)
    thread = world.discord.add_thread(world.guild, world.general, "settled matters")
    before = len(world.provider.chat_requests())
    refused = len(world.discord.refusals)
    async with running_bot(world) as bot:
        await world.discord.set_thread(thread, locked=True)  # THREAD_UPDATE to the bot
        said = await world.discord.say(thread, moderator, "@Lilith one last word?")
        await settled(world, bot)
    assert len(world.provider.chat_requests()) == before  # nothing paid for
    assert [m.id for m in world.discord.messages[int(thread["id"])]] == [said.id]
    assert world.discord.refusals[refused:] == []


async def test_an_answer_in_a_thread_closed_mid_stream_stops_without_reopening_it(
    world: World,
) -> None:
    await world.set_key(world.alice)
    world.provider.reply = " ".join(f"word{i}" for i in range(80))
    world.provider.chunk_delay = 0.05
    thread = world.discord.add_thread(world.guild, world.general, "side talk")
    refused = len(world.discord.refusals)
    async with running_bot(world):
        said = await world.discord.say(thread, world.alice, "@Lilith a long one")
        (first,) = await world.discord.wait_until(lambda: world.discord.webhook_messages(thread))
        await world.discord.set_thread(thread, archived=True)  # a moderator closes it
        job = await world.delivered(f"{said.id}:lilith")  # confirmed: what was posted
    assert bot_messages(world, thread) == []  # no notice: it would have reopened the thread
    assert thread["thread_metadata"]["archived"]
    assert [m.id for m in world.discord.webhook_messages(thread)] == [first.id]
    assert "word79" not in first.content  # it stopped where it was
    assert job.content
    # Discord refused the next edit there (50083); the bot asked for nothing more.
    assert world.discord.refusals[refused:] == [("edit_webhook_message", 403, 50083)]
