"""PluralKit as it really behaves (written from its API docs and proxy code).

- `proxy` plays a proxied message: the user's message arrives, PluralKit reposts it through its
  own webhook first (with a reply embed when the user replied to something), records it, and
  deletes the original about 1000 ms later.
- `GET /v2/messages/{id}` answers for the repost's id or the original's, 404 otherwise.
- 10 requests per second on that endpoint: 429 with `retry_after` in milliseconds.
- A request without a `User-Agent` is a 400.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from aiohttp import web

from tzurot.testing.fake_discord.records import Posted
from tzurot.testing.fake_discord.wire import Json, iso, json_response

if TYPE_CHECKING:
    from tzurot.testing.fake_discord.server import FakeDiscord

REPLY_MARK = "\u2004\u21a9\ufe0f"  # how PluralKit's reply embeds end their author name
DELETE_DELAY = 1.0


class FakePluralKit:
    def __init__(self, host: str = "127.0.0.1", *, rate: tuple[int, float] = (10, 1.0)) -> None:
        self.host, self.port = host, 0
        self.proxied: dict[int, Json] = {}
        self.by_original: dict[int, int] = {}
        self.lookups: list[int] = []
        self.user_agents: list[str] = []
        self.refused: list[int] = []  # HTTP statuses of refused requests (400, 429)
        self.rate = rate
        self.delete_delay = DELETE_DELAY
        self._hits: list[float] = []
        self._hooks: dict[int, int] = {}  # channel id -> PluralKit's webhook id there
        self._tasks: set[asyncio.Task[None]] = set()
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
        if original:
            self.by_original[original] = message_id

    async def proxy(
        self,
        discord: FakeDiscord,
        channel: Json,
        sender: Json,
        content: str,
        member_name: str,
        *,
        reply_to: Posted | None = None,
    ) -> tuple[Posted, Posted]:
        """The sender writes `content` with their proxy tags; PluralKit reposts it as
        `member_name` (the repost first), then deletes the original `delete_delay` later."""
        original = await discord.say(channel, sender, content, reply_to=reply_to)
        hook = self._hooks.setdefault(int(channel["id"]), discord.snowflake())
        extra: Json = {}
        if reply_to is not None:
            link = (
                f"https://discord.com/channels/{channel['guild_id']}/"
                f"{reply_to.channel_id}/{reply_to.id}"
            )
            extra["embeds"] = [
                {
                    "type": "rich",
                    "author": {"name": f"{reply_to.author_name}{REPLY_MARK}", "url": link},
                    "description": f"**[Reply to:]({link})** {reply_to.content[:100]}",
                }
            ]
        proxy_user = {
            "id": str(hook),
            "username": member_name,
            "discriminator": "0000",
            "avatar": None,
            "bot": True,
        }
        repost_id = discord.snowflake()
        self.register(repost_id, sender, member_name, original=original.id)
        repost = await discord.say(
            channel,
            proxy_user,
            content,
            message_id=repost_id,
            webhook_id=hook,
            extra=extra,
        )
        task = asyncio.create_task(self._delete_later(discord, original))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return original, repost

    async def _delete_later(self, discord: FakeDiscord, original: Posted) -> None:
        await asyncio.sleep(self.delete_delay)
        await discord.delete_message(original)

    async def __aenter__(self) -> FakePluralKit:
        app = web.Application()
        app.router.add_get("/v2/messages/{id}", self._message)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, 0).start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def __aexit__(self, *_: object) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()

    def _limited(self) -> float:
        """Milliseconds to wait if the request is over the limit, else 0 (and counts it)."""
        limit, per = self.rate
        now = time.monotonic()
        self._hits = [t for t in self._hits if now - t < per]
        if len(self._hits) >= limit:
            return (per - (now - self._hits[0])) * 1000
        self._hits.append(now)
        return 0.0

    async def _message(self, request: web.Request) -> web.Response:
        agent = request.headers.get("User-Agent", "")
        if not agent.strip():
            self.refused.append(400)
            return json_response(
                {"message": "User-Agent header is required", "code": 0}, status=400
            )
        self.user_agents.append(agent)
        wait_ms = self._limited()
        if wait_ms:
            self.refused.append(429)
            return json_response(
                {"message": "429: too many requests", "retry_after": int(wait_ms) + 1, "code": 0},
                status=429,
                headers={"X-RateLimit-Limit": str(self.rate[0]), "X-RateLimit-Scope": "message"},
            )
        message_id = int(request.match_info["id"])
        self.lookups.append(message_id)
        found = self.proxied.get(message_id) or self.proxied.get(
            self.by_original.get(message_id, -1), None
        )
        if found is None:
            return json_response({"message": "Message not found.", "code": 20006}, status=404)
        return json_response(found)
