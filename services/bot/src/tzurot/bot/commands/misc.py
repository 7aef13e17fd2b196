"""/help and the "Inspect" message context menu."""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands

from tzurot.bot.commands import render
from tzurot.bot.commands.common import actor, defer, failure_text, send
from tzurot.bot.gateway_client import GatewayClient, location_of, unimplemented
from tzurot.bot.messages import MessageFlow
from tzurot.runtime.errors import TzurotError
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

HELP = """**Talking to personalities**
- Mention one: `@Lilith hi` (names and aliases, any case; up to 5 per message).
- Reply to one of its messages to continue; in an activated channel, just talk.
- React ❌ on its answer to delete it, 🔄 to get a new one (again and again).
- Edit your message and the personality remembers the new text.

**Your key** `/wallet set` (a private form), `/wallet list|remove|test`, `/usage`
**Models** `/llm-config create|list|delete`, `/model set|reset|show` (for you with one
personality, your default, or this channel; `show` says which level won)
**You** `/timezone set|get`, `/persona set|view`, `/history clear|undo`,
`/settings view|set|reset` (you, a personality you own, this channel),
`/settings data export|delete` (a large export comes in parts: `export part:2`, `part:3`…
bring the rest, as each reply says)
**Personalities** `/character create|edit|view|browse|import|export|avatar|link_previews`
(character cards V2/V3: PNG, JSON, CHARX; edit sets the author's note, its depth and cleanup
rules too; alias add|remove: names everyone uses), `/alias add|remove|list` (your own),
`/memory search|browse|delete|prune|stats|incognito|fresh`,
`/skills list|show|enable|disable` (research, links, drawing),
`/personality delete` (one of yours, with all it remembers; asks you to type DELETE)
**Lore** `/lorebook import|export|list|attach|detach|delete` (SillyTavern world info)
**Channels** `/channel activate|deactivate|list` (needs Manage Channels): several
personalities make a group channel, taking turns; name one ("hey Lilith") to pick it.
`/channel talkativeness` (owners), `/freewill on|off|status` (speaking up unprompted)
**News** `/changelog`, `/notifications subscribe|unsubscribe` (needs Manage Server)
**Superusers** `/admin deny add|remove|list` (block or mute users and servers),
`/admin announce` (to every subscribed channel)
Right-click an answer → Apps → **Inspect** to see what informed it."""


def help_command() -> app_commands.Command[Any, Any, None]:
    @app_commands.command(name="help", description="How to use Tzurot")
    async def show_help(interaction: discord.Interaction) -> None:
        await send(interaction, HELP)

    return show_help


def inspect_menu(gateway: GatewayClient, flow: MessageFlow) -> app_commands.ContextMenu:
    async def inspect(interaction: discord.Interaction, message: discord.Message) -> None:
        await defer(interaction)
        who = actor(interaction)
        try:
            # Through the gateway: any answer in history, whichever bot process posted it.
            job = await gateway.job_for_message(who, message.id)
        except TzurotError as err:
            await send(interaction, failure_text(err))
            return
        if job is None:
            await send(interaction, "That is not an answer this bot posted.")
            return
        known = flow.answer_for(message.id)
        personality = known.personality if known is not None else None
        if personality is None:
            personality = await gateway.personality(who, message.author.display_name)
        resolved: common.ResolvedLlmConfig | None = None
        if personality is not None:
            try:
                effective = await gateway.call(
                    gateway.stub.GetEffectiveConfig(
                        gw.GetEffectiveConfigRequest(
                            actor=who,
                            personality=personality.slug,
                            location=location_of(interaction.channel, interaction.guild),
                        )
                    )
                )
                resolved = effective.effective
            except TzurotError as err:
                if not unimplemented(err):
                    raise
        lines = [render.inspect(job, resolved)]
        if job.HasField("inspection"):
            references = list(known.request.references) if known is not None else []
            lines.append(render.inspection(job.inspection, references))
        else:
            lines.append("Only the person it answered can see what informed it.")
        await send(interaction, "\n".join(lines))

    return app_commands.ContextMenu(name="Inspect", callback=inspect)
