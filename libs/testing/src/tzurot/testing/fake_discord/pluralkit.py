"""PluralKit's API: `GET /v2/messages/{id}` for proxied messages the test registers."""

from __future__ import annotations

from aiohttp import web

from tzurot.testing.fake_discord.wire import Json, iso, json_response


class FakePluralKit:
    """PluralKit's API: `GET /v2/messages/{id}` for proxied messages the test registers."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host, self.port = host, 0
        self.proxied: dict[int, Json] = {}
        self.lookups: list[int] = []
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v2"

    def register(self, message_id: int, sender: Json, member_name: str, original: int = 0) -> None:
        self.proxied[message_id] = {
            "timestamp": iso(),
            "id": str(message_id),
            "original": str(original or message_id - 1),
            "sender": sender["id"],
            "channel": "0",
            "guild": "0",
            "system": {"id": "abcde", "name": f"{sender['username']}'s system"},
            "member": {"id": "fghij", "name": member_name, "display_name": member_name},
        }

    async def __aenter__(self) -> FakePluralKit:
        app = web.Application()
        app.router.add_get("/v2/messages/{id}", self._message)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, 0).start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _message(self, request: web.Request) -> web.Response:
        message_id = int(request.match_info["id"])
        self.lookups.append(message_id)
        found = self.proxied.get(message_id)
        if found is None:
            return json_response({"message": "Message not found.", "code": 20006}, status=404)
        return json_response(found)
