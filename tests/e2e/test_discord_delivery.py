"""Posting that fails safely, against the strict fake: the bot checks it can deliver before it
pays for a generation, handles every refusal Discord gives, and never creates a webhook by
accident."""

from __future__ import annotations

import asyncio

import pytest

from tzurot.testing.discord_e2e import World, running_bot
from tzurot.testing.fake_discord import Json
from tzurot.testing.fake_discord.rules import Permission

pytestmark = pytest.mark.e2e


def webhook_calls(world: World, channel: Json) -> list[str]:
    path = f"/channels/{channel['id']}/webhooks"
    return [method for method, p in world.discord.requests if p.endswith(path)]


def notices(world: World, channel: Json) -> list[str]:
    bot = world.discord.bot_user["id"]
    return [
        m.content
        for m in world.discord.messages.get(int(channel["id"]), [])
        if m.data["author"]["id"] == bot
    ]


async def test_no_generation_where_the_bot_cannot_post(world: World) -> None:
    await world.set_key(world.alice)
    world.discord.deny_bot(world.general, Permission.MANAGE_WEBHOOKS)
    before = len(world.provider.chat_requests())
    refused = len(world.discord.refusals)
    async with running_bot(world):
        await world.discord.say(world.general, world.alice, "@Lilith hello?")
        (notice,) = await world.discord.wait_until(lambda: notices(world, world.general))
    assert "Manage Webhooks" in notice
    assert len(world.provider.chat_requests()) == before  # nothing paid for
    assert webhook_calls(world, world.general) == []
    assert world.discord.refusals[refused:] == []


async def test_no_generation_in_a_thread_without_send_messages_in_threads(world: World) -> None:
    await world.set_key(world.alice)
    thread = world.discord.add_thread(world.guild, world.general, "side talk")
    world.discord.deny_bot(world.general, Permission.SEND_MESSAGES_IN_THREADS)
    before = len(world.provider.chat_requests())
    refused = len(world.discord.refusals)
    async with running_bot(world):
        await world.discord.say(thread, world.alice, "@Lilith hello?")
        # The bot cannot even say why in the thread; it asks Discord once and stops there.
        await world.discord.wait_until(
            lambda: ("create_message", 403, 50013) in world.discord.refusals[refused:]
        )
    assert len(world.provider.chat_requests()) == before
    assert webhook_calls(world, world.general) == []


async def test_forum_posts_and_stage_chats_are_answered(world: World) -> None:
    await world.set_key(world.alice)
    forum = world.discord.add_forum(world.guild, "ideas")
    post = world.discord.add_thread(world.guild, forum, "my idea")
    stage = world.discord.add_stage(world.guild, "town hall")
    refused = len(world.discord.refusals)
    async with running_bot(world):
        await world.discord.say(post, world.alice, "@Lilith what do you think?")
        await world.discord.say(stage, world.alice, "@Lilith speak")
        await world.discord.wait_until(
            lambda: world.discord.webhook_messages(post) and world.discord.webhook_messages(stage)
        )
    assert world.discord.webhook_messages(post)[0].author_name == "Lilith"
    assert world.discord.refusals[refused:] == []


async def test_a_403_is_told_and_remembered_for_the_channel(world: World) -> None:
    await world.set_key(world.alice)
    world.discord.fail_next(
        "execute_webhook", 403, {"code": 50013, "message": "Missing Permissions"}
    )
    async with running_bot(world):
        await world.discord.say(world.general, world.alice, "@Lilith first")
        (notice,) = await world.discord.wait_until(lambda: notices(world, world.general))
        paid = len(world.provider.chat_requests())
        await world.discord.say(world.general, world.alice, "@Lilith second")
        await asyncio.sleep(2.0)  # time to (wrongly) start a generation
    assert "missing permissions" in notice
    assert len(world.provider.chat_requests()) == paid  # the second one cost nothing
    assert world.discord.webhook_messages(world.general) == []


async def test_a_message_deleted_mid_stream_stops_the_answer_and_confirms_what_was_posted(
    world: World,
) -> None:
    await world.set_key(world.alice)
    world.provider.reply = " ".join(f"word{i}" for i in range(80))
    world.provider.chunk_delay = 0.05
    async with running_bot(world):
        said = await world.discord.say(world.general, world.alice, "@Lilith a long one")
        (first,) = await world.discord.wait_until(
            lambda: world.discord.webhook_messages(world.general)
        )
        await world.discord.delete_message(first)  # a moderator removes it while it streams
        (notice,) = await world.discord.wait_until(lambda: notices(world, world.general))
        job = await world.delivered(f"{said.id}:lilith")
    assert "deleted while it was being written" in notice
    assert job.content  # confirmed: the exchange is stored with what was posted


async def test_own_posts_are_known_without_asking_and_no_webhook_is_made_by_accident(
    world: World,
) -> None:
    await world.set_key(world.alice)
    other_app = world.discord.snowflake()
    async with running_bot(world, pluralkit_enabled=False):
        # Another bot's interaction reply and a foreign webhook (e.g. PluralKit) message.
        await world.discord.say(
            world.general,
            world.discord.make_user("OtherBot", bot=True),
            "@Lilith pong",
            webhook_id=other_app,
            extra={
                "application_id": str(other_app),
                "interaction_metadata": {"id": "1", "type": 2, "user": world.bob},
            },
        )
        await world.discord.say(
            world.general,
            world.discord.make_user("Proxy", bot=True),
            "@Lilith from a proxy",
            webhook_id=world.discord.snowflake(),
        )
        await asyncio.sleep(1.0)
        assert webhook_calls(world, world.general) == []  # reading never creates one
        for text in ("@Lilith one", "@Lilith two"):
            said = await world.discord.say(world.general, world.alice, text)
            await world.delivered(f"{said.id}:lilith")
    assert webhook_calls(world, world.general) == ["GET", "POST"]  # once, on the posting path
    answers = [
        m for m in world.discord.webhook_messages(world.general) if m.author_name == "Lilith"
    ]
    assert len(answers) == 2


async def test_the_bots_webhook_is_found_by_owner_after_an_admin_renamed_it(world: World) -> None:
    await world.set_key(world.alice)
    hook = world.discord.add_webhook(
        world.general, "Renamed By Admin", owner=world.discord.bot_user
    )
    async with running_bot(world):
        said = await world.discord.say(world.general, world.alice, "@Lilith hi")
        await world.delivered(f"{said.id}:lilith")
    (answer,) = world.discord.webhook_messages(world.general)
    assert answer.webhook_id == int(hook["id"])
    assert webhook_calls(world, world.general) == ["GET"]


async def test_the_guild_webhook_cap_is_reported_to_admins(world: World) -> None:
    await world.set_key(world.alice)
    guild = world.discord.add_guild("Full Server")  # its own server: the cap is per guild
    general = world.discord.add_channel(guild, "general")
    for i in range(72):
        others = world.discord.add_channel(guild, f"full-{i}")
        world.discord.add_foreign_webhooks(others, 14 if i < 71 else 1000 - 71 * 14)
    async with running_bot(world):
        await world.discord.say(general, world.alice, "@Lilith hello?")
        (notice,) = await world.discord.wait_until(lambda: notices(world, general))
    assert "maximum of 1000 webhooks" in notice
