"""Webhooks done as well as PluralKit does them, against the fake Discord."""

from __future__ import annotations

import pytest

from tzurot.testing.discord_e2e import World, running_bot
from tzurot.v1 import gateway_pb2 as gw

pytestmark = pytest.mark.e2e


def hooks_in(world: World) -> list[int]:
    return [
        int(h["id"])
        for h in world.discord.webhooks.values()
        if h["channel_id"] == world.general["id"]
    ]


async def test_one_webhook_per_channel_even_when_first_used_concurrently(world: World) -> None:
    await world.set_key(world.alice)
    async with running_bot(world):
        for text in ("@Lilith one", "@Sage two", "@Lilith three"):
            await world.discord.say(world.general, world.alice, text)
        await world.discord.wait_until(
            lambda: len(world.discord.webhook_messages(world.general)) >= 3
        )
    assert len(hooks_in(world)) == 1


async def test_a_deleted_webhook_is_recreated_and_the_answer_still_posted(world: World) -> None:
    await world.set_key(world.alice)
    async with running_bot(world):
        await world.discord.say(world.general, world.alice, "@Lilith first")
        await world.discord.wait_until(lambda: world.discord.webhook_messages(world.general))
        (old,) = hooks_in(world)
        world.discord.delete_webhook(old)  # someone removed it in the channel settings
        await world.discord.say(world.general, world.alice, "@Lilith second")
        await world.discord.wait_until(
            lambda: len(world.discord.webhook_messages(world.general)) == 2
        )
    (new,) = hooks_in(world)
    assert new != old


async def test_unknown_webhook_refreshes_the_cache_and_retries_once(world: World) -> None:
    await world.set_key(world.alice)
    async with running_bot(world):
        await world.discord.say(world.general, world.alice, "@Lilith first")
        await world.discord.wait_until(lambda: world.discord.webhook_messages(world.general))
        world.discord.unknown_webhook_next(times=1)
        await world.discord.say(world.general, world.alice, "@Lilith second")
        answers = await world.discord.wait_until(
            lambda: (
                len(world.discord.webhook_messages(world.general)) == 2
                and world.discord.webhook_messages(world.general)
            )
        )
    assert answers[1].author_name == "Lilith"
    calls = [
        m for m, path in world.discord.requests if path.endswith(f"{world.general['id']}/webhooks")
    ]
    # Found nothing and created one on first use; looked again (and found it) after the 10015.
    assert calls == ["GET", "POST", "GET"]


async def test_a_channel_with_15_webhooks_tells_the_admins(world: World) -> None:
    await world.set_key(world.alice)
    world.discord.add_foreign_webhooks(world.general, 15)
    async with running_bot(world):
        await world.discord.say(world.general, world.alice, "@Lilith hello?")
        notes = await world.discord.wait_until(
            lambda: [
                m
                for m in world.discord.messages.get(int(world.general["id"]), [])
                if m.data["author"]["id"] == world.discord.bot_user["id"]
            ]
        )
    assert "maximum of 15 webhooks" in notes[0].content
    assert "Integrations" in notes[0].content
    assert world.discord.webhook_messages(world.general) == [
        m for m in world.discord.webhook_messages(world.general) if m.author_name != "Lilith"
    ]


async def test_names_discord_refuses_are_sanitised(world: World) -> None:
    seed = b"""
name: Clyde the Discord Helper
system_prompt: You help.
llm: {provider: openrouter, model: fake/clyde}
"""
    await world.cli.ImportPersonality(
        gw.ImportPersonalityRequest(format=gw.IMPORT_FORMAT_SEED_YAML, document=seed)
    )
    await world.set_key(world.alice)
    async with running_bot(world, personality_cache_seconds=0):
        await world.discord.say(world.general, world.alice, "@Clyde the Discord Helper hi")
        (answer,) = await world.discord.wait_until(
            lambda: world.discord.webhook_messages(world.general)
        )
    # Posted (the fake refuses names containing "clyde"/"discord" like Discord does) and
    # still reads the same.
    assert answer.author_name.replace("\u200a", "") == "Clyde the Discord Helper"
