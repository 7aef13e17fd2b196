"""The fake Discord's world: users, guilds, channels, stored messages, webhooks, records."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable, Iterator
from typing import Any

from aiohttp import web

from tzurot.testing.fake_discord.buckets import CREATE_MESSAGE_RATE, GLOBAL_RATE, Bucket
from tzurot.testing.fake_discord.mentions import Pings
from tzurot.testing.fake_discord.records import FakeInteraction, Posted, Session
from tzurot.testing.fake_discord.rules import (
    API_PREFIX,
    BOT_ROLE_PERMISSIONS,
    DISCORD_EPOCH_MS,
    FORUM,
    INTERACTION_DEADLINE_SECONDS,
    MEDIA,
    PRIVATE_THREAD,
    STAGE,
    TEXT,
    THREAD,
    Permission,
    permissions_in,
)
from tzurot.testing.fake_discord.uploads import FILESIZE_LIMITS
from tzurot.testing.fake_discord.wire import Json, iso, json_response

DROPPED = 0
"""A queued fault's status for a call answered with nothing (`drop_next`)."""


class DiscordState:
    """Everything the fake knows; the REST and gateway layers read and change it."""

    def __init__(  # noqa: PLR0915  # one documented attribute per part of the world
        self, *, host: str = "127.0.0.1", heartbeat_interval_ms: int = 41_250
    ) -> None:
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
        # Thread member objects by thread id, then user id (who joined or was added).
        self.thread_members: dict[int, dict[int, Json]] = {}
        # Users not in a guild, by guild id (a test's users are in every guild until they
        # leave: `Users.leave_guild`).
        self.not_members: dict[int, set[int]] = {}
        self.webhooks: dict[int, Json] = {}
        self.interactions: dict[str, FakeInteraction] = {}
        self.synced_commands: dict[str, list[Json]] = {}
        # When each command new to a scope was created (Discord: 200 creates a day per scope).
        self.command_creates: dict[str, list[float]] = {}
        # Command-level permission overwrites by (guild id, command id) (command_access.py).
        self.command_permissions: dict[tuple[str, str], list[Json]] = {}
        # Users who enabled age-restricted commands in DMs with apps.
        self.age_restricted_dm_users: set[str] = set()
        # The DM channels between a user and the bot (BOT_DM); other DMs are PRIVATE_CHANNEL.
        self.bot_dm_channels: set[int] = set()
        self.command_clock: Callable[[], float] = time.monotonic  # a test may move the day on
        self.typing: list[int] = []
        self.uploads: list[bytes] = []
        self.files: dict[int, tuple[bytes, str]] = {}  # attachments uploaded, by id
        # Channels that refuse voice messages (50173), as Discord does in some places.
        self.no_voice_channels: set[int] = set()
        # Upload limits per file set by a test, by guild id (else the guild's boost tier's).
        self.filesize_limits: dict[int, int] = {}
        self.sessions: list[Session] = []
        self.requests: list[tuple[str, str]] = []
        self.faults: dict[str, list[tuple[int, Json]]] = {}
        self.stalls: dict[str, list[tuple[asyncio.Event, int | None]]] = {}
        self.bot_roles: dict[int, list[int]] = {}
        # What Discord refused, as (route, status, code): tests assert the bot caused none.
        self.refusals: list[tuple[str, int, int]] = []
        # Pings Discord would have sent, per message id (for sends and edits).
        self.pings: dict[int, list[Pings]] = {}
        # Create Message nonces: (author id, nonce) -> (message id, when); and the nonces of
        # sends that `enforce_nonce` turned into a return of the earlier message.
        self.sent_nonces: dict[tuple[int, str], tuple[int, float]] = {}
        self.nonce_dedupes: list[str] = []
        self.interaction_deadline = INTERACTION_DEADLINE_SECONDS
        self.buckets: dict[str, Bucket] = {}
        self.rate_limited: list[tuple[str, str]] = []  # (route, bucket) of every 429
        # The gateway: IDENTIFY buckets (`max_concurrency`, one per `identify_window` s each),
        # the privileged intent, sessions a RESUME can continue.
        self.max_concurrency, self.identify_window = 1, 5.0
        self.identified_at: dict[int, float] = {}
        self.identifies: list[tuple[int, float]] = []  # (shard id, when) of accepted IDENTIFYs
        self.invalid_sessions: list[int] = []  # shard ids answered op 9 for a hasty IDENTIFY
        self.message_content_approved = True
        self.resumable: dict[str, Session] = {}
        self.resumes: list[tuple[str, int]] = []  # (session id, events replayed)
        self.resume_buffer = 1000
        # Sessions closed for a missed heartbeat (gateway.py), by session id ("" before READY).
        self.heartbeat_timeouts: list[str] = []
        # Discord's documented webhook limits: 5 requests per 2 s per webhook, about 30 webhook
        # messages a minute per channel.
        self.webhook_rate = (5, 2.0)
        self.channel_webhook_rate = (30, 60.0)
        # buckets.py: 50 a second per bot token (per IP without one), documented; Create
        # Message per channel, the fake's choice.
        self.global_rate, self.create_message_rate = GLOBAL_RATE, CREATE_MESSAGE_RATE
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None

    @property
    def api_base(self) -> str:
        """What `discord.http.Route.BASE` must be set to."""
        return f"http://{self.host}:{self.port}{API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        return f"ws://{self.host}:{self.port}/gateway"

    # ---- the world ----

    def upload(self, channel: Json, filename: str, data: bytes, content_type: str) -> Json:
        """A file a user attached (to a message or a slash command option): its attachment
        object, whose url this fake serves as Discord's CDN does."""
        attachment_id = self.snowflake()
        self.files[attachment_id] = (data, content_type)
        url = (
            f"http://{self.host}:{self.port}/attachments/{channel['id']}/{attachment_id}/{filename}"
        )
        return {
            "id": str(attachment_id),
            "filename": filename,
            "size": len(data),
            "url": url,
            "proxy_url": url,
            "content_type": content_type,
        }

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
        bot_role = self.snowflake()  # the bot's managed role, with what the README asks for
        self.bot_roles[guild_id] = [bot_role]
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
                },
                {
                    "id": str(bot_role),
                    "name": "Tzurot",
                    "permissions": str(BOT_ROLE_PERMISSIONS),
                    "position": 1,
                    "color": 0,
                    "hoist": False,
                    "managed": True,
                    "mentionable": False,
                    "flags": 0,
                    "tags": {"bot_id": self.bot_user["id"]},
                },
            ],
            "channels": [],
            "threads": [],
            "members": [self._member(self.bot_user, roles=[str(bot_role)])],
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
            "joined_at": iso(),
        }
        self.guilds[guild_id] = guild
        return guild

    def add_role(self, guild: Json, name: str) -> Json:
        role = dict(guild["roles"][0], id=str(self.snowflake()), name=name, position=1)
        guild["roles"].append(role)
        return role

    def add_channel(
        self,
        guild: Json,
        name: str,
        *,
        topic: str | None = None,
        nsfw: bool = False,
        kind: int = TEXT,
    ) -> Json:
        """A guild channel; `kind` is Discord's channel type (TEXT, FORUM, STAGE, CATEGORY…)."""
        channel: Json = {
            "id": str(self.snowflake()),
            "type": kind,
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

    def add_thread(self, guild: Json, parent: Json, name: str, *, private: bool = False) -> Json:
        """A thread the server's owner started; a `private` one (GUILD_PRIVATE_THREAD) only
        its members (`join_thread`) and those with Manage Threads can see."""
        thread: Json = {
            "id": str(self.snowflake()),
            "type": PRIVATE_THREAD if private else THREAD,
            "guild_id": guild["id"],
            "parent_id": parent["id"],
            "owner_id": self.owner["id"],
            "name": name,
            "rate_limit_per_user": 0,
            "message_count": 0,
            "member_count": 0,
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": 1440,
                "archive_timestamp": iso(),
                "locked": False,
                **({"invitable": True} if private else {}),
            },
        }
        guild["threads"].append(thread)
        self.channels[int(thread["id"])] = thread
        self.join_thread(thread, self.owner)
        return thread

    def join_thread(self, thread: Json, user: Json) -> Json:
        """`user` joins `thread` (or is added to it); the bot too (set it before the bot
        connects: GUILD_CREATE carries the bot's own membership)."""
        members = self.thread_members.setdefault(int(thread["id"]), {})
        member: Json = {
            "id": thread["id"],
            "user_id": user["id"],
            "join_timestamp": iso(),
            "flags": 0,
        }
        members[int(user["id"])] = member
        thread["member_count"] = min(len(members), 50)  # Discord stops counting at 50
        return member

    def add_forum(self, guild: Json, name: str, *, media: bool = False) -> Json:
        """A forum channel (`media`: a media channel, GUILD_MEDIA): messages go only into its
        posts (threads)."""
        forum = self.add_channel(guild, name, kind=MEDIA if media else FORUM)
        forum.update({"available_tags": [], "default_reaction_emoji": None, "flags": 0})
        return forum

    def add_stage(self, guild: Json, name: str) -> Json:
        """A stage channel (it has a text chat, and webhooks can post there)."""
        stage = self.add_channel(guild, name, kind=STAGE)
        stage.update({"bitrate": 64000, "user_limit": 0, "rtc_region": None})
        return stage

    def boost(self, guild: Json, tier: int) -> None:
        """The guild reaches premium (boost) tier `tier`, 0-3, and its upload limit with it
        (set it before the bot connects: GUILD_CREATE carries it)."""
        guild["premium_tier"] = tier

    def filesize_limit(self, channel: Json) -> int:
        """Bytes per uploaded file in `channel`: the test's limit for its guild, else its
        boost tier's."""
        guild_id = int(channel.get("guild_id") or 0)
        if guild_id in self.filesize_limits:
            return self.filesize_limits[guild_id]
        guild = self.guilds.get(guild_id) or {}
        return FILESIZE_LIMITS.get(int(guild.get("premium_tier") or 0), FILESIZE_LIMITS[0])

    def deny_bot(self, channel: Json, permissions: int) -> None:
        """The bot loses `permissions` in `channel` (a member overwrite; set it before the bot
        connects, or call `update_channel` after)."""
        channel["permission_overwrites"].append(
            {"id": self.bot_user["id"], "type": 1, "allow": "0", "deny": str(permissions)}
        )

    def is_member(self, guild_id: int, user_id: int) -> bool:
        """Whether the user `user_id` is in the guild `guild_id`."""
        return user_id in self.users and user_id not in self.not_members.get(guild_id, set())

    def bot_permissions(self, channel: Json) -> int:
        """What the bot may do in `channel`, computed as Discord does."""
        return self.member_permissions(channel, self.bot_user)

    def member_permissions(self, channel: Json, user: Json, *, granted: int = 0) -> int:
        """What `user` may do in `channel`, computed as Discord does (the bot has its managed
        role; the users a test makes have none, so only @everyone, `granted` as if by a role,
        and overwrites apply)."""
        guild = self.guilds[int(channel["guild_id"])]
        parent = self.channels.get(int(channel["parent_id"])) if channel.get("parent_id") else None
        is_bot = user["id"] == self.bot_user["id"]
        roles = self.bot_roles.get(int(guild["id"]), []) if is_bot else []
        perms = permissions_in(
            guild, channel, int(user["id"]), roles, parent=parent, granted=granted
        )
        if (
            channel.get("type") == PRIVATE_THREAD
            and not perms & Permission.MANAGE_THREADS
            and int(user["id"]) not in self.thread_members.get(int(channel["id"]), {})
        ):
            return 0  # a private thread: its members' and moderators' only
        return perms

    def refuse(self, route: str, status: int, body: Json) -> web.Response:
        """Discord's error answer, recorded in `refusals`."""
        self.refusals.append((route, status, int(body.get("code", 0))))
        return json_response(body, status=status)

    def _fault(self, route: str, request: web.Request | None = None) -> web.Response | None:
        queue = self.faults.get(route)
        if queue:
            status, body = queue.pop(0)
            if status == DROPPED and request is not None and request.transport is not None:
                request.transport.close()  # no answer at all: the client's connection drops
            return json_response(body, status=status or 500)
        return None

    def hide_channel_from(self, channel: Json, user: Json) -> None:
        """`user` may not view `channel`: a member overwrite denying VIEW_CHANNEL (set it before
        the bot connects; GUILD_CREATE carries it)."""
        channel["permission_overwrites"].append(
            {"id": user["id"], "type": 1, "allow": "0", "deny": str(1 << 10)}
        )

    def _member(
        self, user: Json, *, permissions: str | None = None, roles: list[str] | None = None
    ) -> Json:
        member: Json = {
            "user": user,
            "nick": None,
            "roles": roles or [],
            "joined_at": iso(),
            "deaf": False,
            "mute": False,
            "flags": 0,
        }
        if permissions is not None:
            member["permissions"] = permissions
        return member

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

    def drop_next(self, route: str, times: int = 1) -> None:
        """The next `times` calls of `route` get no answer: the connection is closed (a
        network failure between the bot and Discord, not one of Discord's refusals)."""
        self.faults.setdefault(route, []).extend([(DROPPED, {})] * times)

    def stall_after(self, route: str, channel: Json | None = None) -> asyncio.Event:
        """The next call of `route` ("create_message"; in `channel` if given) does its work,
        then its answer waits until the returned event is set: Discord acted, the caller never
        heard (it crashed meanwhile)."""
        gate = asyncio.Event()
        where = None if channel is None else int(channel["id"])
        self.stalls.setdefault(route, []).append((gate, where))
        return gate

    async def _stall(self, route: str, channel_id: int) -> None:
        queue = self.stalls.get(route, [])
        for n, (gate, where) in enumerate(queue):
            if where in (None, channel_id):
                del queue[n]
                await gate.wait()
                return

    def unknown_webhook_next(self, times: int = 1) -> None:
        self.fail_next("execute_webhook", 404, {"code": 10015, "message": "Unknown Webhook"}, times)

    def delete_webhook(self, hook_id: int) -> None:
        """Someone deleted the webhook in the channel settings."""
        self.webhooks.pop(hook_id, None)

    def add_webhook(self, channel: Json, name: str, *, owner: Json) -> Json:
        """A webhook someone made earlier (`owner` the bot user: made by the bot, then maybe
        renamed by an admin)."""
        return self._new_webhook(int(channel["id"]), name, creator=owner)

    def add_foreign_webhooks(self, channel: Json, count: int) -> None:
        """Webhooks owned by other integrations (they count toward Discord's cap)."""
        for i in range(count):
            self._new_webhook(int(channel["id"]), f"Other {i}", creator=self.owner)

    def _touch(self) -> None:
        self._changed.set()

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
            "timestamp": iso(),
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
