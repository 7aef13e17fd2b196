"""Playing the users: messages, deletions, reactions, slash commands, menus and modals."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from tzurot.testing.fake_discord.command_access import (
    GUILD_INSTALL,
    CommandAccess,
    command_installs,
)
from tzurot.testing.fake_discord.command_rules import MESSAGE
from tzurot.testing.fake_discord.forwards import ForwardRefused, forward_fields, forward_problem
from tzurot.testing.fake_discord.records import FakeInteraction, Posted
from tzurot.testing.fake_discord.rules import (
    DEFAULT_ATTACHMENT_SIZE_LIMIT,
    THREAD_TYPES,
    Permission,
    closed_thread_error,
)
from tzurot.testing.fake_discord.slash_options import (
    PARTIAL_CHANNEL_FIELDS,
    RESOLVED_KINDS,
    InvalidSlashCommand,
    invocation,
    not_registered,
    registered_command,
    value_kind,
)
from tzurot.testing.fake_discord.wire import Json, iso


class Users(CommandAccess):
    """What a test does as Discord's users; every action reaches the bot as a gateway event."""

    # False only in the fake's own unit tests (`FakeDiscord(validate_slash_options=False)`):
    # `slash` then sends any command as given, registered or not.
    validate_slash_options = True

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
        extra: Json | None = None,
    ) -> Posted:
        """A user writes in `channel`; MESSAGE_CREATE goes to the shard owning the guild.
        `extra` adds message fields (`application_id`, `interaction_metadata`, `embeds`…).
        Discord refuses a user's message where they may not view or send, or in a locked
        thread without Manage Threads (PermissionError); a webhook (`webhook_id`) posts
        anywhere its channel is, but for a thread both archived and locked. A message in an
        archived thread unarchives it (THREAD_UPDATE first, as `unarchive_on_post`)."""
        if webhook_id is None and channel.get("guild_id"):
            self._may_post(channel, author)
        elif webhook_id is not None:
            problem = closed_thread_error(channel, editing=False, webhook=True)
            if problem is not None:
                raise PermissionError(f"{problem['code']} {problem['message']}")
        data = self._message_json(channel, author, content, message_id=message_id)
        data.update(extra or {})
        data["attachments"] = [dict(a) for a in attachments]
        data["mention_roles"] = list(mention_roles)
        # Discord resolves <@id> in the content to the users mentioned.
        data["mentions"] = [
            dict(self.users[int(uid)])
            for uid in dict.fromkeys(re.findall(r"<@!?(\d+)>", content))
            if int(uid) in self.users
        ]
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
        await self.unarchive_on_post(channel)
        await self.dispatch_message(posted)
        return posted

    async def forward(self, message: Posted, channel: Json, user: Json) -> Posted:
        """`user` forwards `message` into `channel`, as Discord's client does (forwards.py):
        a message with no content of its own, a FORWARD reference to `message` and its
        snapshot as it is now. Refused where `user` may not view `message`'s channel
        (PermissionError 50001) or post in `channel` (as `say`); a message Discord does not
        forward (gone, not a basic message, a forward) raises ForwardRefused."""
        problem = forward_problem(self.find(message.id))
        if problem is not None:
            raise ForwardRefused(problem)
        source_channel = self.channels[message.channel_id]
        guild_id = int(source_channel["guild_id"])
        may_view = self.is_member(guild_id, int(user["id"])) and bool(
            self.member_permissions(source_channel, user) & Permission.VIEW_CHANNEL
        )
        if not may_view:
            raise PermissionError(
                f"50001 Missing Access: {user['username']} cannot see {source_channel['id']}"
            )
        self._may_post(channel, user)
        data = self._message_json(channel, user, "")
        data.update(forward_fields(message, source_channel))
        posted = self._store(data)
        await self.unarchive_on_post(channel)
        await self.dispatch_message(posted)
        return posted

    def _may_post(self, channel: Json, author: Json) -> None:
        if not self.is_member(int(channel["guild_id"]), int(author["id"])):
            raise PermissionError(f"50001 Missing Access: {author['username']} is not a member")
        have = self.member_permissions(channel, author)
        thread = channel.get("type") in THREAD_TYPES
        send = Permission.SEND_MESSAGES_IN_THREADS if thread else Permission.SEND_MESSAGES
        if not have & Permission.VIEW_CHANNEL:
            raise PermissionError(f"50001 Missing Access: {author['username']} in {channel['id']}")
        if not have & send:
            raise PermissionError(f"50013 Missing Permissions: {author['username']} may not send")
        problem = closed_thread_error(
            channel, editing=False, manage_threads=bool(have & Permission.MANAGE_THREADS)
        )
        if problem is not None:
            raise PermissionError(f"{problem['code']} {problem['message']}: {author['username']}")

    async def leave_guild(self, guild: Json, user: Json) -> None:
        """`user` leaves `guild` (or was never in it, or was kicked): Get Guild Member answers
        404 10007 for them and they can no longer post there; GUILD_MEMBER_REMOVE goes to
        sessions with the GUILD_MEMBERS intent."""
        self.not_members.setdefault(int(guild["id"]), set()).add(int(user["id"]))
        event = {"guild_id": guild["id"], "user": dict(user)}
        await self.dispatch("GUILD_MEMBER_REMOVE", event, guild_id=int(guild["id"]))
        self._touch()

    # ---- moderating threads ----

    async def set_thread(
        self, thread: Json, *, archived: bool | None = None, locked: bool | None = None
    ) -> None:
        """A moderator closes (archives) or locks `thread`, or opens it again: its
        `thread_metadata` changes and THREAD_UPDATE goes to the bot (before the bot connects,
        GUILD_CREATE carries it instead: an archived thread is not in it, as Discord syncs
        only active threads there)."""
        meta = thread["thread_metadata"]
        if archived is not None and archived != meta["archived"]:
            meta["archived"] = archived
            meta["archive_timestamp"] = iso()
        if locked is not None:
            meta["locked"] = locked
        event = {**thread, "thread_metadata": dict(meta)}  # as it is now, for a RESUME too
        await self.dispatch("THREAD_UPDATE", event, guild_id=int(thread["guild_id"]))
        self._touch()

    async def unarchive_on_post(self, channel: Json) -> None:
        """A message was posted in `channel`: an archived thread is active again ("Sending a
        message will automatically unarchive the thread"; the post was refused where it is
        locked and the sender lacks Manage Threads)."""
        meta = channel.get("thread_metadata")
        if channel.get("type") in THREAD_TYPES and meta and meta.get("archived"):
            await self.set_thread(channel, archived=False)

    async def dispatch_message(self, posted: Posted) -> None:
        """Sends MESSAGE_CREATE for a stored message (again, to test deduplication)."""
        payload = dict(posted.data)
        if payload["author"].get("id") in {u["id"] for u in self.users.values()}:
            payload["member"] = self._member(payload["author"])
        await self.dispatch("MESSAGE_CREATE", payload, guild_id=int(payload["guild_id"]))

    async def edit_message(self, message: Posted, content: str) -> None:
        """The author edits `message`: MESSAGE_UPDATE with the whole new message."""
        message.data["content"] = content
        message.data["edited_timestamp"] = iso()
        payload = dict(message.data)
        if payload["author"].get("id") in {u["id"] for u in self.users.values()}:
            payload["member"] = self._member(payload["author"])
        await self.dispatch("MESSAGE_UPDATE", payload, guild_id=int(payload["guild_id"]))

    async def update_message(self, message: Posted, **fields: object) -> None:
        """Discord updates `message` with no edit by its author (a link preview unfurled, a
        pin, a thread started from it): MESSAGE_UPDATE with `fields` set and its
        `edited_timestamp` as it was (Discord sets it only when the content is edited)."""
        message.data.update(fields)
        payload = dict(message.data)
        if payload["author"].get("id") in {u["id"] for u in self.users.values()}:
            payload["member"] = self._member(payload["author"])
        await self.dispatch("MESSAGE_UPDATE", payload, guild_id=int(payload["guild_id"]))

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
        attachment_size_limit: int = DEFAULT_ATTACHMENT_SIZE_LIMIT,
    ) -> FakeInteraction:
        """Runs `/command [group] [subcommand] options…`; `focused` makes it an autocomplete.

        Only what Discord's client would send for the registered command (`slash_options`;
        else InvalidSlashCommand), typed as registered, and only where and to whom it offers
        it (`command_access`; else CommandUnavailable); anything when the fake was made with
        `validate_slash_options=False`. `permissions`: what the member holds besides
        @everyone's, as through a role (the interaction's `member.permissions` are computed
        in `channel` from them). `channel` may be a DM (`dm_channel`, `group_dm`). An
        attachment (from `upload`), a user (`make_user`), a channel or a role (`add_role`) is
        sent by id and resolved in the interaction's data as Discord does."""
        given = dict(options or {})
        sent = invocation(
            self.synced_commands,
            channel.get("guild_id"),
            command,
            subcommand=subcommand,
            given=given,
            focused=focused,
            validate=self.validate_slash_options,
        )
        opts: list[Json] = [
            {
                "name": k,
                "type": sent.types[k],
                "value": v["id"] if value_kind(v) in RESOLVED_KINDS else v,
                **({"focused": True} if k == focused else {}),
            }
            for k, v in sent.values.items()
        ]
        for name, kind in reversed(sent.path):
            opts = [{"name": name, "type": kind, "options": opts}]
        if sent.command is not None:
            self.check_command(
                channel,
                user,
                sent.command,
                guild_scoped=sent.guild_id is not None,
                granted=int(permissions),
            )
        registered_id = sent.command["id"] if sent.command else str(self.snowflake())
        data = {"id": registered_id, "name": command, "type": 1, "options": opts}
        if sent.guild_id is not None:
            data["guild_id"] = sent.guild_id
        resolved = self._resolved(channel, user, sent.values)
        if resolved:
            data["resolved"] = resolved
        kind = 4 if focused else 2
        return await self._interact(
            channel,
            user,
            kind,
            data,
            permissions=permissions,
            attachment_size_limit=attachment_size_limit,
            installs=command_installs(sent.command, guild_scoped=sent.guild_id is not None),
        )

    def _resolved(self, channel: Json, user: Json, given: Mapping[str, Any]) -> Json:
        """The users, members (in a guild), roles, channels and attachments the options name."""
        resolved: dict[str, Json] = {}
        for value in given.values():
            kind = value_kind(value)
            if kind == "attachment":
                resolved.setdefault("attachments", {})[value["id"]] = dict(value)
            elif kind == "user":
                resolved.setdefault("users", {})[value["id"]] = dict(value)
                if not channel.get("guild_id"):
                    continue
                member = self._member(dict(value))
                resolved.setdefault("members", {})[value["id"]] = {
                    k: v for k, v in member.items() if k != "user"
                }
            elif kind == "role":
                resolved.setdefault("roles", {})[value["id"]] = dict(value)
            elif kind == "channel":
                shown = {k: v for k, v in value.items() if k in PARTIAL_CHANNEL_FIELDS}
                shown["permissions"] = str(self.member_permissions(dict(value), user))
                resolved.setdefault("channels", {})[value["id"]] = shown
        return resolved

    async def context_menu(
        self, channel: Json, user: Json, name: str, target: Posted
    ) -> FakeInteraction:
        """Runs the message command `name` on `target`: only one registered in `channel`'s
        guild (not from a DM) or globally (else InvalidSlashCommand), and only where and to
        whom Discord offers it (`command_access`; else CommandUnavailable); anything when the
        fake was made with `validate_slash_options=False`."""
        guild_id = channel.get("guild_id")
        found = registered_command(self.synced_commands, guild_id, name, kind=MESSAGE)
        command, scope = found or (None, None)
        if self.validate_slash_options:
            if command is None:
                raise InvalidSlashCommand(not_registered(name, guild_id, kind=MESSAGE))
            self.check_command(channel, user, command, guild_scoped=scope is not None, granted=0)
        data: Json = {
            "id": command["id"] if command else str(self.snowflake()),
            "name": name,
            "type": MESSAGE,
            "target_id": str(target.id),
            "resolved": {"messages": {str(target.id): target.data}},
        }
        if scope is not None:
            data["guild_id"] = scope  # "the guild the command is registered to"
        installs = command_installs(command, guild_scoped=scope is not None)
        return await self._interact(channel, user, 2, data, installs=installs)

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
        owners = opened.data["authorizing_integration_owners"]  # the command's, as it opened
        return await self._interact(channel, user, 5, data, installs={int(k) for k in owners})

    async def _interact(
        self,
        channel: Json,
        user: Json,
        kind: int,
        data: Json,
        *,
        permissions: str = "0",
        attachment_size_limit: int = DEFAULT_ATTACHMENT_SIZE_LIMIT,
        installs: Collection[int] = (GUILD_INSTALL,),
    ) -> FakeInteraction:
        interaction_id = self.snowflake()
        token = f"interaction-token-{interaction_id}"
        payload: Json = {
            "id": str(interaction_id),
            "application_id": str(self.application_id),
            "type": kind,
            "data": data,
            "channel_id": channel["id"],
            "channel": channel,
            "token": token,
            "version": 1,
            "locale": "en-US",
            "entitlements": [],
            "attachment_size_limit": attachment_size_limit,
            **self.invoked_fields(channel, user, granted=int(permissions), installs=installs),
        }
        record = FakeInteraction(interaction_id, token, payload)
        self.interactions[token] = record
        # receiving-and-responding: a DM's interaction has no guild; Discord sends DMs to
        # shard 0 only (topics/gateway "Sharding").
        shard_key = int(channel.get("guild_id") or 0)
        await self.dispatch("INTERACTION_CREATE", payload, guild_id=shard_key)
        return record
