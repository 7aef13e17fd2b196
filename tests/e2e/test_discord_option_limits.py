"""Through the fake Discord and the real bot: an option's declared limit (the gateway's, see
commands/options.py) is what Discord's client enforces, so a longer value is never sent,
while one as long as the gateway takes reaches it."""

from __future__ import annotations

import pytest

from tzurot.bot.commands.common import NOT_YET
from tzurot.bot.commands.options import LONGEST_MEMORY_QUERY
from tzurot.testing.discord_e2e import World, running_bot
from tzurot.testing.fake_discord import InvalidSlashCommand

pytestmark = pytest.mark.e2e


async def test_discord_refuses_a_memory_query_longer_than_the_gateway_takes(
    world: World,
) -> None:
    async with running_bot(world):
        await world.discord.wait_until(lambda: world.guild["id"] in world.discord.synced_commands)
        with pytest.raises(InvalidSlashCommand, match="max_length"):
            await world.discord.slash(
                world.general,
                world.alice,
                "memory",
                {"personality": "echo", "query": "x" * (LONGEST_MEMORY_QUERY + 1)},
                subcommand=["search"],
            )
        with pytest.raises(InvalidSlashCommand, match="min_value"):
            await world.discord.slash(
                world.general,
                world.alice,
                "memory",
                {"personality": "echo", "threshold": 0.0},
                subcommand=["prune"],
            )
        longest = await world.discord.slash(
            world.general,
            world.alice,
            "memory",
            {"personality": "echo", "query": "x" * LONGEST_MEMORY_QUERY},
            subcommand=["search"],
        )
        await world.discord.wait_until(lambda: any(longest.texts()), within=60)
    text = "\n".join(t for t in longest.texts() if t)
    assert NOT_YET not in text
    assert "longer than" not in text, text
