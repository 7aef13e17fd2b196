"""The gateway stand-in the gateway-away tests share (test_discord_gateway_away_activated.py,
test_discord_chosen_overwrites.py, test_discord_chosen_replies.py): the real gateway answering
UNAVAILABLE while `away`, the bot behind it once Lilith (activated in #general on Alice's key)
has answered there, and what the bot said itself in a channel."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar, cast

import grpc

from tzurot.bot.bot import TzurotBot
from tzurot.testing.discord_e2e import (
    RecordingGateway,
    World,
    member_actor,
    recording_gateway,
    running_bot,
)
from tzurot.testing.fake_discord import Json
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw


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


Away = TypeVar("Away", bound=AwayGateway)


def notices(world: World, channel: Json) -> list[str]:
    """What the bot said itself (not as a personality) in `channel`."""
    bot = str(world.discord.bot_user["id"])
    return [
        m.content
        for m in world.discord.messages.get(int(channel["id"]), [])
        if not m.webhook_id and m.data["author"]["id"] == bot
    ]


@asynccontextmanager
async def lilith_answered(
    world: World, kind: Callable[[Any], Away]
) -> AsyncIterator[tuple[Away, TzurotBot]]:
    """Lilith activated in #general on Alice's key, the bot behind a `kind` stand-in, and the
    gateway's answer there as Lilith to Alice's "hello there" delivered (the bot has seen
    #general activated); the stand-in is still present (`away` False)."""
    await world.set_key(world.alice)
    await world.cli.ActivateChannel(
        gw.ActivateChannelRequest(
            actor=member_actor(world.alice),
            location=common.Location(guild_id=world.guild["id"], channel_id=world.general["id"]),
            personality="lilith",
            manage_channels=True,
        )
    )
    async with (
        recording_gateway(world, kind) as (hop, client),
        running_bot(world, gateway=client) as bot,
    ):
        said = await world.discord.say(world.general, world.alice, "hello there")
        await world.delivered(f"{said.id}:lilith")
        yield cast(Away, hop), bot  # recording_gateway's hop is the one `kind` made
