"""One webhook per channel, created on demand and cached, to post as a personality."""

from __future__ import annotations

import asyncio

import discord

WEBHOOK_NAME = "Tzurot"


class WebhookCache:
    def __init__(self) -> None:
        self._hooks: dict[int, discord.Webhook] = {}
        self._locks: dict[int, asyncio.Lock] = {}

    async def for_channel(self, channel: discord.TextChannel) -> discord.Webhook:
        """The channel's Tzurot webhook; concurrent first uses create only one."""
        if channel.id in self._hooks:
            return self._hooks[channel.id]
        async with self._locks.setdefault(channel.id, asyncio.Lock()):
            if channel.id not in self._hooks:
                existing = [h for h in await channel.webhooks() if h.name == WEBHOOK_NAME]
                hook = existing[0] if existing else await channel.create_webhook(name=WEBHOOK_NAME)
                self._hooks[channel.id] = hook
        return self._hooks[channel.id]

    def forget(self, channel_id: int) -> None:
        self._hooks.pop(channel_id, None)
