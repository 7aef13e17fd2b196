"""The discord.py client: wires the message flow, reactions and slash commands to events.

Discord's REST base comes from settings (`discord.http.Route.BASE`, which webhooks and
interaction callbacks use too); the websocket URL from Discord's `/gateway/bot` answer, as
Discord asks clients to do. The client is discord.py's AutoShardedClient: with `shard_count`
set it runs this process's group of shards (`BotSettings.shard_ids`), else every shard
Discord recommends. Discord sends each guild's events to one shard only.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aiohttp
import discord
import structlog
import yarl
from discord import app_commands
from discord.gateway import DiscordWebSocket

from tzurot.bot.commands.registry import add_commands
from tzurot.bot.config import BotSettings
from tzurot.bot.events import EventListener
from tzurot.bot.gateway_client import GatewayClient
from tzurot.bot.messages import MessageFlow
from tzurot.bot.pluralkit import PluralKit
from tzurot.bot.sharding import IdentifySchedule, command_hash
from tzurot.bot.webhooks import WebhookPool

log = structlog.get_logger(__name__)


def bot_intents() -> discord.Intents:
    """Guilds, guild messages, reactions and message content (a privileged intent)."""
    intents = discord.Intents.none()
    intents.guilds = True
    intents.guild_messages = True
    intents.guild_reactions = True
    intents.message_content = True
    return intents


class TzurotBot(discord.AutoShardedClient):
    def __init__(self, gateway: GatewayClient, settings: BotSettings) -> None:
        discord.http.Route.BASE = settings.discord_api_base.rstrip("/")
        sharding: dict[str, Any] = {}
        if settings.shard_ids is not None:
            sharding = {"shard_ids": settings.shard_ids, "shard_count": settings.shard_count}
        super().__init__(
            intents=bot_intents(),
            **sharding,
            allowed_mentions=discord.AllowedMentions(everyone=False, roles=False),
            guild_ready_timeout=settings.guild_ready_timeout_seconds,
        )
        self.settings = settings
        self.gateway = gateway
        self.webhooks = WebhookPool(settings.webhook_name)
        self.tree = app_commands.CommandTree(self)
        self._pk_session: aiohttp.ClientSession | None = None
        self.flow: MessageFlow | None = None
        self.synced: list[app_commands.AppCommand] = []
        self.listeners: list[EventListener] = []
        self._listening: list[asyncio.Task[None]] = []
        self._identify = IdentifySchedule(settings.identify_delay_seconds)

    async def setup_hook(self) -> None:
        _, url, limits = await self.http.get_bot_gateway()
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)
        self._identify.max_concurrency = int(limits.get("max_concurrency") or 1)
        pluralkit = None
        if self.settings.pluralkit_enabled:
            self._pk_session = aiohttp.ClientSession()
            pluralkit = PluralKit(
                self._pk_session,
                self.settings.pluralkit_api_base,
                retry_delay=self.settings.pluralkit_retry_delay_seconds,
            )
        self.flow = MessageFlow(self, self.gateway, self.webhooks, self.settings, pluralkit)
        add_commands(self.tree, self.gateway, self.flow)
        self.synced = await self.sync_commands()
        self._listen(self.flow)

    def _listen(self, flow: MessageFlow) -> None:
        """One event stream per shard this process runs (all guilds when unsharded)."""
        count = self.settings.shard_count or 1
        shards = self.settings.shard_ids if self.settings.shard_ids is not None else [0]
        if count <= 1:
            shards = [0]
        for shard in shards:
            listener = EventListener(
                self, self.gateway, flow, shard_id=shard, shard_count=max(count, 1)
            )
            self.listeners.append(listener)
            self._listening.append(asyncio.create_task(listener.run()))

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """Discord's IDENTIFY rate: each shard at its slot in the `max_concurrency` buckets."""
        await self._identify.wait(shard_id or 0)

    async def sync_commands(self) -> list[app_commands.AppCommand]:
        """Per guild in development (instant), globally in production; by the first bot
        process only, and only when the command set differs from what Discord has."""
        if not self.settings.syncs_commands:
            return []
        guild = None
        if self.settings.dev_guild_id is not None:
            guild = discord.Object(self.settings.dev_guild_id)
            self.tree.copy_global_to(guild=guild)
        app_id = self.application_id
        assert app_id is not None  # set by login
        # What tree.sync would send.
        mine = [c.to_dict(self.tree) for c in self.tree._get_all_commands(guild=guild)]
        if guild is None:
            theirs = await self.http.get_global_commands(app_id)
        else:
            theirs = await self.http.get_guild_commands(app_id, guild.id)
        if command_hash(mine) == command_hash(theirs):
            log.info("bot.commands_unchanged", commands=len(mine))
            return []
        log.info("bot.commands_synced", commands=len(mine))
        return await self.tree.sync(guild=guild)

    async def close(self) -> None:
        """Lets answers in flight finish (within the grace period), then disconnects. The
        events being handled (a dead bot's answer being finished) finish within it too, and
        are acknowledged before their streams end: cut short, a hand-over would be handed
        to the next bot while this one still posts it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.grace_seconds
        await asyncio.gather(
            *(listener.stop_taking(self.settings.grace_seconds) for listener in self.listeners)
        )
        for task in self._listening:
            task.cancel()
        for task in self._listening:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.flow is not None:
            await self.flow.idle(max(0.0, deadline - loop.time()))
        await super().close()
        if self._pk_session is not None:
            await self._pk_session.close()

    async def on_ready(self) -> None:
        log.info(
            "bot.ready",
            user=str(self.user),
            guilds=len(self.guilds),
            shards=sorted(self.shards),
            shard_count=self.shard_count,
        )

    async def on_message(self, message: discord.Message) -> None:
        if self.flow is not None:
            await self.flow.on_message(message)

    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        if self.flow is not None:
            await self.flow.on_reaction(payload)

    async def on_raw_message_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        if self.flow is not None:
            await self.flow.on_edit(payload.message)

    async def on_raw_message_delete(self, payload: discord.RawMessageDeleteEvent) -> None:
        if self.flow is not None:
            self.flow.on_delete(payload.message_id)
