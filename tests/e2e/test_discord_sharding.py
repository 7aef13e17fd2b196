"""Sharding without waste: IDENTIFY in Discord's `max_concurrency` buckets across bot pods, and
commands synced by one pod only, and only when they changed."""

from __future__ import annotations

import discord
import pytest

from tzurot.testing.discord_e2e import World, running_bot

pytestmark = pytest.mark.e2e


def command_puts(world: World) -> int:
    return sum(1 for m, p in world.discord.requests if m == "PUT" and p.endswith("/commands"))


async def test_pods_identify_in_their_slots_without_an_invalid_session(world: World) -> None:
    fake = world.discord
    fake.max_concurrency = 1
    first = len(fake.identifies)
    async with (
        running_bot(world, shard_count=2, shard_index=0),
        running_bot(world, shard_count=2, pod_name="bot-1"),
    ):
        await fake.wait_until(lambda: len(fake.identifies) >= first + 2)
    assert fake.invalid_sessions == []
    (zero, t0), (one, t1) = sorted(fake.identifies[first:])
    assert (zero, one) == (0, 1)
    assert t1 - t0 >= fake.identify_window * 0.9  # one bucket: one IDENTIFY per window


async def test_commands_are_synced_once_and_only_when_changed(world: World) -> None:
    async with running_bot(world):
        pass
    puts = command_puts(world)
    async with running_bot(world):  # a restart with the same commands: nothing to sync
        pass
    assert command_puts(world) == puts
    world.discord.synced_commands[world.guild["id"]].pop()  # someone changed them meanwhile
    async with running_bot(world):
        pass
    assert command_puts(world) == puts + 1


async def test_only_the_first_pod_syncs_commands(world: World) -> None:
    world.discord.synced_commands.pop(world.guild["id"], None)
    async with running_bot(world, shard_count=2, pod_name="bot-1"):
        pass
    assert world.guild["id"] not in world.discord.synced_commands


async def test_without_the_message_content_intent_the_bot_stops_with_4014(world: World) -> None:
    world.discord.message_content_approved = False  # not enabled in the developer portal
    try:
        with pytest.raises(discord.PrivilegedIntentsRequired):
            async with running_bot(world):
                pass
    finally:
        world.discord.message_content_approved = True
