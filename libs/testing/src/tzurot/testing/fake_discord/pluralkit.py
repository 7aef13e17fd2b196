"""PluralKit as it really behaves (written from its API docs, docs/content/api/*.md, and its
API and proxy code: crates/api/src/middleware/, PluralKit.API, PluralKit.Bot/Proxy).

- `proxy` plays a proxied message: the user's message arrives, PluralKit reposts it through its
  own webhook first (with a reply embed when the user replied to something), records it only
  then (`record_delay` after the repost: its database write follows the webhook call), and
  deletes the original about 1000 ms after the repost, once the record is saved.
- `GET /v2/messages/{id}` answers for the repost's id, or for the original's only within 30
  minutes (the `original_mid` key in Redis expires); 404 code 20006 otherwise; 400 for an id
  that is not a snowflake. The message object has every documented key (`null` when unset).
- The `message` scope's rate, 10 a second, is PluralKit's GCRA (ratelimit.lua and
  ratelimit.rs): a bucket of 10 refilled one every 100 ms, where a request runs only while one
  more would remain after it (`remaining > 0`): 9 run at once, the tenth is refused with
  `retry_after` 0 yet counted. A refusal is a 429 whose body has `retry_after` (ms) and
  `scope`; every answer past the User-Agent check has `X-RateLimit-Limit`/`-Remaining`/
  `-Reset` (UNIX seconds, as the code sends it; the docs say milliseconds)/`-Scope`.
- A request without a `User-Agent` is a 400 (checked before the rate limit, so not counted).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from aiohttp import web

from tzurot.testing.fake_discord.records import Posted
from tzurot.testing.fake_discord.rules import DISCORD_EPOCH_MS
from tzurot.testing.fake_discord.wire import Json, iso, json_response

if TYPE_CHECKING:
    from tzurot.testing.fake_discord.server import FakeDiscord

REPLY_MARK = "\u2004\u21a9\ufe0f"  # how PluralKit's reply embeds end their author name
DELETE_DELAY = 1.0
ORIGINAL_TTL = 30 * 60.0  # RedisService.SetOriginalMid: expiry 30 minutes
SCOPE = "message"


class FakePluralKit:
    def __init__(
        self,
        host: str = "127.0.0.1",
        *,
        rate: tuple[int, float] = (10, 1.0),
        record_delay: float = 0.0,
        original_ttl: float = ORIGINAL_TTL,
    ) -> None:
        self.host, self.port = host, 0
        self.proxied: dict[int, Json] = {}
        self.by_original: dict[int, int] = {}
        self.lookups: list[int] = []
        self.user_agents: list[str] = []
        self.refused: list[int] = []  # HTTP statuses of refused requests (400, 429)
        self.rate = rate  # (requests, per seconds): the GCRA's rate and period
        self.delete_delay = DELETE_DELAY
        self.record_delay = record_delay
        self.original_ttl = original_ttl
        self._original_at: dict[int, float] = {}  # original id -> when its Redis key was set
        self._tat: int | None = None  # the GCRA's theoretical arrival time (ns)
        self.clock: Callable[[], float] = time.monotonic  # a test may stop or move time
        self._hooks: dict[int, int] = {}  # channel id -> PluralKit's webhook id there
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v2"

    def register(
        self,
        message_id: int,
        sender: Json,
        member_name: str,
        original: int = 0,
        *,
        channel: Json | None = None,
    ) -> None:
        """PluralKit's record of a proxied message (FullMessage.ToJson, as a non-owner sees it:
        every key, private or unset ones `null`)."""
        self.proxied[message_id] = {
            "timestamp": _snowflake_time(message_id),
            "id": str(message_id),
            "original": str(original or message_id - 1),
            "sender": sender["id"],
            "channel": str(channel["id"]) if channel else "0",
            "guild": str(channel.get("guild_id")) if channel and channel.get("guild_id") else None,
            "system": _system(f"{sender['username']}'s system"),
            "member": _member(member_name),
        }
        if original:
            self.by_original[original] = message_id
            self._original_at[original] = self.clock()

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
        repost = await discord.say(
            channel,
            proxy_user,
            content,
            message_id=repost_id,
            webhook_id=hook,
            extra=extra,
        )

        def record() -> None:  # HandleProxyExecutedActions: saved after the webhook posted
            self.register(repost_id, sender, member_name, original=original.id, channel=channel)

        if self.record_delay <= 0:
            record()
        task = asyncio.create_task(self._after_repost(discord, original, record))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return original, repost

    async def _after_repost(
        self, discord: FakeDiscord, original: Posted, record: Callable[[], None]
    ) -> None:
        """The record is saved `record_delay` after the repost; the original is deleted
        `delete_delay` after it, and not before the record is saved."""
        if self.record_delay > 0:
            await asyncio.sleep(self.record_delay)
            record()
        await asyncio.sleep(max(0.0, self.delete_delay - max(self.record_delay, 0.0)))
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

    def _gcra(self) -> tuple[int, float, float]:
        """ratelimit.lua, as PluralKit runs it: (remaining, retry_after s or -1, reset_after s).
        A burst of `rate` (the burst is the rate), one more every period/rate seconds; a request
        that is allowed (remaining >= 0) moves the arrival time even when remaining is 0.
        Kept in whole nanoseconds, so the edges are exact (Redis computes in floats)."""
        rate, period = self.rate
        emission = round(period * 1e9) // rate
        now = round(self.clock() * 1e9)
        tat = max(self._tat if self._tat is not None else now, now)
        new_tat = tat + emission
        diff = now - (new_tat - emission * rate)
        if diff < 0:
            return 0, -diff / 1e9, (tat - now) / 1e9
        self._tat = new_tat
        return diff // emission, -1.0, (new_tat - now) / 1e9  # Redis truncates to an integer

    async def _message(self, request: web.Request) -> web.Response:
        agent = request.headers.get("User-Agent", "")
        if not agent.strip():
            self.refused.append(400)
            return json_response(
                {"message": "User-Agent header is required", "code": 0}, status=400
            )
        self.user_agents.append(agent)
        remaining, retry_after, reset_after = self._gcra()
        headers = {  # do_request_ratelimited: on every answer past it
            "X-RateLimit-Scope": SCOPE,
            "X-RateLimit-Limit": str(self.rate[0]),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": str(int(time.time()) + int(reset_after)),
        }
        if remaining <= 0:  # `remaining > 0` runs the request, anything else is refused
            self.refused.append(429)
            wait_ms = max(0, math.ceil(retry_after * 1000))  # -1 s casts to 0 (u64)
            body = {
                "message": "429: too many requests",
                "retry_after": wait_ms,
                "scope": SCOPE,
                "code": 0,
            }
            return json_response(body, status=429, headers=headers)
        raw = request.match_info["id"]
        if not raw.isdigit() or int(raw) >= 2**64:  # `ulong messageId`: GenericBadRequest
            self.refused.append(400)
            return json_response(
                {"message": "400: Bad Request", "code": 0}, status=400, headers=headers
            )
        message_id = int(raw)
        self.lookups.append(message_id)
        found = self.proxied.get(message_id)
        by_original = self.by_original.get(message_id)
        recorded = self._original_at.get(message_id, 0.0)
        fresh = self.clock() - recorded < self.original_ttl  # the Redis key has not expired
        if found is None and by_original is not None and fresh:
            found = self.proxied.get(by_original)
        if found is None:
            return json_response(
                {"message": "Message not found.", "code": 20006}, status=404, headers=headers
            )
        return json_response(found, headers=headers)


def _snowflake_time(snowflake: int) -> str:
    """The message's time from its id, as NodaTime's Instant prints it."""
    ms = (snowflake >> 22) + DISCORD_EPOCH_MS
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _system(name: str) -> Json:
    """The system model's keys (docs/content/api/models.md), none private."""
    return {
        "id": "abcde",
        "uuid": "2f1b8a1e-0b8c-4c55-9a3f-6d2b0c1e7a01",
        "name": name,
        "description": None,
        "tag": None,
        "pronouns": None,
        "avatar_url": None,
        "banner": None,
        "color": None,
        "created": iso(),
        "privacy": None,  # only the system itself sees its privacy settings
    }


def _member(name: str) -> Json:
    """The member model's keys (docs/content/api/models.md), none private."""
    return {
        "id": "fghij",
        "uuid": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
        "name": name,
        "display_name": name,
        "color": None,
        "birthday": None,
        "pronouns": None,
        "avatar_url": None,
        "webhook_avatar_url": None,
        "banner": None,
        "description": None,
        "created": iso(),
        "proxy_tags": [{"prefix": f"{name.lower()}:", "suffix": None}],
        "keep_proxy": False,
        "tts": False,
        "autoproxy_enabled": None,  # own system only
        "message_count": None,
        "last_message_timestamp": None,
        "privacy": None,
    }
