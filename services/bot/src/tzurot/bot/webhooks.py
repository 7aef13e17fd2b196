"""Posting as a personality through one webhook per channel, done as carefully as PluralKit.

- One webhook per channel, found (by the bot user that owns it, never by name: an
  admin may rename it) or created on first use, and cached; concurrent first uses create only
  one (a lock per channel). Webhooks are created on the posting path only.
- "Unknown Webhook" (10015: someone deleted it) drops the cache entry and retries once.
- Discord's caps of 15 webhooks per channel (30007) and 1000 per guild (30058) become
  `WebhookLimitReached`, whose message tells an admin what to do.
- Names are made acceptable the way Discord checks them (`sanitize_username`).
- Threads, forum posts and stage chats: the parent channel's webhook with `thread=`.
- Every send and edit sets `allowed_mentions` explicitly.
- Its own messages are read through it (`fetch`), which needs no permission in the channel:
  a bot without Read Message History still reads what it posted there.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence

import discord
import structlog

log = structlog.get_logger(__name__)

USERNAME_LIMIT = 80
HAIR_SPACE = "\u200a"  # renders (so Discord keeps it), and breaks a forbidden word like PluralKit
UNKNOWN_WEBHOOK = 10015
MAX_WEBHOOKS = 30007
MAX_GUILD_WEBHOOKS = 30058
FALLBACK_NAME = "Personality"
# What Discord drops from names before it checks them: zero-width and non-rendering characters.
_NON_RENDERING = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0]"
)
_FORBIDDEN = re.compile(r"(c)(lyde)|(d)(iscord)|(`)(``)", re.IGNORECASE)

WebhookChannel = (
    discord.TextChannel | discord.ForumChannel | discord.VoiceChannel | discord.StageChannel
)


class WebhookLimitReached(Exception):
    """The channel (or the server) holds Discord's maximum of webhooks; an admin must act."""

    def __init__(self, channel_name: str, *, guild: bool = False) -> None:
        if guild:
            text = (
                f"This server already has Discord's maximum of 1000 webhooks, so personalities "
                f"cannot post in #{channel_name}. A server admin can delete unused webhooks in "
                "Server Settings → Integrations."
            )
        else:
            text = (
                f"#{channel_name} already has Discord's maximum of 15 webhooks, so personalities "
                "cannot post there. A server admin can delete an unused webhook in Channel "
                "Settings → Integrations → Webhooks."
            )
        super().__init__(text)


def sanitize_username(name: str) -> str:
    """A webhook username Discord accepts, as close to `name` as possible.

    Discord strips zero-width and non-rendering characters, trims whitespace, then refuses
    names containing "clyde", "discord" or "```", equal to "everyone"/"here", or outside 1 to 80
    characters. So: strip those characters ourselves and break forbidden words with a hair
    space (U+200A, which renders), as PluralKit does."""
    clean = " ".join(_NON_RENDERING.sub("", name).split())
    clean = _FORBIDDEN.sub(lambda m: HAIR_SPACE.join(g for g in m.groups() if g is not None), clean)
    if clean.casefold() in {"everyone", "here"}:
        clean = clean[:2] + HAIR_SPACE + clean[2:]
    clean = clean[:USERNAME_LIMIT].strip()
    return clean or FALLBACK_NAME


def webhook_channel(
    channel: object,
) -> tuple[WebhookChannel, discord.Thread | None]:
    """The channel that owns the webhook, and the thread to post into (if any); TypeError for
    channels that cannot hold one (DMs, categories, a thread without such a parent)."""
    if isinstance(channel, discord.Thread):
        parent = channel.parent
        if not isinstance(parent, WebhookChannel):
            raise TypeError(f"thread {channel.id} has no parent that can hold a webhook")
        return parent, channel
    if isinstance(channel, discord.ForumChannel):
        raise TypeError("a forum takes messages only in its posts")
    if isinstance(channel, WebhookChannel):
        return channel, None
    raise TypeError(f"{type(channel).__name__} cannot hold a webhook")


class WebhookPool:
    """The bot's webhook per channel; `send`, `edit` and `delete` post as a personality."""

    def __init__(self, name: str = "Tzurot") -> None:
        self.name = name
        self._hooks: dict[int, discord.Webhook] = {}
        self._locks: dict[int, asyncio.Lock] = {}
        self._ids: set[int] = set()

    def owns(self, webhook_id: int | None) -> bool:
        """One of the webhooks this bot found or created (no API call)."""
        return webhook_id is not None and webhook_id in self._ids

    async def for_channel(self, channel: WebhookChannel) -> discord.Webhook:
        hook = self._hooks.get(channel.id)
        if hook is not None:
            return hook
        async with self._locks.setdefault(channel.id, asyncio.Lock()):
            hook = self._hooks.get(channel.id)
            if hook is None:
                hook = await self._find_or_create(channel)
                self._hooks[channel.id] = hook
                self._ids.add(hook.id)
        return hook

    async def _find_or_create(self, channel: WebhookChannel) -> discord.Webhook:
        me = channel.guild.me
        for hook in await channel.webhooks():
            # The bot user that created it owns it, whatever an admin renamed it to.
            if hook.token and hook.user is not None and me is not None and hook.user.id == me.id:
                return hook
        try:
            return await channel.create_webhook(name=self.name, reason="Tzurot personalities")
        except discord.HTTPException as exc:
            if exc.code == MAX_WEBHOOKS:
                raise WebhookLimitReached(channel.name) from exc
            if exc.code == MAX_GUILD_WEBHOOKS:
                raise WebhookLimitReached(channel.name, guild=True) from exc
            raise

    async def for_channel_of(self, channel: object) -> discord.Webhook:
        """The webhook serving `channel` (a thread's is its parent's); TypeError if none can."""
        parent, _ = webhook_channel(channel)
        return await self.for_channel(parent)

    def forget(self, channel_id: int) -> None:
        self._hooks.pop(channel_id, None)

    async def send(
        self,
        channel: object,
        content: str,
        *,
        username: str,
        avatar_url: str | None,
        mentions: discord.AllowedMentions,
        suppress_embeds: bool = False,
        files: Sequence[discord.File] = (),
    ) -> discord.WebhookMessage:
        """Posts `content` (and `files`: those of one message) as `username`."""
        parent, thread = webhook_channel(channel)
        for attempt in (1, 2):
            hook = await self.for_channel(parent)
            try:
                return await hook.send(
                    content,
                    username=sanitize_username(username),
                    avatar_url=avatar_url or discord.utils.MISSING,
                    thread=thread or discord.utils.MISSING,
                    allowed_mentions=mentions,
                    suppress_embeds=suppress_embeds,
                    files=list(files) or discord.utils.MISSING,
                    wait=True,
                )
            except discord.NotFound as exc:
                if exc.code != UNKNOWN_WEBHOOK or attempt == 2:
                    raise
                self.forget(parent.id)
        raise AssertionError("unreachable")

    async def edit(
        self,
        channel: object,
        message_id: int,
        content: str,
        *,
        mentions: discord.AllowedMentions,
    ) -> None:
        parent, thread = webhook_channel(channel)
        hook = await self.for_channel(parent)
        await hook.edit_message(
            message_id,
            content=content,
            allowed_mentions=mentions,
            thread=thread or discord.utils.MISSING,
        )

    async def fetch(self, channel: object, message_id: int) -> discord.WebhookMessage:
        """One of the channel's webhook's own messages, read through the webhook (no channel
        permission needed); NotFound when it is gone, or was not posted by that webhook."""
        parent, thread = webhook_channel(channel)
        hook = await self.for_channel(parent)
        return await hook.fetch_message(message_id, thread=thread or discord.utils.MISSING)

    async def attach(
        self, channel: discord.abc.Messageable, message_id: int, files: list[discord.File]
    ) -> None:
        """Adds files (generated images) to a posted message as its attachments."""
        parent, thread = webhook_channel(channel)
        hook = await self.for_channel(parent)
        await hook.edit_message(
            message_id, attachments=files, thread=thread or discord.utils.MISSING
        )

    async def delete(self, channel: object, message_id: int) -> None:
        parent, thread = webhook_channel(channel)
        hook = await self.for_channel(parent)
        await hook.delete_message(message_id, thread=thread or discord.utils.MISSING)


async def delete_messages(
    webhooks: WebhookPool, channel: object, message_ids: Sequence[int]
) -> None:
    """Deletes our messages, up to the first one Discord refuses (logged: what asked for it
    goes on); one deleted already (a moderator, a second reaction) is passed over."""
    for message_id in message_ids:
        try:
            await webhooks.delete(channel, message_id)
        except discord.NotFound:
            pass
        except (discord.HTTPException, TypeError, WebhookLimitReached) as exc:
            log.info("bot.delete_refused", error=type(exc).__name__)
            return
