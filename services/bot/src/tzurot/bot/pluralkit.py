"""PluralKit: who really sent a proxied message (`GET /v2/messages/{id}`), cached."""

from __future__ import annotations

import asyncio
from collections import OrderedDict

import aiohttp


class PluralKit:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str = "https://api.pluralkit.me/v2",
        *,
        retry_delay: float = 1.0,
        capacity: int = 5_000,
    ) -> None:
        self._session, self._base = session, base_url.rstrip("/")
        self._retry_delay, self._capacity = retry_delay, capacity
        self._cache: OrderedDict[int, str | None] = OrderedDict()

    async def sender_of(self, message_id: int) -> str | None:
        """The Discord id of the human behind a proxied message, None if not PluralKit's."""
        if message_id in self._cache:
            return self._cache[message_id]
        sender = await self._lookup(message_id)
        if sender is None and self._retry_delay:
            # PluralKit stores the message just after it posts it.
            await asyncio.sleep(self._retry_delay)
            sender = await self._lookup(message_id)
        self._cache[message_id] = sender
        if len(self._cache) > self._capacity:
            self._cache.popitem(last=False)
        return sender

    async def _lookup(self, message_id: int) -> str | None:
        url = f"{self._base}/messages/{message_id}"
        try:
            async with self._session.get(url, timeout=aiohttp.ClientTimeout(total=5)) as response:
                if response.status != 200:
                    return None
                data = await response.json()
        except (aiohttp.ClientError, TimeoutError):
            return None
        sender = data.get("sender")
        return str(sender) if sender else None
