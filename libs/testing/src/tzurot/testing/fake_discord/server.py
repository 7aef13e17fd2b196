"""`FakeDiscord`: the aiohttp app serving the REST routes and the gateway websocket."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from tzurot.testing.fake_discord.rest import Rest
from tzurot.testing.fake_discord.rules import API_PREFIX
from tzurot.testing.fake_discord.uploads import MAX_BODY_BYTES


class FakeDiscord(Rest):
    """Start with `async with FakeDiscord() as discord:`; point discord.py at `api_base`.

    `validate_slash_options=False` is for the fake's own unit tests only: `slash` then sends
    any command as given, registered or not; `settings` are DiscordState's (`host`,
    `heartbeat_interval_ms`)."""

    def __init__(self, *, validate_slash_options: bool = True, **settings: Any) -> None:
        super().__init__(**settings)
        self.validate_slash_options = validate_slash_options

    # ---- lifecycle ----

    async def __aenter__(self) -> FakeDiscord:
        # Bodies up to what a message may carry (10 files of the largest tier's limit) are
        # read, so the fake answers a request too large as Discord does (413, 40005), not
        # with aiohttp's own 413.
        app = web.Application(middlewares=[self._record_middleware], client_max_size=MAX_BODY_BYTES)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_get("/attachments/{channel}/{attachment}/{filename}", self._cdn)
        r = API_PREFIX
        routes: list[tuple[str, str, Callable[[web.Request], Any]]] = [
            ("GET", "/gateway/bot", self._gateway_bot),
            ("GET", "/gateway", self._gateway_bot),
            ("GET", "/users/@me", self._me),
            ("GET", "/users/{user_id}", self._get_user),
            ("GET", "/oauth2/applications/@me", self._application),
            ("GET", "/applications/{app}/commands", self._fetch_commands),
            ("GET", "/applications/{app}/guilds/{guild}/commands", self._fetch_commands),
            ("PUT", "/applications/{app}/commands", self._bulk_overwrite_commands),
            ("PUT", "/applications/{app}/guilds/{guild}/commands", self._bulk_overwrite_commands),
            ("POST", "/applications/{app}/commands", self._create_command),
            ("POST", "/applications/{app}/guilds/{guild}/commands", self._create_command),
            ("PATCH", "/applications/{app}/commands/{command}", self._edit_command),
            ("PATCH", "/applications/{app}/guilds/{guild}/commands/{command}", self._edit_command),
            ("GET", "/channels/{channel}", self._get_channel),
            ("GET", "/channels/{channel}/messages/{message}", self._get_message),
            ("POST", "/channels/{channel}/messages", self._create_message),
            ("POST", "/channels/{channel}/typing", self._typing),
            ("GET", "/channels/{channel}/thread-members/{user}", self._get_thread_member),
            ("GET", "/channels/{channel}/webhooks", self._list_webhooks),
            ("POST", "/channels/{channel}/webhooks", self._create_webhook),
            ("GET", "/guilds/{guild}/members/{user}", self._get_member),
            ("GET", "/webhooks/{hook}", self._get_webhook),
            ("DELETE", "/webhooks/{hook}", self._delete_webhook),
            ("POST", "/webhooks/{hook}/{token}", self._execute_webhook),
            ("GET", "/webhooks/{hook}/{token}/messages/{message}", self._get_webhook_message),
            ("PATCH", "/webhooks/{hook}/{token}/messages/{message}", self._edit_webhook_message),
            ("DELETE", "/webhooks/{hook}/{token}/messages/{message}", self._delete_hook_message),
            ("POST", "/interactions/{id}/{token}/callback", self._interaction_callback),
        ]
        for method, path, handler in routes:
            app.router.add_route(method, r + path, handler)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def __aexit__(self, *_: object) -> None:
        for session in list(self.sessions):
            await session.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _cdn(self, request: web.Request) -> web.Response:
        """An uploaded attachment's bytes (Discord's CDN); 404 for an unknown one."""
        found = self.files.get(int(request.match_info["attachment"]))
        if found is None:
            raise web.HTTPNotFound()
        data, content_type = found
        return web.Response(body=data, content_type=content_type)
