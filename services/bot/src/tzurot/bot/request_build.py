"""What is sent for a Discord message: the GenerateRequest every addressed personality gets
(references, attachments, mentions) and the message's text with mentions made readable.

A message shows the model only what its human sender may read, never what only the bot may: a
linked message needs View Channel and Read Message History, a mentioned channel's name and
topic need View Channel. A private thread is also its members' and Manage Threads holders'
only (discord.py's permissions ignore that): membership comes from the cache or Discord's Get
Thread Member, asked once per message; where nothing may be awaited (`readable_text`) an
unknown membership shows nothing. The sender is the member who wrote it, or the human behind a
PluralKit repost (a webhook message, whose author is no member); a sender the server does not
know shows no link and no channel (fail closed)."""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from typing import TypeVar

import discord

from tzurot.bot.attachments import AttachmentLimits, to_attachment, triage
from tzurot.bot.config import BotSettings
from tzurot.bot.forwards import shown_attachments
from tzurot.bot.gateway_client import location_of
from tzurot.bot.mentions import ChannelInfo, resolve_mentions
from tzurot.bot.references import Ours, collect_references
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

K = TypeVar("K")
V = TypeVar("V")

READERS_KEPT = 1_000
"""Senders `base` looked up, kept for `readable_text` on the same message (which cannot); as
many private-thread memberships, by (message, thread)."""


class RequestBuilder:
    def __init__(
        self, client: discord.Client, settings: BotSettings, *, ours: Ours | None = None
    ) -> None:
        """`ours`: whether one of our webhooks posted a message (references.is_reasoning)."""
        self._client, self._settings, self._ours = client, settings, ours
        self._limits = AttachmentLimits(settings.max_image_bytes, settings.max_audio_bytes)
        self._readers: OrderedDict[int, discord.Member | None] = OrderedDict()
        self._memberships: OrderedDict[tuple[int, int], bool] = OrderedDict()

    async def base(
        self,
        message: discord.Message,
        actor: common.Actor,
        *,
        forward: discord.Message | None = None,
    ) -> tuple[gw.GenerateRequest, list[str]]:
        """What every addressed personality gets (content is set per personality), and notes
        about attachments left out. `forward`: the forward `message` was sent with as its
        comment (`forwards.ForwardComments`), whose files are shown with its own."""
        attachments, notes = self._files(message, forward)
        reader = await self._reader_of(message, actor)
        for cid in message.raw_channel_mentions[: self._settings.max_channel_mentions]:
            channel = message.guild.get_channel_or_thread(cid) if message.guild else None
            if channel is not None:  # a private thread's membership, for `_mentioned`
                await self._may_enter(message, reader, channel)
        references = await collect_references(
            message,
            max_depth=self._settings.max_reference_depth,
            max_count=self._settings.max_referenced_messages,
            resolve=lambda cid, mid: self._fetch_readable(reader, message, cid, mid),
            ours=self._ours,
        )
        request = gw.GenerateRequest(
            actor=actor,
            location=location_of(message.channel, message.guild),
            message_ids=[str(message.id)],
            references=references,
            attachments=attachments,
            mentions=self._mentioned(message, reader),
        )
        return request, notes

    def _files(
        self, message: discord.Message, forward: discord.Message | None
    ) -> tuple[list[common.Attachment], list[str]]:
        # A forward's files are its snapshot's.
        shown = [*shown_attachments(message), *(shown_attachments(forward) if forward else [])]
        return triage([to_attachment(a) for a in shown], self._limits)

    async def _reader_of(
        self, message: discord.Message, actor: common.Actor
    ) -> discord.Member | None:
        """The member whose view bounds what `message` shows: its author, or for a PluralKit
        repost the human `actor` names; None if the server does not know them."""
        known = self._known_reader(message)
        if known is not None or message.guild is None:
            return known
        # A PluralKit repost's author is its webhook; a message fetched from Discord's REST
        # API (🔄 after a restart) has a user, not a member.
        wanted = actor.user_id if message.webhook_id is not None else str(message.author.id)
        reader = await _member(message.guild, wanted)
        _keep(self._readers, message.id, reader)
        return reader

    def _known_reader(self, message: discord.Message) -> discord.Member | None:
        """Its author when a member writing, else the reader `base` looked up for it."""
        author = message.author
        if message.webhook_id is None and isinstance(author, discord.Member):
            return author
        return self._readers.get(message.id)

    def _visible(
        self,
        message: discord.Message,
        reader: discord.Member | None,
        channel: discord.abc.GuildChannel | discord.Thread,
    ) -> bool:
        """View Channel, and a private thread's membership as far as known for `message`."""
        return (
            reader is not None
            and channel.permissions_for(reader).view_channel
            and self._entry(message, reader, channel) is True
        )

    def _entry(
        self,
        message: discord.Message,
        reader: discord.Member,
        channel: discord.abc.GuildChannel | discord.Thread,
    ) -> bool | None:
        """Whether `reader` may be in `channel` beyond its permissions: anywhere but a private
        thread; in one with Manage Threads or as its member; None if not known yet."""
        if not isinstance(channel, discord.Thread) or not channel.is_private():
            return True
        if channel.permissions_for(reader).manage_threads:
            return True
        if any(m.id == reader.id for m in channel.members):
            return True
        return self._memberships.get((message.id, channel.id))

    async def _may_enter(
        self,
        message: discord.Message,
        reader: discord.Member | None,
        channel: discord.abc.GuildChannel | discord.Thread,
    ) -> bool:
        """`_entry`, asking Discord when not known (not in the thread: 404 Unknown Member; any
        other failure counts as not in it)."""
        if reader is None:
            return False
        known = self._entry(message, reader, channel)
        if known is not None or not isinstance(channel, discord.Thread):
            return known is True
        try:
            await channel.fetch_member(reader.id)
            member = True
        except discord.HTTPException:
            member = False
        _keep(self._memberships, (message.id, channel.id), member)
        return member

    def _mentioned(
        self, message: discord.Message, reader: discord.Member | None
    ) -> list[gw.MessageMention]:
        """The channels (those `reader` can see), roles and users the message mentions, as the
        prompt should know them."""
        guild = message.guild
        if guild is None:
            return []
        found: list[gw.MessageMention] = []
        for cid in message.raw_channel_mentions[: self._settings.max_channel_mentions]:
            channel = guild.get_channel_or_thread(cid)
            if channel is not None and self._visible(message, reader, channel):
                topic = getattr(channel, "topic", None) or ""
                found.append(
                    gw.MessageMention(
                        kind="channel", id=str(cid), name=channel.name, description=topic
                    )
                )
        for rid in message.raw_role_mentions[: self._settings.max_role_mentions]:
            role = guild.get_role(rid)
            if role is not None:
                found.append(gw.MessageMention(kind="role", id=str(rid), name=role.name))
        me = self._client.user
        for user in message.mentions[:5]:
            if me is None or user.id != me.id:
                found.append(
                    gw.MessageMention(kind="user", id=str(user.id), name=user.display_name)
                )
        return found

    def readable_text(self, message: discord.Message, text: str) -> str:
        """`text` with channel, role and user mentions as names (and channel topics: only of
        the channels the sender can see, as `base` found them for this message)."""
        guild = message.guild
        assert guild is not None  # on_message returns early for DMs
        reader = self._known_reader(message)

        def channel_info(cid: int) -> ChannelInfo | None:
            ch = guild.get_channel_or_thread(cid)
            if ch is None or not self._visible(message, reader, ch):
                return None
            return ChannelInfo(ch.name, getattr(ch, "topic", None))

        def role_name(rid: int) -> str | None:
            role = guild.get_role(rid)
            return role.name if role else None

        def user_name(uid: int) -> str | None:
            member = guild.get_member(uid) or discord.utils.get(message.mentions, id=uid)
            return member.display_name if member else None

        return resolve_mentions(
            text,
            channel=channel_info,
            role=role_name,
            user=user_name,
            max_channels=self._settings.max_channel_mentions,
            max_roles=self._settings.max_role_mentions,
        )

    async def readable(
        self, message: discord.Message, channel_id: int, message_id: int
    ) -> discord.Message | None:
        """For telling who a reply addresses: the message if the sender of `message` may read
        it. A PluralKit repost's sender is not known yet then: its reply embed is followed only
        into the repost's own channel, where they wrote (nothing of it reaches the model)."""
        reader = self._known_reader(message)
        own_channel = message.webhook_id is not None and channel_id == message.channel.id
        return await self._fetch_readable(
            reader, message, channel_id, message_id, check=reader is not None or not own_channel
        )

    async def _fetch_readable(
        self,
        reader: discord.Member | None,
        message: discord.Message,
        channel_id: int,
        message_id: int,
        *,
        check: bool = True,
    ) -> discord.Message | None:
        """The message if `reader` may read it (View Channel and Read Message History, and in a
        private thread membership or Manage Threads; never without a reader) or `check` is
        off; None otherwise, or if it is gone."""
        guild = message.guild
        channel = guild.get_channel_or_thread(channel_id) if guild else None
        if channel is None or not isinstance(channel, discord.abc.Messageable):
            return None
        if check:
            perms = channel.permissions_for(reader) if reader is not None else None
            if perms is None or not (perms.view_channel and perms.read_message_history):
                return None
            if not await self._may_enter(message, reader, channel):
                return None
        try:
            return await channel.fetch_message(message_id)
        except (discord.NotFound, discord.Forbidden):
            return None


def _keep(kept: OrderedDict[K, V], key: K, value: V) -> None:
    """Remembers `value` as the newest, forgetting the oldest beyond READERS_KEPT."""
    kept[key] = value
    kept.move_to_end(key)
    while len(kept) > READERS_KEPT:
        kept.popitem(last=False)


async def _member(guild: discord.Guild, user_id: str) -> discord.Member | None:
    if not user_id.isdigit():
        return None
    found = guild.get_member(int(user_id))
    if found is None:
        with contextlib.suppress(discord.HTTPException):  # 10007 Unknown Member: not here
            found = await guild.fetch_member(int(user_id))
    return found
