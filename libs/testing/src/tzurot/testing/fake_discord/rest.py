"""The REST routes the bot uses: users, application, commands, channels, webhooks, interactions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from tzurot.testing.fake_discord.rules import API_PREFIX
from tzurot.testing.fake_discord.webhooks import Webhooks
from tzurot.testing.fake_discord.wire import json_response, not_found


class Rest(Webhooks):
    """The REST handlers, each answering as Discord does."""

    # ---- REST ----

    @web.middleware
    async def _record_middleware(
        self, request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
        if request.path.startswith(API_PREFIX) and not request.path.startswith(
            f"{API_PREFIX}/interactions/"
        ):
            auth = request.headers.get("Authorization", "")
            webhook_call = request.path.startswith(f"{API_PREFIX}/webhooks/")
            if not webhook_call and auth != f"Bot {self.token}":
                return json_response({"message": "401: Unauthorized", "code": 0}, status=401)
        self.requests.append((request.method, request.path))
        try:
            response: web.StreamResponse = await handler(request)
            return response
        finally:
            self._touch()

    async def _gateway_bot(self, _: web.Request) -> web.Response:
        return json_response(
            {
                "url": self.gateway_url,
                "shards": 1,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 1000,
                    "reset_after": 0,
                    "max_concurrency": self.max_concurrency,
                },
            }
        )

    async def _me(self, _: web.Request) -> web.Response:
        return json_response(self.bot_user)

    async def _get_user(self, request: web.Request) -> web.Response:
        user = self.users.get(int(request.match_info["user_id"]))
        if user is None:
            return not_found(10013, "Unknown User")
        return json_response(user)

    async def _application(self, _: web.Request) -> web.Response:
        return json_response(
            {
                "id": str(self.application_id),
                "name": "Tzurot",
                "description": "",
                "icon": None,
                "bot_public": True,
                "bot_require_code_grant": False,
                "owner": self.owner,
                "verify_key": "0" * 64,
                "flags": 0,
            }
        )

    async def _sync(self, request: web.Request, scope: str) -> web.Response:
        commands = await request.json()
        stored = [
            {
                "description": "",  # Discord answers "" for context menus
                **c,
                "id": str(self.snowflake()),
                "application_id": str(self.application_id),
                "version": "1",
                "default_member_permissions": c.get("default_member_permissions"),
            }
            for c in commands
        ]
        self.synced_commands[scope] = stored
        return json_response(stored)

    async def _fetch_global(self, _: web.Request) -> web.Response:
        return json_response(self.synced_commands.get("global", []))

    async def _fetch_guild(self, request: web.Request) -> web.Response:
        return json_response(self.synced_commands.get(request.match_info["guild"], []))

    async def _sync_global(self, request: web.Request) -> web.Response:
        return await self._sync(request, "global")

    async def _sync_guild(self, request: web.Request) -> web.Response:
        return await self._sync(request, request.match_info["guild"])
