"""The gateway-away notice in a channel with a personality activated, through the fake
Discord, the real bot and the mesh: once the gateway has answered a message in #general as
Lilith's (activated there), a plain message there while the gateway is away (no '@', no
reply: what the activated personality answers) is told "The gateway is restarting; try
again in a moment.", once per cooldown; a plain message in a channel where nothing was seen
activated is a human talking to humans, and is told nothing."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from tzurot.bot.messages import GATEWAY_AWAY
from tzurot.testing.discord_e2e import (
    RecordingGateway,
    World,
    member_actor,
    recording_gateway,
    running_bot,
    settled,
)
from tzurot.testing.fake_discord import Json
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

pytestmark = pytest.mark.e2e


class AwayGateway(RecordingGateway):
    """The real gateway, answering UNAVAILABLE (as one restarting) while `away` to what the
    bot asks about a new message: who it addresses, who answers it."""

    def __init__(self, upstream: Any) -> None:
        super().__init__(upstream)
        self.away = False

    async def _refuse_while_away(self, context: Any) -> None:
        if self.away:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the gateway is restarting")

    async def PlanChannelReply(self, request: gw.PlanChannelReplyRequest, context: Any) -> Any:
        await self._refuse_while_away(context)
        return await self.upstream.PlanChannelReply(request)

    async def GetChannelActivation(
        self, request: gw.GetChannelActivationRequest, context: Any
    ) -> Any:
        await self._refuse_while_away(context)
        return await super().GetChannelActivation(request, context)

    async def ResolveMentions(self, request: gw.ResolveMentionsRequest, context: Any) -> Any:
        await self._refuse_while_away(context)
        return await super().ResolveMentions(request, context)


def notices(world: World, channel: Json) -> list[str]:
    """What the bot said itself (not as a personality) in `channel`."""
    bot = str(world.discord.bot_user["id"])
    return [
        m.content
        for m in world.discord.messages.get(int(channel["id"]), [])
        if not m.webhook_id and m.data["author"]["id"] == bot
    ]


async def test_a_plain_message_where_lilith_is_activated_is_told_the_gateway_is_away(
    world: World,
) -> None:
    await world.set_key(world.alice)
    await world.cli.ActivateChannel(
        gw.ActivateChannelRequest(
            actor=member_actor(world.alice),
            location=common.Location(guild_id=world.guild["id"], channel_id=world.general["id"]),
            personality="lilith",
            manage_channels=True,
        )
    )
    quiet = world.discord.add_channel(world.guild, "quiet")
    async with (
        recording_gateway(world, AwayGateway) as (hop, client),
        running_bot(world, gateway=client) as bot,
    ):
        assert isinstance(hop, AwayGateway)
        said = await world.discord.say(world.general, world.alice, "hello there")
        await world.delivered(f"{said.id}:lilith")  # the gateway answered: Lilith is activated
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
