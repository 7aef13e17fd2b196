"""/channel activate|deactivate|list|talkativeness: the personalities that answer every
message in a channel (several make a group channel). Activating or deactivating here also
tells the bot's memory of activated channels (`activated.py`, for the gateway-away notice)."""

from __future__ import annotations

import discord
from discord import app_commands

from tzurot.bot.activated import ActivatedChannels
from tzurot.bot.commands.common import actor, reply
from tzurot.bot.commands.lookups import personality_choices
from tzurot.bot.commands.names import named_reply
from tzurot.bot.commands.options import PersonalityName
from tzurot.bot.delivery import channel_key
from tzurot.bot.gateway_client import GatewayClient, location_of
from tzurot.runtime.errors import TzurotError
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw


def render_activations(reply_: gw.ListChannelActivationsResponse) -> str:
    if not reply_.activations:
        return "No personality answers every message here. `/channel activate` adds one."
    lines = [
        f"- **{a.personality.display_name}** (talkativeness {a.personality.talkativeness:.2f})"
        for a in reply_.activations
    ]
    kind = "group channel" if len(lines) > 1 else "channel"
    return f"Answering every message in this {kind}:\n" + "\n".join(lines)


def activated_text(a: gw.ChannelActivation, *, already: bool) -> str:
    """What `/channel activate` did (`already`: it answered every message here before)."""
    name, stop = a.personality.display_name, f"`/channel deactivate {a.personality.slug}`"
    if already:
        return f"**{name}** already answers every message here; nothing changed. {stop} stops it."
    return (
        f"**{name}** now answers every message here. With several personalities, they take "
        f"turns in natural order. {stop} stops it."
    )


@app_commands.default_permissions(manage_channels=True)
@app_commands.guild_only()
class ChannelCommands(app_commands.Group):
    def __init__(self, gateway: GatewayClient, activated: ActivatedChannels | None = None) -> None:
        super().__init__(name="channel", description="Personalities that answer in a channel")
        self.gateway = gateway
        self._activated = ActivatedChannels() if activated is None else activated

    @app_commands.command(name="activate", description="Add a personality that answers here")
    @app_commands.describe(personality="The personality to answer every message in this channel")
    @app_commands.checks.has_permissions(manage_channels=True)
    async def activate(
        self, interaction: discord.Interaction, personality: PersonalityName
    ) -> None:
        location = location_of(interaction.channel, interaction.guild)

        async def activated() -> tuple[bool, gw.ChannelActivation]:
            # ActivateChannelResponse is the same whether it was active here already or not.
            try:
                listed = await self.gateway.call(
                    self.gateway.stub.ListChannelActivations(
                        gw.ListChannelActivationsRequest(location=location)
                    )
                )
            except TzurotError:
                listed = gw.ListChannelActivationsResponse()  # unknown: told as a change
            done = await self.gateway.stub.ActivateChannel(
                gw.ActivateChannelRequest(
                    actor=actor(interaction),
                    location=location,
                    personality=personality,
                    manage_channels=bool(interaction.permissions.manage_channels),
                )
            )
            ids = {a.personality.id for a in listed.activations}
            self._activated.note(channel_key(interaction.channel), activated=True)
            return done.activation.personality.id in ids, done.activation

        await reply(
            interaction,
            self.gateway,
            activated,
            lambda r: activated_text(r[1], already=r[0]),
            ephemeral=False,
        )

    @app_commands.command(
        name="deactivate", description="Stop a personality (or all) answering every message"
    )
    @app_commands.describe(personality="Leave empty to stop every personality here")
    @app_commands.checks.has_permissions(manage_channels=True)
    async def deactivate(
        self, interaction: discord.Interaction, personality: PersonalityName | None = None
    ) -> None:
        location = location_of(interaction.channel, interaction.guild)

        async def deactivated() -> gw.DeactivateChannelResponse:
            done = await self.gateway.stub.DeactivateChannel(
                gw.DeactivateChannelRequest(
                    actor=actor(interaction),
                    location=location,
                    personality=personality or "",
                    manage_channels=bool(interaction.permissions.manage_channels),
                )
            )
            # Forgotten, even with others still activated here: the next message's round
            # (PlanChannelReply) tells again, and a notice nobody would have answered is worse
            # than one missed.
            self._activated.note(channel_key(interaction.channel), activated=False)
            return done

        await named_reply(
            interaction,
            self.gateway,
            personality or "",
            deactivated,
            lambda _, name: (
                f"**{name}** no longer answers every message here."
                if personality
                else "No personality answers every message here any more."
            ),
            ephemeral=False,
        )

    @app_commands.command(name="list", description="Who answers every message here")
    async def list_(self, interaction: discord.Interaction) -> None:
        location = location_of(interaction.channel, interaction.guild)
        await reply(
            interaction,
            self.gateway,
            lambda: self.gateway.stub.ListChannelActivations(
                gw.ListChannelActivationsRequest(location=location)
            ),
            render_activations,
        )

    @app_commands.command(
        name="talkativeness",
        description="How often a personality speaks up in group channels (its owner)",
    )
    @app_commands.describe(
        personality="A personality you own",
        value="0 never unprompted, 1 always; the default is 0.5",
    )
    async def talkativeness(
        self,
        interaction: discord.Interaction,
        personality: PersonalityName,
        value: app_commands.Range[float, 0.0, 1.0],
    ) -> None:
        await reply(
            interaction,
            self.gateway,
            lambda: self.gateway.stub.UpdatePersonality(
                gw.UpdatePersonalityRequest(
                    actor=actor(interaction),
                    personality=common.Personality(slug=personality, talkativeness=value),
                    update_paths=["talkativeness"],
                )
            ),
            lambda r: (
                f"**{r.personality.display_name}** now has talkativeness "
                f"{r.personality.talkativeness:.2f}."
            ),
        )

    @activate.autocomplete("personality")
    @deactivate.autocomplete("personality")
    @talkativeness.autocomplete("personality")
    async def _personalities(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await personality_choices(self.gateway, interaction, current)

    async def on_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        if isinstance(error, app_commands.MissingPermissions):
            await interaction.response.send_message(
                "You need the Manage Channels permission for this.", ephemeral=True
            )
            return
        raise error
