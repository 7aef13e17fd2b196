"""Managing webhooks as Discord allows it (discord-api-docs resources/webhook.mdx).

- Listing and creating need Manage Webhooks (403 50013); only text, voice, stage, news, forum
  and media channels hold webhooks (50024); 15 per channel (30007) and 1000 per guild (30058);
  names follow Create Webhook's rules (rules.py `username_error`: 1-80 characters, no "clyde"
  or "discord").
- Get Webhook and Delete Webhook by id take the bot's token (rest.py: only the
  `/webhooks/{id}/{token}` routes go without), answer 404 10015 Unknown Webhook for an id that
  names none, and need Manage Webhooks in the webhook's channel (Get Webhook not when the
  bot's application owns the webhook).
"""

from __future__ import annotations

from aiohttp import web

from tzurot.testing.fake_discord.channels import Channels
from tzurot.testing.fake_discord.rules import (
    MAX_WEBHOOKS_PER_CHANNEL,
    MAX_WEBHOOKS_PER_GUILD,
    WEBHOOK_CHANNEL_TYPES,
    Permission,
    error,
    username_error,
)
from tzurot.testing.fake_discord.wire import json_response, not_found


class WebhookAdmin(Channels):
    async def _list_webhooks(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        if channel is None:
            return not_found(10003, "Unknown Channel")
        refused = self._needs("list_webhooks", channel, Permission.MANAGE_WEBHOOKS)
        if refused is not None:
            return refused
        hooks = [h for h in self.webhooks.values() if h["channel_id"] == channel["id"]]
        return json_response(hooks)

    async def _create_webhook(self, request: web.Request) -> web.Response:  # noqa: PLR0911  # one refusal per Discord rule
        route = "create_webhook"
        fault = self._fault(route, request)
        if fault is not None:
            return fault
        channel = self._channel(request)
        if channel is None:
            return not_found(10003, "Unknown Channel")
        if channel.get("type") not in WEBHOOK_CHANNEL_TYPES:
            return self.refuse(
                route, 400, error(50024, "Cannot execute action on this channel type")
            )
        refused = self._needs(route, channel, Permission.MANAGE_WEBHOOKS)
        if refused is not None:
            return refused
        here = [h for h in self.webhooks.values() if h["channel_id"] == channel["id"]]
        if len(here) >= MAX_WEBHOOKS_PER_CHANNEL:
            return self.refuse(route, 400, error(30007, "Maximum number of webhooks reached (15)"))
        in_guild = [h for h in self.webhooks.values() if h["guild_id"] == channel["guild_id"]]
        if len(in_guild) >= MAX_WEBHOOKS_PER_GUILD:
            return self.refuse(
                route, 400, error(30058, "Maximum number of webhooks per guild reached (1000)")
            )
        body = await request.json()
        problem = username_error(str(body.get("name") or ""), field_name="name")
        if problem is not None:
            return self.refuse(route, 400, problem)
        return json_response(
            self._new_webhook(int(channel["id"]), str(body["name"]), creator=self.bot_user)
        )

    async def _get_webhook(self, request: web.Request) -> web.Response:
        """Get Webhook (resources/webhook.mdx L152-158): "requires the `MANAGE_WEBHOOKS`
        permission unless the application making the request owns the webhook"."""
        hook = self.webhooks.get(int(request.match_info["hook"]))
        if hook is None:
            return self.refuse("get_webhook", 404, error(10015, "Unknown Webhook"))
        if hook.get("application_id") != str(self.application_id):
            channel = self.channels[int(hook["channel_id"])]
            refused = self._needs("get_webhook", channel, Permission.MANAGE_WEBHOOKS)
            if refused is not None:
                return refused
        return json_response(hook)

    async def _delete_webhook(self, request: web.Request) -> web.Response:
        """Delete Webhook (resources/webhook.mdx L192-195): "Requires the `MANAGE_WEBHOOKS`
        permission"; an id that names no webhook is 404 10015 Unknown Webhook."""
        route = "delete_webhook"
        hook = self.webhooks.get(int(request.match_info["hook"]))
        if hook is None:
            return self.refuse(route, 404, error(10015, "Unknown Webhook"))
        channel = self.channels[int(hook["channel_id"])]
        refused = self._needs(route, channel, Permission.MANAGE_WEBHOOKS)
        if refused is not None:
            return refused
        del self.webhooks[int(hook["id"])]
        return web.Response(status=204)
