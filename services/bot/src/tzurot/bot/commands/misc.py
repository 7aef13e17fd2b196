"""/help and the "Inspect" message context menu."""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands

from tzurot.bot.commands import render
from tzurot.bot.commands.common import actor, failure_text, send
from tzurot.bot.gateway_client import GatewayClient, unimplemented
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
**Models** `/llm-config create|list|delete`, `/model set|reset`
**You** `/timezone set|get`, `/persona set|view`, `/history clear|undo`,
`/settings view|set|reset` (you, a personality you own, this channel),
`/settings data export|delete`
**Personalities** `/character create|edit|view|browse|import|export|avatar` (character cards
V2/V3: PNG, JSON, CHARX), `/memory search|prune|stats|incognito|fresh`,
`/skills list|show|enable|disable` (research, links, drawing)
**Lore** `/lorebook import|export|list|attach|detach|delete` (SillyTavern world info)
**Channels** `/channel activate|deactivate` (needs Manage Channels)
**Superusers** `/admin deny add|remove|list` (block or mute users and servers)
Right-click an answer → Apps → **Inspect** to see what informed it."""


def help_command() -> app_commands.Command[Any, Any, None]:
    @app_commands.command(name="help", description="How to use Tzurot")
    async def show_help(interaction: discord.Interaction) -> None:
        await send(interaction, HELP)

    return show_help


def inspect_menu(gateway: GatewayClient, flow: MessageFlow) -> app_commands.ContextMenu:
    async def inspect(interaction: discord.Interaction, message: discord.Message) -> None:
        answer = flow.answer_for(message.id)
        if answer is None or not answer.job_id:
            await send(interaction, "That is not an answer this bot remembers posting.")
            return
        try:
            status = await gateway.call(
                gateway.stub.GetJobStatus(
                    gw.GetJobStatusRequest(job_id=answer.job_id, actor=actor(interaction))
                )
            )
        except TzurotError as err:
            await send(interaction, failure_text(err))
            return
        resolved: common.ResolvedLlmConfig | None = None
        try:
            effective = await gateway.call(
                gateway.stub.GetEffectiveConfig(
                    gw.GetEffectiveConfigRequest(
                        actor=actor(interaction),
                        personality=answer.personality.slug,
                        location=answer.request.location,
                    )
                )
            )
            resolved = effective.effective
        except TzurotError as err:
            if not unimplemented(err):
                raise
        lines = [render.inspect(status.job, resolved)]
        if status.job.HasField("inspection"):
            lines.append(render.inspection(status.job.inspection, answer.request.references))
        else:
            lines.append("Only the person it answered can see what informed it.")
        await send(interaction, "\n".join(lines))

    return app_commands.ContextMenu(name="Inspect", callback=inspect)
