"""Posting as a personality through one webhook per channel, done as carefully as PluralKit.

- One webhook per channel, found (by the bot user that owns it, never by name: an
  admin may rename it) or created on first use, and cached; concurrent first uses create only
  one (a lock per channel). Webhooks are created on the posting path only: reading looks one
  up (`find`) and never makes one, which could read nothing (it posted nothing) and would
  cost an audit-log entry and one of the channel's 15.
- "Unknown Webhook" (10015: someone deleted it, or another process of the bot replaced it)
  drops the cache entry and retries once: a send through the webhook found or made then; a
  read, edit or delete of a message through the one found only (a webhook made then could
  reach none of the messages the deleted one posted; with none there, the 10015 stands).
- Discord's caps of 15 webhooks per channel (30007) and 1000 per guild (30058) become
  `WebhookLimitReached`, whose message tells an admin what to do.
- Names are made acceptable by Create Webhook's documented rules, and a few defensive ones
  (`sanitize_username`).
- Threads, forum posts and stage chats: the parent channel's webhook with `thread=`.
- Every send and edit sets `allowed_mentions` explicitly.
- Its own messages are read through it (`fetch`), which needs no permission in the channel:
  a bot without Read Message History still reads what it posted there. `serves` tells whether
  a message's webhook is the channel's of now (only that one can edit the message).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import discord
import structlog

log = structlog.get_logger(__name__)

USERNAME_LIMIT = 80
HAIR_SPACE = "\u200a"  # renders (so Discord keeps it), and breaks a forbidden word like PluralKit
UNKNOWN_MESSAGE = 10008
UNKNOWN_WEBHOOK = 10015
MAX_WEBHOOKS = 30007
MAX_GUILD_WEBHOOKS = 30058
FALLBACK_NAME = "Personality"
# What Discord drops from names before it checks them: zero-width and non-rendering characters.
_NON_RENDERING = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0]"
)
# clyde/discord: Create Webhook's documented rule; ```: defensive (sanitize_username).
_FORBIDDEN = re.compile(r"(c)(lyde)|(d)(iscord)|(`)(``)", re.IGNORECASE)

WebhookChannel = (
    discord.TextChannel | discord.ForumChannel | discord.VoiceChannel | discord.StageChannel
)
_T = TypeVar("_T")
# What a look-up for the cache gives: a webhook always (for_channel) or maybe (find).
_Hook = TypeVar("_Hook", discord.Webhook, discord.Webhook | None)


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

    Documented (discord-api-docs resources/webhook "Create Webhook", for a webhook's name;
    the docs give Execute Webhook's `username` no rules of their own, so it is held to
    these): no "clyde" or "discord" in it (case-insensitive), 1 to 80 characters, and the
    nickname rules of resources/user "Usernames and Nicknames" (some zero-width and
    non-rendering characters are limited; leading, trailing and repeated whitespace is
    trimmed). So those characters are dropped, whitespace collapsed, and "clyde"/"discord"
    broken with a hair space (U+200A, which renders), as PluralKit does.

    Defensive, not documented for webhooks: "```" in a name and a name equal to "everyone" or
    "here" are forbidden for *usernames* (the same docs page), not for nicknames or webhook
    names; but reports show Discord refusing "here" as an Execute Webhook `username`, and
    breaking them with a hair space costs nothing, so they are broken the same way."""
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
        """The channel's webhook: cached, found, or created (the posting path)."""
        return await self._cached_or(channel, self._owned_or_created)

    async def find(self, channel: object) -> discord.Webhook | None:
        """The webhook serving `channel` (a thread's is its parent's) if it has one: cached or
        found, never created (None)."""
        parent, _ = webhook_channel(channel)
        return await self._find(parent)

    async def serves(self, channel: object, webhook_id: int | None) -> bool:
        """Whether `webhook_id` (a message's) is the webhook serving `channel` now, the only
        one that can edit the message. When the cache names another, the channel's is looked
        up again (never created): the cached one may be gone, replaced by another process of
        the bot."""
        if webhook_id is None:
            return False
        parent, _ = webhook_channel(channel)
        cached = self._hooks.get(parent.id)
        if cached is not None:
            if cached.id == webhook_id:
                return True
            self.forget(parent.id)
        hook = await self._find(parent)
        return hook is not None and hook.id == webhook_id

    async def _find(self, parent: WebhookChannel) -> discord.Webhook | None:
        return await self._cached_or(parent, self._owned)

    async def _cached_or(
        self, channel: WebhookChannel, look_up: Callable[[WebhookChannel], Awaitable[_Hook]]
    ) -> _Hook | discord.Webhook:
        """The cached webhook, else the one `look_up` gives (cached if any)."""
        hook = self._hooks.get(channel.id)
        if hook is not None:
            return hook
        async with self._locks.setdefault(channel.id, asyncio.Lock()):
            hook = self._hooks.get(channel.id)
            if hook is not None:
                return hook
            found = await look_up(channel)
            if isinstance(found, discord.Webhook):
                self._hooks[channel.id] = found
                self._ids.add(found.id)
            return found

    async def _owned_or_created(self, channel: WebhookChannel) -> discord.Webhook:
        return await self._owned(channel) or await self._create(channel)

    async def _owned(self, channel: WebhookChannel) -> discord.Webhook | None:
        me = channel.guild.me
        for hook in await channel.webhooks():
            # The bot user that created it owns it, whatever an admin renamed it to.
            if hook.token and hook.user is not None and me is not None and hook.user.id == me.id:
                return hook
        return None

    async def _create(self, channel: WebhookChannel) -> discord.Webhook:
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
        await self._own_message(
            parent,
            await self.for_channel(parent),
            lambda hook: hook.edit_message(
                message_id,
                content=content,
                allowed_mentions=mentions,
                thread=thread or discord.utils.MISSING,
            ),
        )

    async def fetch(self, channel: object, message_id: int) -> discord.WebhookMessage | None:
        """One of the channel's webhook's own messages, read through the webhook (no channel
        permission needed); NotFound (10008) when it is gone, or was not posted by that
        webhook. None when the channel has no webhook of the bot's: none is made to read."""
        parent, thread = webhook_channel(channel)
        hook = await self._find(parent)
        if hook is None:
            return None
        try:
            return await self._own_message(
                parent,
                hook,
                lambda hook: hook.fetch_message(message_id, thread=thread or discord.utils.MISSING),
            )
        except discord.NotFound as exc:
            if exc.code != UNKNOWN_WEBHOOK:
                raise
            return None  # deleted, and no other there

    async def attach(
        self, channel: discord.abc.Messageable, message_id: int, files: list[discord.File]
    ) -> None:
        """Adds files (generated images) to a posted message as its attachments."""
        parent, thread = webhook_channel(channel)
        await self._own_message(
            parent,
            await self.for_channel(parent),
            lambda hook: hook.edit_message(
                message_id, attachments=files, thread=thread or discord.utils.MISSING
            ),
        )

    async def delete(self, channel: object, message_id: int) -> bool:
        """Deletes one of the channel's webhook's messages; whether it did. With no webhook
        of the bot's there (an admin deleted it), none is made to try: it could reach none of
        the messages the deleted one posted (False, logged: the message stays)."""
        parent, thread = webhook_channel(channel)
        hook = await self._find(parent)
        if hook is None:
            log.info("bot.delete_without_webhook", channel_id=parent.id, message_id=message_id)
            return False
        await self._own_message(
            parent,
            hook,
            lambda hook: hook.delete_message(message_id, thread=thread or discord.utils.MISSING),
        )
        return True

    async def _own_message(
        self,
        parent: WebhookChannel,
        hook: discord.Webhook,
        call: Callable[[discord.Webhook], Awaitable[_T]],
    ) -> _T:
        """`call` (on one of the webhook's messages) through `hook`; after Unknown Webhook,
        once more through the channel's webhook looked up again, never one created (it could
        reach none of the messages the deleted one posted): with none, the 10015 stands."""
        try:
            return await call(hook)
        except discord.NotFound as exc:
            if exc.code != UNKNOWN_WEBHOOK:
                raise
            if self._hooks.get(parent.id) is hook:  # not one a concurrent send cached since
                self.forget(parent.id)
            found = await self._find(parent)
            if found is None or found.id == hook.id:
                raise
            gone = exc
        try:
            return await call(found)
        except discord.NotFound as exc:
            # Another webhook cannot reach the deleted one's message (10008): what stands is
            # that its webhook is gone, which is what the caller must be told.
            if exc.code == UNKNOWN_MESSAGE:
                raise gone from exc
            raise


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
