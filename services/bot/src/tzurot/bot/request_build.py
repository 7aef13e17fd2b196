"""What is sent for a Discord message: the GenerateRequest every addressed personality gets
(references, attachments, mentions) and the message's text with mentions made readable."""

from __future__ import annotations

import discord

from tzurot.bot.attachments import AttachmentLimits, to_attachment, triage
from tzurot.bot.config import BotSettings
from tzurot.bot.gateway_client import location_of
from tzurot.bot.mentions import ChannelInfo, resolve_mentions
from tzurot.bot.references import collect_references
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw


class RequestBuilder:
    def __init__(self, client: discord.Client, settings: BotSettings) -> None:
        self._client, self._settings = client, settings
        self._limits = AttachmentLimits(settings.max_image_bytes, settings.max_audio_bytes)

    async def base(
        self, message: discord.Message, actor: common.Actor
    ) -> tuple[gw.GenerateRequest, list[str]]:
        """What every addressed personality gets (content is set per personality), and notes
        about attachments left out."""
        attachments, notes = triage([to_attachment(a) for a in message.attachments], self._limits)
        references = await collect_references(
            message,
            max_depth=self._settings.max_reference_depth,
            max_count=self._settings.max_referenced_messages,
            resolve=lambda cid, mid: self.readable(message, cid, mid),
        )
        request = gw.GenerateRequest(
            actor=actor,
            location=location_of(message.channel, message.guild),
            message_ids=[str(message.id)],
            references=references,
            attachments=attachments,
            mentions=self._mentioned(message),
        )
        return request, notes

    def _mentioned(self, message: discord.Message) -> list[gw.MessageMention]:
        """The channels, roles and users the message mentions, as the prompt should know them."""
        guild = message.guild
        if guild is None:
            return []
        found: list[gw.MessageMention] = []
        for cid in message.raw_channel_mentions[: self._settings.max_channel_mentions]:
            channel = guild.get_channel_or_thread(cid)
            if channel is not None:
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
        """`text` with channel, role and user mentions as names (and channel topics)."""
        guild = message.guild
        assert guild is not None  # on_message returns early for DMs

        def channel_info(cid: int) -> ChannelInfo | None:
            ch = guild.get_channel_or_thread(cid)
            return ChannelInfo(ch.name, getattr(ch, "topic", None)) if ch else None

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
        """The message if the author of `message` may read it; links elsewhere are skipped."""
        guild = message.guild
        channel = guild.get_channel_or_thread(channel_id) if guild else None
        if channel is None or not isinstance(channel, discord.abc.Messageable):
            return None
        author = message.author
        if isinstance(author, discord.Member):
            perms = channel.permissions_for(author)
            if not (perms.view_channel and perms.read_message_history):
                return None
        try:
            return await channel.fetch_message(message_id)
        except (discord.NotFound, discord.Forbidden):
            return None
