"""`/admin deny add scope: channel` run in a thread denies in that thread, as the reply says
(review: it stored the thread's id, which the gateway compared with the parent channel only,
so the entry was "Added" and never applied). Through the fake Discord, the real bot and the
whole mesh: the superuser's command in the thread, then the denied user's messages there and
in the thread's channel."""

from __future__ import annotations

import pytest

from tzurot.testing.discord_e2e import World, running_bot
from tzurot.v1 import gateway_pb2 as gw

from .test_discord_bad_input_options import denylist, make_superuser
from .test_discord_moderation import _refusals, answered, refused_and_handled

pytestmark = pytest.mark.e2e


async def test_a_channel_deny_made_in_a_thread_applies_in_that_thread_alone(
    world: World,
) -> None:
    await make_superuser(world)
    await world.set_key(world.bob)
    thread = world.discord.add_thread(world.guild, world.general, "side")
    async with running_bot(world) as bot:
        await world.discord.wait_until(lambda: world.guild["id"] in world.discord.synced_commands)
        added = await world.discord.slash(
            thread, world.alice, "admin",
            {"user": world.bob, "scope": "channel", "reason": "spam"},
            subcommand=["deny", "add"],
        )  # fmt: skip
        said = await answered(world, added)
        stored = await denylist(world)
        before = _refusals()
        await world.discord.say(thread, world.bob, "@Lilith hello?")
        await refused_and_handled(world, bot, before, 1)
        elsewhere = await world.discord.say(world.general, world.bob, "@Lilith and here?")
        await world.delivered(f"{elsewhere.id}:lilith")
    assert said.startswith("Added: `")
    assert f"block user `{world.bob['id']}` in channel `{thread['id']}` — spam" in said
    assert said.endswith(
        "That is this thread alone; to deny in all of its channel, give "
        f"`scope_id: {world.general['id']}`."
    )
    assert [(e.scope, e.scope_id) for e in stored] == [(gw.DENY_SCOPE_CHANNEL, thread["id"])]
    (told,) = world.discord.webhook_messages(thread)
    assert "you may not use this bot here" in told.content
    (answer,) = world.discord.webhook_messages(world.general)
    assert answer.author_name == "Lilith"
