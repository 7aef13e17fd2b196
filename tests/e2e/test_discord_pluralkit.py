"""PluralKit as it really behaves (repost first and recorded after it, original deleted ~1000 ms
later, reply embeds, 10 lookups a second, User-Agent), with the whole mesh behind the bot."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx2 as httpx
import pytest

from tzurot.bot.bot import TzurotBot
from tzurot.testing.discord_e2e import USER_KEY, World, running_bot, settled
from tzurot.testing.fake_discord import FakePluralKit

pytestmark = pytest.mark.e2e


@asynccontextmanager
async def with_pluralkit(world: World, pk: FakePluralKit) -> AsyncIterator[TzurotBot]:
    async with running_bot(
        world,
        pluralkit_enabled=True,
        pluralkit_api_base=pk.base_url,
        pluralkit_retry_delay_seconds=0.5,
    ) as bot:
        yield bot


def lilith(world: World) -> list[str]:
    return [
        m.content
        for m in world.discord.webhook_messages(world.general)
        if m.author_name == "Lilith"
    ]


async def test_a_proxied_message_is_answered_once_as_the_human(world: World) -> None:
    await world.set_key(world.alice)
    await world.set_key(world.bob)
    async with FakePluralKit() as pk, with_pluralkit(world, pk):
        original, repost = await pk.proxy(
            world.discord, world.general, world.alice, "@Lilith hi from Fox", "Fox"
        )
        await world.delivered(f"{repost.id}:lilith")
        await world.discord.wait_until(lambda: original.deleted)  # ~1 s after the repost
        await world.discord.say(world.general, world.bob, "@Lilith and me")  # a later message
        await world.discord.wait_until(lambda: len(lilith(world)) == 2)
    (fox, bob) = lilith(world)
    assert fox.endswith("hi from Fox")
    assert bob.endswith("and me")
    assert world.provider.chat_requests()[-2].api_key == USER_KEY  # the human's own key
    assert pk.user_agents
    assert all(a.startswith("Tzurot") for a in pk.user_agents)


async def test_pluralkit_is_asked_only_about_messages_addressing_a_personality(
    world: World,
) -> None:
    async with FakePluralKit() as pk, with_pluralkit(world, pk) as bot:
        original, _ = await pk.proxy(
            world.discord, world.general, world.alice, "just chatting", "Fox"
        )
        await world.discord.wait_until(lambda: original.deleted)
        await settled(world, bot)  # both messages handled to their end
    assert pk.lookups == []
    assert lilith(world) == []


async def test_a_reply_through_pluralkit_continues_with_that_personality(world: World) -> None:
    await world.set_key(world.alice)
    async with FakePluralKit() as pk, with_pluralkit(world, pk):
        said = await world.discord.say(world.general, world.alice, "@Lilith hello")
        await world.delivered(f"{said.id}:lilith")
        (answer,) = world.discord.webhook_messages(world.general)
        _, repost = await pk.proxy(
            world.discord, world.general, world.alice, "and then what?", "Fox", reply_to=answer
        )
        await world.delivered(f"{repost.id}:lilith")
    assert repost.data.get("message_reference") is None  # PluralKit replies by embed only
    assert lilith(world)[-1].endswith("and then what?")


async def test_every_proxied_message_is_answered_under_a_spent_stricter_limit(
    world: World,
) -> None:
    """3 a second (PluralKit's update scope, stricter than the message scope), spent by
    another app on the same address just before: the bot's lookups meet 429s or PluralKit's
    stated limit, wait as told, and every proxied message is still answered once."""
    await world.set_key(world.alice)
    async with FakePluralKit(rate=(3, 1.0)) as pk, with_pluralkit(world, pk):
        async with httpx.AsyncClient() as other:
            for _ in range(3):
                await other.get(f"{pk.base_url}/messages/1", headers={"User-Agent": "other"})
        reposts = [
            (await pk.proxy(world.discord, world.general, world.alice, f"@Lilith n{i}", "Fox"))[1]
            for i in range(3)
        ]
        for repost in reposts:
            await world.delivered(f"{repost.id}:lilith", within=60)
    assert len(lilith(world)) == 3


async def test_a_repost_pluralkit_has_not_saved_yet_is_looked_up_again(world: World) -> None:
    """PluralKit saves its record after the webhook has posted: the repost arrives first."""
    await world.set_key(world.alice)
    async with FakePluralKit(record_delay=0.4) as pk, with_pluralkit(world, pk):
        original, repost = await pk.proxy(
            world.discord, world.general, world.alice, "@Lilith still there?", "Fox"
        )
        await world.delivered(f"{repost.id}:lilith")
        await world.discord.wait_until(lambda: original.deleted)
    assert pk.lookups.count(repost.id) == 2  # not saved yet, then found 0.5 s later
    assert len(lilith(world)) == 1


async def test_the_human_behind_a_proxy_can_delete_the_answer(world: World) -> None:
    await world.set_key(world.alice)
    async with FakePluralKit() as pk, with_pluralkit(world, pk):
        _, repost = await pk.proxy(world.discord, world.general, world.alice, "@Lilith hm", "Fox")
        await world.delivered(f"{repost.id}:lilith")
        (answer,) = [
            m for m in world.discord.webhook_messages(world.general) if m.author_name == "Lilith"
        ]
        await world.discord.react(answer, world.alice, "❌")
        await world.discord.wait_until(lambda: answer.deleted)
