"""Posting as a personality through one webhook per channel, done as carefully as PluralKit.

- One webhook per channel, found or created on first use and cached; concurrent first uses
  create only one (a lock per channel).
- "Unknown Webhook" (10015: someone deleted it) drops the cache entry and retries once.
- Discord's cap of 15 webhooks per channel (30007) becomes `WebhookLimitReached`, whose message
  tells an admin what to do.
- Names are cut to 80 characters and made acceptable: Discord refuses usernames containing
  "clyde" or "discord", equal to "everyone"/"here", or shorter than 1 character.
- Threads and forum posts use the parent channel's webhook with `thread=`.
"""

from __future__ import annotations

import asyncio

import discord

USERNAME_LIMIT = 80
_ZWSP = "\u200b"
_BLANK = "\u17b5"  # an invisible character Discord accepts, to pad one-letter names
UNKNOWN_WEBHOOK = 10015
MAX_WEBHOOKS = 30007

WebhookChannel = discord.TextChannel | discord.ForumChannel | discord.VoiceChannel


class WebhookLimitReached(Exception):
    """The channel has 15 webhooks already; an admin must delete one."""

    def __init__(self, channel_name: str) -> None:
        super().__init__(
            f"#{channel_name} already has Discord's maximum of 15 webhooks, so personalities "
            "cannot post there. A server admin can delete an unused webhook in Channel "
            "Settings → Integrations → Webhooks."
        )


def sanitize_username(name: str) -> str:
    """A webhook username Discord accepts, as close to `name` as possible."""
    clean = " ".join(name.split()) or "Personality"
    for word in ("clyde", "discord"):
        lowered = clean.casefold()
        start = lowered.find(word)
        while start != -1:
            clean = clean[: start + 1] + _ZWSP + clean[start + 1 :]
            lowered = clean.casefold()
            start = lowered.find(word, start + 2)
    if clean.casefold() in {"everyone", "here"}:
        clean = clean + _ZWSP
    if len(clean) < 2:
        clean = clean + _BLANK
    return clean[:USERNAME_LIMIT]


def webhook_channel(
    channel: discord.abc.Messageable,
) -> tuple[WebhookChannel, discord.Thread | None]:
    """The channel that owns the webhook, and the thread to post into (if any)."""
    if isinstance(channel, discord.Thread):
        parent = channel.parent
        if not isinstance(parent, WebhookChannel):
            raise TypeError(f"thread {channel.id} has no parent that can hold a webhook")
        return parent, channel
    if isinstance(channel, WebhookChannel):
        return channel, None
    raise TypeError(f"{type(channel).__name__} cannot hold a webhook")


class WebhookPool:
    """The bot's webhook per channel; `send`, `edit` and `delete` post as a personality."""

    def __init__(self, name: str = "Tzurot") -> None:
        self.name = name
        self._hooks: dict[int, discord.Webhook] = {}
        self._locks: dict[int, asyncio.Lock] = {}

    def owns(self, webhook_id: int | None) -> bool:
        return webhook_id is not None and any(h.id == webhook_id for h in self._hooks.values())

    async def for_channel(self, channel: WebhookChannel) -> discord.Webhook:
        hook = self._hooks.get(channel.id)
        if hook is not None:
            return hook
        async with self._locks.setdefault(channel.id, asyncio.Lock()):
            hook = self._hooks.get(channel.id)
            if hook is None:
                hook = await self._find_or_create(channel)
                self._hooks[channel.id] = hook
        return hook

    async def for_channel_of(self, channel: object) -> discord.Webhook:
        """The webhook serving `channel` (a thread's is its parent's)."""
        parent, _ = webhook_channel(channel)  # type: ignore[arg-type]  # raises TypeError if none
        return await self.for_channel(parent)

    async def _find_or_create(self, channel: WebhookChannel) -> discord.Webhook:
        me = channel.guild.me
        for hook in await channel.webhooks():
            mine = hook.user is not None and me is not None and hook.user.id == me.id
            if hook.name == self.name and hook.token and mine:
                return hook
        try:
            return await channel.create_webhook(name=self.name, reason="Tzurot personalities")
        except discord.HTTPException as exc:
            if exc.code == MAX_WEBHOOKS:
                raise WebhookLimitReached(channel.name) from exc
            raise

    def forget(self, channel_id: int) -> None:
        self._hooks.pop(channel_id, None)

    async def send(
        self,
        channel: discord.abc.Messageable,
        content: str,
        *,
        username: str,
        avatar_url: str | None,
    ) -> discord.WebhookMessage:
        parent, thread = webhook_channel(channel)
        for attempt in (1, 2):
            hook = await self.for_channel(parent)
            try:
                return await hook.send(
                    content,
                    username=sanitize_username(username),
                    avatar_url=avatar_url or discord.utils.MISSING,
                    thread=thread or discord.utils.MISSING,
                    allowed_mentions=discord.AllowedMentions(everyone=False, roles=False),
                    wait=True,
                )
            except discord.NotFound as exc:
                if exc.code != UNKNOWN_WEBHOOK or attempt == 2:
                    raise
                self.forget(parent.id)
        raise AssertionError("unreachable")

    async def edit(self, channel: discord.abc.Messageable, message_id: int, content: str) -> None:
        parent, thread = webhook_channel(channel)
        hook = await self.for_channel(parent)
        await hook.edit_message(message_id, content=content, thread=thread or discord.utils.MISSING)

    async def attach(
        self, channel: discord.abc.Messageable, message_id: int, files: list[discord.File]
    ) -> None:
        """Adds files (generated images) to a posted message as its attachments."""
        parent, thread = webhook_channel(channel)
        hook = await self.for_channel(parent)
        await hook.edit_message(
            message_id, attachments=files, thread=thread or discord.utils.MISSING
        )

    async def delete(self, channel: discord.abc.Messageable, message_id: int) -> None:
        parent, thread = webhook_channel(channel)
        hook = await self.for_channel(parent)
        await hook.delete_message(message_id, thread=thread or discord.utils.MISSING)
