"""What the act-by-slug commands say, through the fake Discord, the real bot and the whole
mesh (review of 6fb52235):

- a name meaning another personality is refused with the command's own reason: an overwrite
  (`/character edit|avatar`, `/personality voice set`) "replaces what is there now", a
  removal "cannot be undone";
- `/character edit field:display_name` names the personality by its new name;
- `/channel activate` remembers the channel for the gateway-away notice.
"""

from __future__ import annotations

from typing import Any

import pytest

from tzurot.bot.messages import GATEWAY_AWAY
from tzurot.testing.discord_e2e import World, recording_gateway, running_bot, settled
from tzurot.v1 import gateway_pb2 as gw

from .gateway_away import AwayGateway, notices
from .test_discord_command_replies import slash as managed
from .test_discord_destructive_by_slug import old_and_luna_moon, slash

pytestmark = pytest.mark.e2e


async def test_an_overwrite_by_another_name_says_it_replaces_a_removal_that_it_is_final(
    world: World,
) -> None:
    async with running_bot(world):
        await old_and_luna_moon(world, "Rw")
        edited = await slash(
            world, world.alice, "character", "edit",
            personality="Rw Luna Moon", field="system_prompt", value="x",
        )  # fmt: skip
        voiced = await slash(
            world, world.alice, "personality", "voice", "set",
            personality="Rw Luna Moon", provider="openai", voice_id="alloy",
        )  # fmt: skip
        cleared = await slash(world, world.alice, "history", "clear", personality="Rw Luna Moon")
    for overwrite in (edited, voiced):
        assert "means **Rw Old** (`rw-old`) for you. This replaces what is there now" in overwrite
        assert "cannot be undone" not in overwrite, overwrite
    assert "means **Rw Old** (`rw-old`) for you. This cannot be undone" in cleared, cleared


async def test_a_rename_names_the_personality_by_its_new_name(world: World) -> None:
    async with running_bot(world):
        made = await slash(
            world, world.alice, "character", "create", name="Rn Before", system_prompt="You are."
        )
        assert made.startswith("Created **Rn Before**"), made
        renamed = await slash(
            world, world.alice, "character", "edit",
            personality="rn-before", field="display_name", value="Rn After",
        )  # fmt: skip
    assert renamed == "Updated display_name of **Rn After** (`rn-before`).", renamed


class AwayActivating(AwayGateway):
    async def ActivateChannel(self, request: gw.ActivateChannelRequest, context: Any) -> Any:
        return await self.upstream.ActivateChannel(request)


async def test_a_channel_activated_by_the_command_gets_the_notice(world: World) -> None:
    """Nothing was seen activated in #general before `/channel activate`: only the command
    can have told the bot's memory."""
    await world.set_key(world.alice)
    async with (
        recording_gateway(world, AwayActivating) as (hop, client),
        running_bot(world, gateway=client) as bot,
    ):
        assert isinstance(hop, AwayActivating)
        started = await managed(world, world.alice, "channel", "activate", personality="lilith")
        hop.away = True
        await world.discord.say(world.general, world.bob, "are you there, Lilith?")
        await settled(world, bot)
    assert "Lilith" in started, started
    assert notices(world, world.general) == [GATEWAY_AWAY]
