"""The bot's own permission check behind Discord's: `/channel` is registered with
`default_member_permissions` Manage Channels, so Discord's client does not offer it to a member
without it (the fake refuses such an invocation: CommandUnavailable); but a server admin may
allow the command to anyone in Integrations settings (discord-api-docs Application Commands
"Application Command Permissions Object": command-level overwrites override
`default_member_permissions`), and then the bot's `has_permissions(manage_channels=True)` must
refuse, telling the member why, only to them."""

from __future__ import annotations

import pytest

from tzurot.testing.discord_e2e import World, running_bot
from tzurot.testing.fake_discord import CommandUnavailable
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

pytestmark = pytest.mark.e2e
USER_PERMISSION = 2  # Application Command Permission Type USER


async def test_a_member_allowed_the_command_without_manage_channels_is_refused_by_the_bot(
    world: World,
) -> None:
    await world.set_key(world.alice)
    async with running_bot(world):
        with pytest.raises(CommandUnavailable, match="default_member_permissions 16"):
            await world.discord.slash(
                world.general,
                world.bob,
                "channel",
                {"personality": "Lilith"},
                subcommand=["activate"],
            )
        allow_bob = {"id": world.bob["id"], "type": USER_PERMISSION, "permission": True}
        world.discord.set_command_permissions(world.guild, "channel", [allow_bob])
        asked = await world.discord.slash(
            world.general, world.bob, "channel", {"personality": "Lilith"}, subcommand=["activate"]
        )
        await world.discord.wait_until(lambda: any(asked.texts()))
    assert [t for t in asked.texts() if t] == ["You need the Manage Channels permission for this."]
    assert asked.is_ephemeral()
    assert not world.discord.webhook_messages(world.general)
    location = common.Location(guild_id=str(world.guild["id"]), channel_id=str(world.general["id"]))
    listed = await world.cli.ListChannelActivations(
        gw.ListChannelActivationsRequest(location=location)
    )
    assert not listed.activations  # nothing activated
    assert world.discord.refusals == []
