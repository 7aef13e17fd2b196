"""The gateway-away notice in a channel with a personality activated, through the fake
Discord, the real bot and the mesh: once the gateway has answered a message in #general as
Lilith's (activated there), a plain message there while the gateway is away (no '@', no
reply: what the activated personality answers) is told "The gateway is restarting; try
again in a moment.", once per cooldown; a plain message in a channel where nothing was seen
activated is a human talking to humans, and is told nothing."""

from __future__ import annotations

import pytest

from tzurot.bot.messages import GATEWAY_AWAY
from tzurot.testing.discord_e2e import World, settled

from .gateway_away import AwayGateway, lilith_answered, notices

pytestmark = pytest.mark.e2e


async def test_a_plain_message_where_lilith_is_activated_is_told_the_gateway_is_away(
    world: World,
) -> None:
    quiet = world.discord.add_channel(world.guild, "quiet")
    async with lilith_answered(world, AwayGateway) as (hop, bot):  # Lilith is activated
        await world.discord.say(quiet, world.alice, "anyone around?")
        await settled(world, bot)
        answers = len(world.discord.webhook_messages(world.general))

        hop.away = True
        await world.discord.say(world.general, world.alice, "are you still there?")
        await world.discord.say(world.general, world.bob, "hello?")
        await world.discord.say(quiet, world.bob, "just us humans here")
        await settled(world, bot)
        await settled(world, bot, quiet)

    assert notices(world, world.general) == [GATEWAY_AWAY]  # once: the notice's cooldown
    assert notices(world, quiet) == []
    assert len(world.discord.webhook_messages(world.general)) == answers == 1
