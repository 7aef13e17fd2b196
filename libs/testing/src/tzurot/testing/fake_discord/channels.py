"""Channel routes with Discord's permission checks: reading a message needs View Channel and Read
Message History (50001 / 50013; in a private thread the bot must also be a member or have Manage
Threads, else 50001; in a voice channel Connect too) and finds only a message of that channel
(else 404 10008); posting needs Send Messages (Send Messages in Threads in a thread) and is
refused (400 50008) in a forum, a media channel or a category itself (rules.py
`NO_MESSAGE_TYPES`); files need Attach Files (403 50013) and a reply (a `message_reference`)
Read Message History (50013) and a message to reply to (replies.py: unless `fail_if_not_exists`
is false, 400 50035 for one deleted or elsewhere; never to a system message). The bot's embeds
follow embeds.py's limits and are dropped without Embed Links (a message left with nothing: 403
50013). Typing needs Send Messages. Uploads follow uploads.py (per file by the boost tier, 25
MiB per Create Message request, 10 attachments). A send with a nonce and `enforce_nonce` that
repeats one of the same author's recent nonces returns that message. Voice messages follow
voice_messages.py. In a locked thread the bot posts only with Manage Threads (160005; 50083 when
it is archived too), and a post in an archived thread unarchives it (rules.py
`closed_thread_error`). Create Message is rate limited per channel (rate_limits.py: 5 per 5 s,
the fake's choice), its answers carrying `X-RateLimit-*` headers. A reply pings the replied-to
author only with `allowed_mentions.replied_user` true (mentions.py). Get Guild Member: 404
10004 for an unknown guild, 10007 for a user not in it."""

from __future__ import annotations

import time

from aiohttp import web

from tzurot.testing.fake_discord.embeds import embeds_error
from tzurot.testing.fake_discord.interactions import Interactions
from tzurot.testing.fake_discord.mentions import allowed_mentions_error, pings
from tzurot.testing.fake_discord.records import Posted
from tzurot.testing.fake_discord.replies import as_served, reply_fields, reply_to
from tzurot.testing.fake_discord.rules import (
    CONTENT_LIMIT,
    CONTENT_TOO_LONG,
    NO_MESSAGE_TYPES,
    NONCE_WINDOW_SECONDS,
    SUPPRESS_EMBEDS,
    THREAD_TYPES,
    VOICE,
    Permission,
    closed_thread_error,
    error,
    nonce_error,
)
from tzurot.testing.fake_discord.uploads import (
    TOO_LARGE,
    attachments_error,
    description_error,
    too_large,
)
from tzurot.testing.fake_discord.voice_messages import (
    CANNOT_SEND_VOICE_HERE,
    IS_VOICE_MESSAGE,
    SEND_VOICE_MESSAGES,
    SUPPRESS_NOTIFICATIONS,
    attachment_objects,
    voice_message_error,
)
from tzurot.testing.fake_discord.wire import (
    Json,
    Upload,
    json_response,
    not_found,
    read_body_files,
    record_uploads,
)

MISSING_ACCESS = error(50001, "Missing Access")
MISSING_PERMISSIONS = error(50013, "Missing Permissions")
NON_TEXT_CHANNEL = error(50008, "Cannot send messages in a non-text channel")


def _create_body_error(body: Json, files: list[Upload]) -> Json | None:
    """Discord's 400 body for what a Create Message holds, else None: `allowed_mentions`,
    a voice message's rules, content up to 2000 characters, the embeds' limits (embeds.py),
    the nonce, the attachments' descriptions (uploads.py)."""
    content = str(body.get("content") or "")
    problem = allowed_mentions_error(body.get("allowed_mentions")) or voice_message_error(
        body, files, webhook=False
    )
    if problem is None and len(content) > CONTENT_LIMIT:
        problem = CONTENT_TOO_LONG
    return (
        problem or embeds_error(body) or nonce_error(body.get("nonce")) or description_error(body)
    )


def _replied_author(target: Posted | None) -> int | None:
    """The user a reply to `target` may ping (`replied_user`): its author, unless a webhook
    posted it (a webhook is no user to notify)."""
    if target is None or target.webhook_id:
        return None
    return int(target.data["author"]["id"])


class Channels(Interactions):
    def _channel(self, request: web.Request) -> Json | None:
        return self.channels.get(int(request.match_info["channel"]))

    def _needs(self, route: str, channel: Json, *bits: int) -> web.Response | None:
        """403 unless the bot has every permission in `bits` in `channel`."""
        have = self.bot_permissions(channel)
        if not have & Permission.VIEW_CHANNEL:
            return self.refuse(route, 403, MISSING_ACCESS)
        if any(not have & bit for bit in bits):
            return self.refuse(route, 403, MISSING_PERMISSIONS)
        return None

    def _closed_thread(
        self, route: str, channel: Json, *, editing: bool, webhook: bool = False
    ) -> web.Response | None:
        """403 where `channel` is a locked or archived thread the bot (`webhook`: a webhook)
        may not post (`editing`: edit) in: rules.py `closed_thread_error`."""
        manage = not webhook and bool(self.bot_permissions(channel) & Permission.MANAGE_THREADS)
        problem = closed_thread_error(
            channel, editing=editing, manage_threads=manage, webhook=webhook
        )
        return None if problem is None else self.refuse(route, 403, problem)

    def _send_permission(self, channel: Json) -> int:
        if channel.get("type") in THREAD_TYPES:
            return Permission.SEND_MESSAGES_IN_THREADS
        return Permission.SEND_MESSAGES

    async def _get_channel(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        if channel is None:
            return not_found(10003, "Unknown Channel")
        return json_response(channel)

    async def _get_message(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        if channel is None:
            return not_found(10003, "Unknown Channel")
        # "If the channel is a voice channel, they must _also_ have the CONNECT permission."
        voice = (Permission.CONNECT,) if channel.get("type") == VOICE else ()
        refused = self._needs("get_message", channel, Permission.READ_MESSAGE_HISTORY, *voice)
        if refused is not None:
            return refused
        posted = self.find(int(request.match_info["message"]))
        if posted is None or posted.deleted or posted.channel_id != int(channel["id"]):
            return not_found(10008, "Unknown Message")  # "a specific message in the channel"
        return json_response(as_served(posted, self.find))

    async def _create_message(self, request: web.Request) -> web.Response:  # noqa: PLR0911, PLR0912  # one refusal per Discord rule
        route = "create_message"
        channel = self._channel(request)
        if channel is None:
            return not_found(10003, "Unknown Channel")
        if channel.get("type") in NO_MESSAGE_TYPES:
            return self.refuse(route, 400, NON_TEXT_CHANNEL)
        refused = self._needs(route, channel, self._send_permission(channel)) or (
            self._closed_thread(route, channel, editing=False)
        )
        if refused is not None:
            return refused
        body, sent = await read_body_files(request, self.uploads)
        refused = self._upload_refused(
            route, channel, request, sent, capped=True
        ) or self._create_needs(route, channel, body, sent)
        if refused is not None:
            return refused
        problem = _create_body_error(body, sent)
        if problem is not None:
            return self.refuse(route, 400, problem)
        refused = self._voice_refused(route, channel, body)
        if refused is not None:
            return refused
        content = str(body.get("content") or "")
        embeds = self._embeds_shown(channel, body)
        if not content and not embeds and not sent:
            if body.get("embeds"):  # all it had were embeds, dropped without Embed Links
                return self.refuse(route, 403, MISSING_PERMISSIONS)
            return self.refuse(route, 400, error(50006, "Cannot send an empty message"))
        reply = reply_to(body.get("message_reference"), channel, self.find)
        if reply.problem is not None:
            return self.refuse(route, 400, reply.problem)
        bucket = f"create-message:{channel['id']}"
        limited = self._limited(route, (bucket, self.create_message_rate))
        if limited is not None:
            return limited
        nonce = body.get("nonce")
        if nonce is not None and body.get("enforce_nonce"):
            seen = self._nonce_seen(str(nonce))
            if seen is not None:
                self.nonce_dedupes.append(str(nonce))
                return json_response(seen.data, headers=self._rate_headers(bucket))
        data = self._message_json(channel, self.bot_user, content)
        data["embeds"] = embeds
        data["attachments"] = attachment_objects(self, channel, body, sent)
        flags = int(body.get("flags") or 0)
        data["flags"] = flags & (SUPPRESS_EMBEDS | SUPPRESS_NOTIFICATIONS | IS_VOICE_MESSAGE)
        if reply.target is not None:
            data.update(reply_fields(reply.target, channel))
        if nonce is not None:
            data["nonce"] = nonce
        posted = self._store(data)
        record_uploads(request)
        await self.unarchive_on_post(channel)
        if nonce is not None:
            self.sent_nonces[(int(self.bot_user["id"]), str(nonce))] = (posted.id, time.monotonic())
        self._record_pings(
            posted.id,
            channel,
            content,
            body.get("allowed_mentions"),
            default=("users", "roles", "everyone"),
            replied_to=_replied_author(reply.target),
        )
        await self._stall(route, int(channel["id"]))
        return json_response(posted.data, headers=self._rate_headers(bucket))

    def _voice_refused(self, route: str, channel: Json, body: Json) -> web.Response | None:
        """A voice message needs Send Voice Messages and a channel that takes them."""
        if not int(body.get("flags") or 0) & IS_VOICE_MESSAGE:
            return None
        if not self.bot_permissions(channel) & SEND_VOICE_MESSAGES:
            return self.refuse(route, 403, MISSING_PERMISSIONS)
        if int(channel["id"]) in self.no_voice_channels:
            return self.refuse(route, 400, CANNOT_SEND_VOICE_HERE)
        return None

    def _embeds_shown(self, channel: Json, body: Json) -> list[Json]:
        """The bot's embeds as Discord keeps them: none without Embed Links.

        Not in the docs (topics/permissions.mdx says only "Links sent by users with this
        permission will be auto-embedded"); Discord's behaviour as reported in
        discord-api-docs issues 2601 (2021: a bot without Embed Links gets 403 Missing
        Permissions for a message that is only an embed; with content, the embed is not
        shown) and 5648 (2022: an embed sent with content is ignored). Webhooks and
        interaction responses are not the bot user and are not subject to it."""
        if not self.bot_permissions(channel) & Permission.EMBED_LINKS:
            return []
        return list(body.get("embeds") or [])

    def _upload_refused(
        self,
        route: str,
        channel: Json,
        request: web.Request,
        files: list[Upload],
        *,
        capped: bool = False,
    ) -> web.Response | None:
        """413 for a file over the guild's limit, or (`capped`: a Create Message) a request
        over 25 MiB; 50035 for more than 10 files (uploads.py)."""
        data = [f.data for f in files]
        size = request.content_length  # None when chunked: then the files' bytes
        request_bytes = sum(map(len, data)) if size is None else size
        if too_large(request_bytes, data, self.filesize_limit(channel), capped=capped):
            return self.refuse(route, 413, TOO_LARGE)
        problem = attachments_error([{} for _ in files])
        return self.refuse(route, 400, problem) if problem is not None else None

    def _create_needs(
        self, route: str, channel: Json, body: Json, files: list[Upload]
    ) -> web.Response | None:
        """The bot's own files need Attach Files, its replies Read Message History."""
        have = self.bot_permissions(channel)
        if files and not have & Permission.ATTACH_FILES:
            return self.refuse(route, 403, MISSING_PERMISSIONS)
        if body.get("message_reference") and not have & Permission.READ_MESSAGE_HISTORY:
            return self.refuse(route, 403, MISSING_PERMISSIONS)
        return None

    def _nonce_seen(self, nonce: str) -> Posted | None:
        """The bot's message with this nonce from the past few minutes, if any."""
        key = (int(self.bot_user["id"]), nonce)
        found = self.sent_nonces.get(key)
        if found is None or time.monotonic() - found[1] > NONCE_WINDOW_SECONDS:
            return None
        return self.find(found[0])

    def _record_pings(
        self,
        message_id: int,
        channel: Json,
        content: str,
        allowed: Json | None,
        *,
        default: tuple[str, ...] = ("users",),
        webhook: bool = False,
        replied_to: int | None = None,
    ) -> None:
        guild = self.guilds[int(channel["guild_id"])]
        mentionable = [int(r["id"]) for r in guild["roles"] if r.get("mentionable")]
        # Webhooks may mention @everyone and any role; the bot needs Mention Everyone.
        can_everyone = webhook or bool(self.bot_permissions(channel) & Permission.MENTION_EVERYONE)
        found = pings(
            content,
            allowed,
            default_parse=default,
            mentionable_roles=mentionable,
            can_mention_everyone=can_everyone,
            replied_to=replied_to,
        )
        self.pings.setdefault(message_id, []).append(found)

    async def _typing(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        if channel is None:
            return not_found(10003, "Unknown Channel")
        refused = self._needs("typing", channel, self._send_permission(channel))
        if refused is not None:
            return refused
        self.typing.append(int(channel["id"]))
        return web.Response(status=204)

    async def _get_thread_member(self, request: web.Request) -> web.Response:
        """Get Thread Member: the thread member object (with the guild member as `member` when
        `with_member=true`), 404 if the user is not in the thread; the bot must be able to view
        the thread (50001)."""
        channel = self._channel(request)
        if channel is None:
            return not_found(10003, "Unknown Channel")
        refused = self._fault("get_thread_member", request) or self._needs(
            "get_thread_member", channel
        )
        if refused is not None:
            return refused
        user_id = int(request.match_info["user"])
        found = self.thread_members.get(int(channel["id"]), {}).get(user_id)
        if found is None:
            return not_found(10007, "Unknown Member")
        if request.query.get("with_member") == "true":
            return json_response({**found, "member": self._member(self.users[user_id])})
        return json_response(found)

    async def _get_member(self, request: web.Request) -> web.Response:
        """Get Guild Member: 404 10004 for an unknown guild, 10007 for a user not in it."""
        guild_id = int(request.match_info["guild"])
        if guild_id not in self.guilds:
            return not_found(10004, "Unknown Guild")
        user_id = int(request.match_info["user"])
        if not self.is_member(guild_id, user_id):
            return not_found(10007, "Unknown Member")
        return json_response(self._member(self.users[user_id]))
