"""A fake Discord at the protocol level: the REST routes the bot uses and a gateway websocket.

The real discord.py client is pointed at it through its own seams: `discord.http.Route.BASE`
(every REST call, webhooks and interaction callbacks included) and the gateway URL the REST
`/gateway/bot` answer gives. Frames are plain JSON text (discord.py decompresses only binary
frames). A test plays the users (`say`, `slash`, `submit_modal`, `react`) and reads what the bot
did from the records (`messages`, `interactions`, `synced_commands`, `typing`).

Events are routed to the shard that owns the guild (`(guild_id >> 22) % shard_count`), as
Discord does, so several bot processes can be tested against one fake.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSMsgType, web

DISCORD_EPOCH_MS = 1_420_070_400_000
API_PREFIX = "/api/v10"
MAX_WEBHOOKS_PER_CHANNEL = 15
ALL_PERMISSIONS = str((1 << 50) - 1)
TEXT, THREAD, FORUM = 0, 11, 15

Json = dict[str, Any]


def _iso(ts: float | None = None) -> str:
    return datetime.fromtimestamp(ts if ts is not None else time.time(), UTC).isoformat()


@dataclass
class Posted:
    """A message as the fake stores it: the JSON Discord would send, plus what was asked."""

    data: Json
    avatar_url: str | None = None
    edits: list[str] = field(default_factory=list)
    deleted: bool = False

    @property
    def id(self) -> int:
        return int(self.data["id"])

    @property
    def content(self) -> str:
        return str(self.data["content"])

    @property
    def author_name(self) -> str:
        return str(self.data["author"]["username"])

    @property
    def webhook_id(self) -> int | None:
        value = self.data.get("webhook_id")
        return int(value) if value else None

    @property
    def channel_id(self) -> int:
        return int(self.data["channel_id"])


@dataclass
class FakeInteraction:
    """One interaction the test started; `responses` are the bot's callbacks and follow-ups."""

    id: int
    token: str
    data: Json
    responses: list[Json] = field(default_factory=list)

    def modal(self) -> Json | None:
        """The modal the bot opened (callback type 9), if any."""
        for response in self.responses:
            if response.get("type") == 9:
                return dict(response["data"])
        return None

    def texts(self) -> list[str]:
        """Every message text the bot answered with (callbacks, follow-ups, edits, embeds)."""
        out: list[str] = []
        for response in self.responses:
            body = response.get("data") or {}
            out.append(str(body.get("content") or ""))
            for embed in body.get("embeds") or []:
                out.append(json.dumps(embed, ensure_ascii=False))
        return out

    def choices(self) -> list[Json]:
        for response in self.responses:
            if response.get("type") == 8:
                return list(response["data"]["choices"])
        return []

    def is_ephemeral(self) -> bool:
        flags = [(r.get("data") or {}).get("flags", 0) for r in self.responses if r.get("data")]
        return bool(flags) and all(int(f or 0) & 64 for f in flags)


@dataclass
class _Session:
    ws: web.WebSocketResponse
    shard: tuple[int, int] = (0, 1)
    seq: int = 0
    identified: bool = False
    intents: int = 0


class FakeDiscord:
    """Start with `async with FakeDiscord() as discord:`; point discord.py at `api_base`."""

    def __init__(self, *, host: str = "127.0.0.1", heartbeat_interval_ms: int = 41_250) -> None:
        self.host, self.port = host, 0
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.token = "fake-discord-bot-token.XXXXXX.abcdefghijklmnopqrstuvwxyz012345"  # noqa: S105  # a fake token only this fake accepts
        self._ids = itertools.count(1)
        self.users: dict[int, Json] = {}
        self._now_ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
        self.application_id = self.snowflake()
        self.bot_user: Json = self.make_user("Tzurot", bot=True)
        self.owner: Json = self.make_user("owner")
        self.guilds: dict[int, Json] = {}
        self.channels: dict[int, Json] = {}
        self.messages: dict[int, list[Posted]] = {}
        self.webhooks: dict[int, Json] = {}
        self.interactions: dict[str, FakeInteraction] = {}
        self.synced_commands: dict[str, list[Json]] = {}
        self.typing: list[int] = []
        self.uploads: list[bytes] = []
        self.sessions: list[_Session] = []
        self.requests: list[tuple[str, str]] = []
        self.faults: dict[str, list[tuple[int, Json]]] = {}
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None

    # ---- lifecycle ----

    async def __aenter__(self) -> FakeDiscord:
        app = web.Application(middlewares=[self._record_middleware])
        app.router.add_get("/gateway", self._gateway)
        r = API_PREFIX
        routes: list[tuple[str, str, Callable[[web.Request], Any]]] = [
            ("GET", "/gateway/bot", self._gateway_bot),
            ("GET", "/gateway", self._gateway_bot),
            ("GET", "/users/@me", self._me),
            ("GET", "/users/{user_id}", self._get_user),
            ("GET", "/oauth2/applications/@me", self._application),
            ("PUT", "/applications/{app}/commands", self._sync_global),
            ("PUT", "/applications/{app}/guilds/{guild}/commands", self._sync_guild),
            ("GET", "/channels/{channel}", self._get_channel),
            ("GET", "/channels/{channel}/messages/{message}", self._get_message),
            ("POST", "/channels/{channel}/messages", self._create_message),
            ("POST", "/channels/{channel}/typing", self._typing),
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

    @property
    def api_base(self) -> str:
        """What `discord.http.Route.BASE` must be set to."""
        return f"http://{self.host}:{self.port}{API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        return f"ws://{self.host}:{self.port}/gateway"

    # ---- the world ----

    def snowflake(self) -> int:
        """A unique id; consecutive ids differ in their timestamp bits, so shards alternate."""
        n = next(self._ids)
        return ((self._now_ms + n) << 22) | (n & 0xFFF)

    def make_user(self, name: str, *, bot: bool = False) -> Json:
        user: Json = {
            "id": str(self.snowflake()),
            "username": name,
            "global_name": name.title(),
            "discriminator": "0",
            "avatar": None,
            "bot": bot,
        }
        self.users[int(user["id"])] = user
        return user

    def add_guild(self, name: str = "Test Server") -> Json:
        guild_id = self.snowflake()
        guild: Json = {
            "id": str(guild_id),
            "name": name,
            "icon": None,
            "owner_id": self.owner["id"],
            "roles": [
                {
                    "id": str(guild_id),
                    "name": "@everyone",
                    "permissions": "1071698660929",
                    "position": 0,
                    "color": 0,
                    "hoist": False,
                    "managed": False,
                    "mentionable": False,
                    "flags": 0,
                }
            ],
            "channels": [],
            "threads": [],
            "members": [self._member(self.bot_user)],
            "member_count": 2,
            "features": [],
            "emojis": [],
            "stickers": [],
            "unavailable": False,
            "large": False,
            "premium_tier": 0,
            "preferred_locale": "en-US",
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "system_channel_flags": 0,
            "joined_at": _iso(),
        }
        self.guilds[guild_id] = guild
        return guild

    def add_role(self, guild: Json, name: str) -> Json:
        role = dict(guild["roles"][0], id=str(self.snowflake()), name=name, position=1)
        guild["roles"].append(role)
        return role

    def add_channel(
        self, guild: Json, name: str, *, topic: str | None = None, nsfw: bool = False
    ) -> Json:
        channel: Json = {
            "id": str(self.snowflake()),
            "type": TEXT,
            "guild_id": guild["id"],
            "name": name,
            "topic": topic,
            "nsfw": nsfw,
            "position": len(guild["channels"]),
            "permission_overwrites": [],
            "parent_id": None,
            "rate_limit_per_user": 0,
            "last_message_id": None,
        }
        guild["channels"].append(channel)
        self.channels[int(channel["id"])] = channel
        return channel

    def add_thread(self, guild: Json, parent: Json, name: str) -> Json:
        thread: Json = {
            "id": str(self.snowflake()),
            "type": THREAD,
            "guild_id": guild["id"],
            "parent_id": parent["id"],
            "owner_id": self.owner["id"],
            "name": name,
            "rate_limit_per_user": 0,
            "message_count": 0,
            "member_count": 1,
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": 1440,
                "archive_timestamp": _iso(),
                "locked": False,
            },
        }
        guild["threads"].append(thread)
        self.channels[int(thread["id"])] = thread
        return thread

    def hide_channel_from(self, channel: Json, user: Json) -> None:
        """`user` may not view `channel`: a member overwrite denying VIEW_CHANNEL (set it before
        the bot connects; GUILD_CREATE carries it)."""
        channel["permission_overwrites"].append(
            {"id": user["id"], "type": 1, "allow": "0", "deny": str(1 << 10)}
        )

    def _member(self, user: Json, *, permissions: str | None = None) -> Json:
        member: Json = {
            "user": user,
            "nick": None,
            "roles": [],
            "joined_at": _iso(),
            "deaf": False,
            "mute": False,
            "flags": 0,
        }
        if permissions is not None:
            member["permissions"] = permissions
        return member

    # ---- playing the users ----

    async def say(
        self,
        channel: Json,
        author: Json,
        content: str,
        *,
        reply_to: Posted | None = None,
        attachments: Sequence[Json] = (),
        message_id: int | None = None,
        webhook_id: int | None = None,
        mention_roles: Sequence[str] = (),
    ) -> Posted:
        """A user writes in `channel`; MESSAGE_CREATE goes to the shard owning the guild."""
        data = self._message_json(channel, author, content, message_id=message_id)
        data["attachments"] = [dict(a) for a in attachments]
        data["mention_roles"] = list(mention_roles)
        if webhook_id is not None:
            data["webhook_id"] = str(webhook_id)
        if reply_to is not None:
            data["type"] = 19
            data["message_reference"] = {
                "message_id": str(reply_to.id),
                "channel_id": str(reply_to.channel_id),
                "guild_id": channel["guild_id"],
            }
            data["referenced_message"] = reply_to.data
        posted = self._store(data)
        await self.dispatch_message(posted)
        return posted

    async def dispatch_message(self, posted: Posted) -> None:
        """Sends MESSAGE_CREATE for a stored message (again, to test deduplication)."""
        payload = dict(posted.data)
        if payload["author"].get("id") in {u["id"] for u in self.users.values()}:
            payload["member"] = self._member(payload["author"])
        await self.dispatch("MESSAGE_CREATE", payload, guild_id=int(payload["guild_id"]))

    async def delete_message(self, message: Posted) -> None:
        """Someone (a moderator, PluralKit) deleted `message`: MESSAGE_DELETE."""
        message.deleted = True
        channel = self.channels[message.channel_id]
        await self.dispatch(
            "MESSAGE_DELETE",
            {"id": str(message.id), "channel_id": channel["id"], "guild_id": channel["guild_id"]},
            guild_id=int(channel["guild_id"]),
        )

    async def react(self, message: Posted, user: Json, emoji: str) -> None:
        channel = self.channels[message.channel_id]
        await self.dispatch(
            "MESSAGE_REACTION_ADD",
            {
                "user_id": user["id"],
                "channel_id": str(message.channel_id),
                "message_id": str(message.id),
                "guild_id": channel["guild_id"],
                "member": self._member(user),
                "emoji": {"id": None, "name": emoji},
                "burst": False,
                "type": 0,
                "message_author_id": message.data["author"]["id"],
            },
            guild_id=int(channel["guild_id"]),
        )

    async def slash(
        self,
        channel: Json,
        user: Json,
        command: str,
        options: Mapping[str, Any] | None = None,
        *,
        subcommand: Sequence[str] = (),
        permissions: str = "0",
        focused: str | None = None,
    ) -> FakeInteraction:
        """Runs `/command [group] [subcommand] options…`; `focused` makes it an autocomplete."""
        opts: list[Json] = [
            {
                "name": k,
                "type": _option_type(v),
                "value": v,
                **({"focused": True} if k == focused else {}),
            }
            for k, v in (options or {}).items()
        ]
        for name in reversed(subcommand):
            opts = [{"name": name, "type": 1 if name == subcommand[-1] else 2, "options": opts}]
        data = {"id": str(self.snowflake()), "name": command, "type": 1, "options": opts}
        kind = 4 if focused else 2
        return await self._interact(channel, user, kind, data, permissions=permissions)

    async def context_menu(
        self, channel: Json, user: Json, name: str, target: Posted
    ) -> FakeInteraction:
        data = {
            "id": str(self.snowflake()),
            "name": name,
            "type": 3,
            "target_id": str(target.id),
            "resolved": {"messages": {str(target.id): target.data}},
        }
        return await self._interact(channel, user, 2, data)

    async def submit_modal(
        self, opened: FakeInteraction, user: Json, values: Mapping[str, str]
    ) -> FakeInteraction:
        """Submits the modal `opened` showed, with text input values by custom_id."""
        modal = opened.modal()
        if modal is None:
            raise AssertionError(f"the bot opened no modal: {opened.responses}")
        channel = self.channels[int(opened.data["channel_id"])]

        def answer(component: Json) -> Json:
            if component["type"] == 1:
                return {"type": 1, "components": [answer(c) for c in component["components"]]}
            if component["type"] == 18:
                return {"type": 18, "component": answer(component["component"])}
            custom_id = component.get("custom_id", "")
            return {"type": component["type"], "custom_id": custom_id, "value": values[custom_id]}

        data = {
            "custom_id": modal["custom_id"],
            "components": [answer(c) for c in modal["components"]],
        }
        return await self._interact(channel, user, 5, data)

    async def _interact(
        self, channel: Json, user: Json, kind: int, data: Json, *, permissions: str = "0"
    ) -> FakeInteraction:
        interaction_id = self.snowflake()
        token = f"interaction-token-{interaction_id}"
        payload: Json = {
            "id": str(interaction_id),
            "application_id": str(self.application_id),
            "type": kind,
            "data": data,
            "guild_id": channel["guild_id"],
            "channel_id": channel["id"],
            "channel": channel,
            "member": self._member(user, permissions=permissions),
            "token": token,
            "version": 1,
            "locale": "en-US",
            "guild_locale": "en-US",
            "app_permissions": ALL_PERMISSIONS,
            "entitlements": [],
            "attachment_size_limit": 10 * 1024 * 1024,
            "authorizing_integration_owners": {"0": channel["guild_id"]},
            "context": 0,
        }
        record = FakeInteraction(interaction_id, token, payload)
        self.interactions[token] = record
        await self.dispatch("INTERACTION_CREATE", payload, guild_id=int(channel["guild_id"]))
        return record

    # ---- waiting on the bot ----

    async def wait_until(self, predicate: Callable[[], Any], within: float = 30.0) -> Any:
        """Waits until `predicate()` is truthy (checked after every request the bot makes)."""
        deadline = asyncio.get_running_loop().time() + within
        while True:
            result = predicate()
            if result:
                return result
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise TimeoutError(f"timed out after {within}s waiting for the bot")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=min(remaining, 0.5))

    def webhook_messages(self, channel: Json | int | None = None) -> list[Posted]:
        """Messages the bot posted through webhooks (not deleted), oldest first."""
        return [m for m in self._all(channel) if m.webhook_id and not m.deleted]

    def _all(self, channel: Json | int | None) -> Iterator[Posted]:
        if channel is None:
            for messages in self.messages.values():
                yield from messages
            return
        channel_id = channel if isinstance(channel, int) else int(channel["id"])
        yield from self.messages.get(channel_id, [])

    def find(self, message_id: int) -> Posted | None:
        for posted in self._all(None):
            if posted.id == message_id:
                return posted
        return None

    def fail_next(self, route: str, status: int, body: Json, times: int = 1) -> None:
        """The next `times` calls of `route` ("execute_webhook", "create_webhook") fail so."""
        self.faults.setdefault(route, []).extend([(status, body)] * times)

    def unknown_webhook_next(self, times: int = 1) -> None:
        self.fail_next("execute_webhook", 404, {"code": 10015, "message": "Unknown Webhook"}, times)

    def delete_webhook(self, hook_id: int) -> None:
        """Someone deleted the webhook in the channel settings."""
        self.webhooks.pop(hook_id, None)

    def add_foreign_webhooks(self, channel: Json, count: int) -> None:
        """Webhooks owned by other integrations (they count toward Discord's cap)."""
        for i in range(count):
            self._new_webhook(int(channel["id"]), f"Other {i}", creator=self.owner)

    # ---- gateway ----

    async def dispatch(self, event: str, data: Json, *, guild_id: int | None = None) -> None:
        """Sends a DISPATCH to the session owning `guild_id`'s shard (all if None)."""
        for session in list(self.sessions):
            if not session.identified or session.ws.closed:
                continue
            shard_id, count = session.shard
            if guild_id is not None and (guild_id >> 22) % count != shard_id:
                continue
            await self._send(session, 0, data, event)

    async def _send(self, session: _Session, op: int, data: Any, event: str | None = None) -> None:
        frame: Json = {"op": op, "d": data, "s": None, "t": event}
        if op == 0:
            session.seq += 1
            frame["s"] = session.seq
        await session.ws.send_str(json.dumps(frame))

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        session = _Session(ws)
        self.sessions.append(session)
        try:
            await self._send(session, 10, {"heartbeat_interval": self.heartbeat_interval_ms})
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                frame = json.loads(msg.data)
                if frame["op"] == 1:
                    await self._send(session, 11, None)
                elif frame["op"] == 2:
                    await self._identify(session, frame["d"])
                elif frame["op"] == 6:
                    await self._send(session, 9, False)
        finally:
            self.sessions.remove(session)
            self._touch()
        return ws

    async def _identify(self, session: _Session, data: Json) -> None:
        if data.get("token") != self.token:
            await session.ws.close(code=4004, message=b"Authentication failed.")
            return
        shard = data.get("shard") or [0, 1]
        session.shard = (int(shard[0]), int(shard[1]))
        session.intents = int(data.get("intents", 0))
        mine = [
            g
            for gid, g in self.guilds.items()
            if (gid >> 22) % session.shard[1] == session.shard[0]
        ]
        ready = {
            "v": 10,
            "user": self.bot_user,
            "guilds": [{"id": g["id"], "unavailable": True} for g in mine],
            "session_id": f"session-{self.snowflake()}",
            "resume_gateway_url": self.gateway_url,
            "shard": list(session.shard),
            "application": {"id": str(self.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
        }
        await self._send(session, 0, ready, "READY")
        session.identified = True
        for guild in mine:
            await self._send(session, 0, guild, "GUILD_CREATE")
        self._touch()

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
                return _json({"message": "401: Unauthorized", "code": 0}, status=401)
        self.requests.append((request.method, request.path))
        try:
            response: web.StreamResponse = await handler(request)
            return response
        finally:
            self._touch()

    def _touch(self) -> None:
        self._changed.set()

    def _fault(self, route: str) -> web.Response | None:
        queue = self.faults.get(route)
        if queue:
            status, body = queue.pop(0)
            return _json(body, status=status)
        return None

    async def _gateway_bot(self, _: web.Request) -> web.Response:
        return _json(
            {
                "url": self.gateway_url,
                "shards": 1,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 1000,
                    "reset_after": 0,
                    "max_concurrency": 16,
                },
            }
        )

    async def _me(self, _: web.Request) -> web.Response:
        return _json(self.bot_user)

    async def _get_user(self, request: web.Request) -> web.Response:
        user = self.users.get(int(request.match_info["user_id"]))
        if user is None:
            return _not_found(10013, "Unknown User")
        return _json(user)

    async def _application(self, _: web.Request) -> web.Response:
        return _json(
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
        return _json(stored)

    async def _sync_global(self, request: web.Request) -> web.Response:
        return await self._sync(request, "global")

    async def _sync_guild(self, request: web.Request) -> web.Response:
        return await self._sync(request, request.match_info["guild"])

    async def _get_channel(self, request: web.Request) -> web.Response:
        channel = self.channels.get(int(request.match_info["channel"]))
        if channel is None:
            return _not_found(10003, "Unknown Channel")
        return _json(channel)

    async def _get_message(self, request: web.Request) -> web.Response:
        posted = self.find(int(request.match_info["message"]))
        if posted is None or posted.deleted:
            return _not_found(10008, "Unknown Message")
        return _json(posted.data)

    async def _create_message(self, request: web.Request) -> web.Response:
        channel = self.channels[int(request.match_info["channel"])]
        body = await _json_body(request, self.uploads)
        data = self._message_json(channel, self.bot_user, body.get("content") or "")
        data["embeds"] = body.get("embeds") or []
        posted = self._store(data)
        return _json(posted.data)

    async def _typing(self, request: web.Request) -> web.Response:
        self.typing.append(int(request.match_info["channel"]))
        return web.Response(status=204)

    async def _get_member(self, request: web.Request) -> web.Response:
        user = self.users.get(int(request.match_info["user"]))
        if user is None:
            return _not_found(10007, "Unknown Member")
        return _json(self._member(user))

    async def _list_webhooks(self, request: web.Request) -> web.Response:
        channel_id = int(request.match_info["channel"])
        hooks = [h for h in self.webhooks.values() if int(h["channel_id"]) == channel_id]
        return _json(hooks)

    async def _create_webhook(self, request: web.Request) -> web.Response:
        fault = self._fault("create_webhook")
        if fault is not None:
            return fault
        channel_id = int(request.match_info["channel"])
        count = sum(1 for h in self.webhooks.values() if int(h["channel_id"]) == channel_id)
        if count >= MAX_WEBHOOKS_PER_CHANNEL:
            return _json(
                {"code": 30007, "message": "Maximum number of webhooks reached (15)"}, status=400
            )
        body = await request.json()
        name = str(body["name"])
        if not 1 <= len(name) <= 80 or "clyde" in name.lower() or "discord" in name.lower():
            return _json(
                {"code": 50035, "message": "Invalid Form Body", "errors": {"name": {}}}, status=400
            )
        return _json(self._new_webhook(channel_id, name, creator=self.bot_user))

    def _new_webhook(self, channel_id: int, name: str, *, creator: Json) -> Json:
        hook_id = self.snowflake()
        hook = {
            "id": str(hook_id),
            "type": 1,
            "guild_id": self.channels[channel_id]["guild_id"],
            "channel_id": str(channel_id),
            "name": name,
            "avatar": None,
            "token": f"webhook-token-{hook_id}",
            "application_id": str(self.application_id) if creator is self.bot_user else None,
            "user": creator,
        }
        self.webhooks[hook_id] = hook
        return hook

    async def _get_webhook(self, request: web.Request) -> web.Response:
        hook = self.webhooks.get(int(request.match_info["hook"]))
        return _json(hook) if hook else _not_found(10015, "Unknown Webhook")

    async def _delete_webhook(self, request: web.Request) -> web.Response:
        self.webhooks.pop(int(request.match_info["hook"]), None)
        return web.Response(status=204)

    def _hook(self, request: web.Request) -> Json | None:
        hook = self.webhooks.get(int(request.match_info["hook"]))
        if hook is None or hook["token"] != request.match_info["token"]:
            return None
        return hook

    async def _execute_webhook(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        if token in self.interactions:
            return await self._followup(request, self.interactions[token])
        fault = self._fault("execute_webhook")
        if fault is not None:
            return fault
        hook = self._hook(request)
        if hook is None:
            return _not_found(10015, "Unknown Webhook")
        body = await _json_body(request, self.uploads)
        username = str(body.get("username") or hook["name"])
        content = str(body.get("content") or "")
        if not _valid_username(username) or len(content) > 2000:
            return _json({"code": 50035, "message": "Invalid Form Body"}, status=400)
        thread_id = request.query.get("thread_id")
        channel = self.channels[int(thread_id) if thread_id else int(hook["channel_id"])]
        author = {
            "id": hook["id"],
            "username": username,
            "discriminator": "0000",
            "avatar": None,
            "bot": True,
        }
        data = self._message_json(channel, author, content)
        data["webhook_id"] = hook["id"]
        data["embeds"] = body.get("embeds") or []
        posted = self._store(data, avatar_url=body.get("avatar_url"))
        await self.dispatch_message(posted)
        if request.query.get("wait") in {"true", "True", "1"}:
            return _json(posted.data)
        return web.Response(status=204)

    async def _get_webhook_message(self, request: web.Request) -> web.Response:
        posted = self._webhook_message(request)
        return _json(posted.data) if posted else _not_found(10008, "Unknown Message")

    def _webhook_message(self, request: web.Request) -> Posted | None:
        if self._hook(request) is None:
            return None
        posted = self.find(int(request.match_info["message"]))
        if posted is None or posted.deleted or posted.webhook_id != int(request.match_info["hook"]):
            return None
        return posted

    async def _edit_webhook_message(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        if token in self.interactions:
            body = await _json_body(request, self.uploads)
            self.interactions[token].responses.append({"type": "edit", "data": body})
            return _json(self._interaction_message(self.interactions[token], body))
        if self._hook(request) is None:
            return _not_found(10015, "Unknown Webhook")
        posted = self._webhook_message(request)
        if posted is None:
            return _not_found(10008, "Unknown Message")
        body = await _json_body(request, self.uploads)
        if "content" in body:
            if len(body["content"] or "") > 2000:
                return _json({"code": 50035, "message": "Invalid Form Body"}, status=400)
            posted.data["content"] = body["content"] or ""
            posted.edits.append(posted.data["content"])
            posted.data["edited_timestamp"] = _iso()
        return _json(posted.data)

    async def _delete_hook_message(self, request: web.Request) -> web.Response:
        posted = self._webhook_message(request)
        if posted is None:
            return _not_found(10008, "Unknown Message")
        posted.deleted = True
        return web.Response(status=204)

    async def _interaction_callback(self, request: web.Request) -> web.Response:
        record = self.interactions.get(request.match_info["token"])
        if record is None or str(record.id) != request.match_info["id"]:
            return _not_found(10062, "Unknown interaction")
        if any(r.get("type") in {4, 5, 6, 7, 8, 9} for r in record.responses):
            return _json(
                {"code": 40060, "message": "Interaction has already been acknowledged."},
                status=400,
            )
        body = await _json_body(request, self.uploads)
        record.responses.append(body)
        answer: Json = {"interaction": {"id": str(record.id), "type": record.data["type"]}}
        if body.get("type") in {4, 5}:
            message = self._interaction_message(record, body.get("data") or {})
            answer["resource"] = {"type": body["type"], "message": message}
        return _json(answer)

    async def _followup(self, request: web.Request, record: FakeInteraction) -> web.Response:
        body = await _json_body(request, self.uploads)
        record.responses.append({"type": "followup", "data": body})
        return _json(self._interaction_message(record, body))

    def _interaction_message(self, record: FakeInteraction, body: Json) -> Json:
        channel = self.channels[int(record.data["channel_id"])]
        data = self._message_json(channel, self.bot_user, str(body.get("content") or ""))
        data["embeds"] = body.get("embeds") or []
        data["flags"] = body.get("flags", 0)
        data["webhook_id"] = str(self.application_id)
        return data

    # ---- helpers ----

    def _message_json(
        self, channel: Json, author: Json, content: str, *, message_id: int | None = None
    ) -> Json:
        guild_id = channel.get("guild_id")
        return {
            "id": str(message_id or self.snowflake()),
            "channel_id": channel["id"],
            "guild_id": guild_id,
            "author": author,
            "content": content,
            "timestamp": _iso(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": [],
            "pinned": False,
            "type": 0,
            "flags": 0,
            "components": [],
        }

    def _store(self, data: Json, *, avatar_url: str | None = None) -> Posted:
        existing = self.find(int(data["id"]))
        if existing is not None:
            return existing
        posted = Posted(data, avatar_url=avatar_url)
        self.messages.setdefault(int(data["channel_id"]), []).append(posted)
        self._touch()
        return posted


def _json(body: Any, *, status: int = 200) -> web.Response:
    """A JSON answer with Discord's exact content type (discord.py compares it verbatim)."""
    return web.Response(
        body=json.dumps(body).encode(), status=status, headers={"Content-Type": "application/json"}
    )


def _valid_username(name: str) -> bool:
    """Discord's rules for webhook usernames."""
    lowered = name.lower()
    return 1 <= len(name) <= 80 and "clyde" not in lowered and "discord" not in lowered


def _option_type(value: Any) -> int:
    if isinstance(value, bool):
        return 5
    if isinstance(value, int):
        return 4
    if isinstance(value, float):
        return 10
    return 3


def _not_found(code: int, message: str) -> web.Response:
    return _json({"code": code, "message": message}, status=404)


async def _json_body(request: web.Request, uploads: list[bytes]) -> Json:
    """The JSON body, also when discord.py sends multipart (`payload_json` + files, which are
    appended to `uploads`)."""
    if request.content_type.startswith("multipart/"):
        form = await request.post()
        raw = form.get("payload_json")
        for value in form.values():
            if isinstance(value, web.FileField):
                uploads.append(value.file.read())
        return json.loads(str(raw)) if raw is not None else {}
    if not request.can_read_body:
        return {}
    body: Json = await request.json()
    return body


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
            "timestamp": _iso(),
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
            return _json({"message": "Message not found.", "code": 20006}, status=404)
        return _json(found)
