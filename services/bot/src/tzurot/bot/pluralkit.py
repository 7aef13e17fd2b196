"""PluralKit: who really sent a proxied message (`GET /v2/messages/{id}`, by the repost's id or
the original's), within PluralKit's rules: an identifying User-Agent, at most 10 lookups a
second, 429 `retry_after` (milliseconds) honoured plus one interval (`_retry_after`), for up
to `RETRY_429_FOR` seconds (the limit is per address: other shards spend it too). Found
records are cached; failures are not (PluralKit stores a message just after posting it, so a
miss now may be a hit in a second)."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp

USER_AGENT = "Tzurot (+https://github.com/lbds137/tzurot; a Discord AI-character bot)"
RATE, PER = 10, 1.0
RETRY_429_FOR = 10.0  # seconds a lookup keeps coming back as PluralKit's 429s say


@dataclass(frozen=True)
class ProxiedMessage:
    """PluralKit's record of a proxied message."""

    id: int
    original: int
    sender: str


class _Limiter:
    """At most `rate` starts per `per` seconds (a sliding window), and none while paused.

    A 429 pauses every lookup, not only the refused one: PluralKit counts each refused
    request against the limit too, so lookups retrying on their own keep one another refused.
    PluralKit's own limit (`X-RateLimit-Limit`) lowers the rate: its GCRA runs a request only
    while one more would remain, so a burst of `limit` meets a 429 and `limit - 1` does not.
    """

    def __init__(self, rate: int, per: float) -> None:
        self._rate, self._per = rate, per
        self._starts: list[float] = []
        self._paused_until = 0.0
        self._lock = asyncio.Lock()

    def pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)

    def follow(self, headers: Mapping[str, str]) -> None:
        """Keeps under the limit PluralKit states (never above our own)."""
        try:
            limit = int(headers.get("X-RateLimit-Limit") or 0)
        except ValueError:
            return
        if limit > 1:
            self._rate = min(self._rate, limit - 1)

    async def wait(self) -> None:
        async with self._lock:
            while True:
                now = time.monotonic()
                if now < self._paused_until:
                    await asyncio.sleep(self._paused_until - now)
                    continue
                self._starts = [t for t in self._starts if now - t < self._per]
                if len(self._starts) < self._rate:
                    self._starts.append(now)
                    return
                await asyncio.sleep(self._per - (now - self._starts[0]))


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
        self._cache: OrderedDict[int, ProxiedMessage] = OrderedDict()
        self._limiter = _Limiter(RATE, PER)

    async def sender_of(self, message_id: int) -> str | None:
        """The Discord id of the human behind a proxied message, None if not PluralKit's."""
        found = await self.record(message_id)
        return found.sender if found else None

    async def record(self, message_id: int, *, retry: bool = True) -> ProxiedMessage | None:
        """PluralKit's record for a repost or an original message id, or None."""
        cached = self._cache.get(message_id)
        if cached is not None:
            return cached
        found = await self._lookup(message_id)
        if found is None and retry and self._retry_delay:
            await asyncio.sleep(self._retry_delay)  # recorded just after the repost
            found = await self._lookup(message_id)
        if found is not None:
            for key in (found.id, found.original):
                self._cache[key] = found
            while len(self._cache) > self._capacity:
                self._cache.popitem(last=False)
        return found

    async def _lookup(self, message_id: int) -> ProxiedMessage | None:
        url = f"{self._base}/messages/{message_id}"
        headers = {"User-Agent": USER_AGENT}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + RETRY_429_FOR  # others may share PluralKit's per-IP limit
        while True:
            await self._limiter.wait()
            try:
                async with self._session.get(
                    url, headers=headers, timeout=aiohttp.ClientTimeout(total=5)
                ) as response:
                    self._limiter.follow(response.headers)
                    if response.status == 429:
                        body = await response.json(content_type=None)
                        wait = _retry_after(body, response.headers)
                        if loop.time() + wait > deadline:
                            return None
                        self._limiter.pause(wait)  # every lookup waits, not this one alone
                        continue
                    if response.status != 200:
                        return None
                    data = await response.json()
            except (aiohttp.ClientError, TimeoutError, ValueError):
                return None
            sender = data.get("sender")
            if not sender:
                return None
            return ProxiedMessage(
                int(data.get("id") or message_id), int(data.get("original") or 0), str(sender)
            )


def _retry_after(body: object, headers: Mapping[str, str]) -> float:
    """Seconds to wait after a 429: its `retry_after` (ms) and one interval more. PluralKit
    runs a request only while one more would remain after it (`remaining > 0` over its GCRA),
    so at exactly `retry_after` it refuses again, with 0, and counts that refusal too."""
    try:
        wait_ms = float(body.get("retry_after", 1000)) if isinstance(body, dict) else 1000.0
    except (TypeError, ValueError):
        wait_ms = 1000.0
    try:
        limit = int(headers.get("X-RateLimit-Limit") or RATE)
    except ValueError:
        limit = RATE
    return max(wait_ms, 0.0) / 1000 + 1 / max(limit, 1)
