"""The REST routes the bot uses: users, application, commands, channels, webhooks, interactions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from tzurot.testing.fake_discord.application_commands import ApplicationCommands
from tzurot.testing.fake_discord.rules import API_PREFIX
from tzurot.testing.fake_discord.wire import json_response, not_found


def _token_route(path: str) -> bool:
    """A webhook route addressed by its token (`/webhooks/{id}/{token}...`): it takes no
    `Authorization` (resources/webhook.mdx); `/webhooks/{id}` alone needs the bot's."""
    parts = path.removeprefix(f"{API_PREFIX}/").split("/")
    return len(parts) >= 3 and parts[0] == "webhooks"  # webhooks/{id}/{token}


class Rest(ApplicationCommands):
    """The REST handlers, each answering as Discord does."""

    # ---- REST ----

    @web.middleware
    async def _record_middleware(
        self, request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
        """Authentication (the bot's token, except on the webhook-token and interaction
        routes), the record of every request, and the global rate limit (rate_limits.py)."""
        if request.path.startswith(API_PREFIX) and not request.path.startswith(
            f"{API_PREFIX}/interactions/"
        ):
            auth = request.headers.get("Authorization", "")
            if not _token_route(request.path) and auth != f"Bot {self.token}":
                return json_response({"message": "401: Unauthorized", "code": 0}, status=401)
        self.requests.append((request.method, request.path))
        try:
            route = getattr(request.match_info.handler, "__name__", "").lstrip("_")
            limited = self._globally_limited(route, request)
            if limited is not None:
                return limited
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
