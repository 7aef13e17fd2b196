"""PluralKit proxying, answered exactly once and as the human behind it.

PluralKit posts its webhook repost first and deletes the user's original about 1000 ms later.
So a human message that addresses a personality is held briefly (`hold` seconds): if a repost
whose PluralKit record has `original ==` its id arrives meanwhile, or the original is deleted,
only the repost is answered; after the hold, PluralKit is asked about the original id once
(it answers for originals too). Whichever of the two is answered first claims the original id,
so the other is never answered. PluralKit is only asked about messages that address a
personality (the caller checks), never about interaction replies. A repost answered is known
by the original it stands for (`original_of`: the forward a comment took goes to its repost).

A reply made through PluralKit has no `message_reference`: the repost carries a reply embed
whose author name ends with " ↩️" and whose links point at the replied message.
"""

from __future__ import annotations

import asyncio
import re
from collections import OrderedDict
from collections.abc import Callable

import discord

from tzurot.bot.dedup import SeenMessages
from tzurot.bot.pluralkit import PluralKit

REPLY_MARK = "\u21a9\ufe0f"
_JUMP = re.compile(r"https://(?:\w+\.)?discord(?:app)?\.com/channels/\d+/(\d+)/(\d+)")


class ProxyWatch:
    def __init__(self, pluralkit: PluralKit, *, hold: float, capacity: int = 10_000) -> None:
        self._pk, self._hold, self._capacity = pluralkit, hold, capacity
        self._holds: dict[int, asyncio.Event] = {}
        self._answered = SeenMessages(capacity)
        self._originals: OrderedDict[int, int] = OrderedDict()  # repost id -> original id

    async def original_was_proxied(self, message_id: int, deleted: Callable[[int], bool]) -> bool:
        """Holds a human message; True when PluralKit proxied it (its repost is answered)."""
        event = self._holds.setdefault(message_id, asyncio.Event())
        try:
            await asyncio.wait_for(event.wait(), self._hold)
        except TimeoutError:
            pass
        else:
            return True
        finally:
            self._holds.pop(message_id, None)
        if deleted(message_id):
            return True
        if await self._pk.record(message_id, retry=False) is not None:
            return True
        return not self._answered.first_time(message_id)

    async def sender_of_repost(self, message_id: int) -> str | None:
        """The human behind a webhook message PluralKit posted; None if it is not PluralKit's
        or its original was answered already."""
        record = await self._pk.record(message_id)
        if record is None:
            return None
        if record.original:
            held = self._holds.get(record.original)
            if held is not None:
                held.set()
            if not self._answered.first_time(record.original):
                return None
            self._originals[message_id] = record.original
            while len(self._originals) > self._capacity:
                self._originals.popitem(last=False)
        return record.sender

    def original_of(self, message_id: int) -> int:
        """The message PluralKit reposted as `message_id` (which is answered instead of it),
        as its record named it when `sender_of_repost` read it; 0 if none is known."""
        return self._originals.get(message_id, 0)

    def deleted(self, message_id: int) -> None:
        held = self._holds.get(message_id)
        if held is not None:
            held.set()


def reply_embed_target(message: discord.Message) -> tuple[int, int] | None:
    """(channel id, message id) a PluralKit reply embed points at, if the message has one."""
    for embed in message.embeds:
        name = embed.author.name or ""
        if not name.rstrip().endswith(REPLY_MARK):
            continue
        for text in (embed.author.url or "", embed.description or ""):
            found = _JUMP.search(text)
            if found:
                return int(found.group(1)), int(found.group(2))
    return None
