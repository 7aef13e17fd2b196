"""Discord's rate limit buckets and their 429 answers, as the fake keeps them
(discord-api-docs developers/topics/rate-limits.mdx).

- Headers (L31-45): `X-RateLimit-Limit`, `-Remaining`, `-Reset` (epoch seconds), `-Reset-After`
  (seconds, "Can have decimals") and `-Bucket`, "A unique string denoting the rate limit
  being encountered (non-inclusive of top-level resources in the path)": the same hash for
  every channel or webhook, the fake's bucket key without its id.
- A 429's body (L54-59): `message`, `retry_after` (float seconds), `global`. Its
  `Retry-After` header is whole seconds, as in the examples (L69, L90, L110: `Retry-After: 65`
  with `retry_after: 64.57`): the wait rounded up.
- Scope (L45): `user` for a per-route limit of the bot, `global` with `X-RateLimit-Global:
  true` for the global one, whose example (L107-117) carries no route headers.
- The global limit (L122): "All bots can make up to 50 requests per second"; "If no
  authorization header is provided, then the limit is applied to the IP address".

Every 429 also carries `Via`, as Discord's edge sends it: discord.py retries a 429 only then.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field

from aiohttp import web

from tzurot.testing.fake_discord.wire import json_response

GLOBAL_RATE = (50, 1.0)
"""Requests per second per bot token (or per IP address without one): rate-limits.mdx L122."""
CREATE_MESSAGE_RATE = (5, 5.0)
"""Create Message per channel. Discord documents no number (rate-limits.mdx L14: per-route
limits exist, L11: not to be hard coded): this is the fake's choice, a modest one."""
RATE_LIMITED = "You are being rate limited."


def bucket_hash(key: str) -> str:
    """The `X-RateLimit-Bucket` of a bucket key ("webhook:123"): opaque, and the same for
    every id of that kind (the header excludes top-level resources, rate-limits.mdx L43)."""
    kind = key.split(":", 1)[0]
    return hashlib.sha1(kind.encode(), usedforsecurity=False).hexdigest()[:16]


@dataclass
class Bucket:
    """`limit` requests in any `per` seconds (a sliding window), as Discord's buckets behave."""

    limit: int
    per: float
    name: str
    hits: list[float] = field(default_factory=list)

    def wait(self, now: float) -> float:
        """0.0 if a request may go now, else the seconds until one may."""
        self.hits = [t for t in self.hits if now - t < self.per]
        if len(self.hits) >= self.limit:
            return self.per - (now - self.hits[0])
        return 0.0

    def take(self, now: float) -> float:
        """0.0 if a request may go now (and counts it), else the seconds to wait."""
        wait = self.wait(now)
        if wait == 0.0:
            self.hits.append(now)
        return wait

    def headers(self, now: float, wall: float) -> dict[str, str]:
        live = [t for t in self.hits if now - t < self.per]
        reset_after = self.per - (now - live[0]) if live else self.per
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(0, self.limit - len(live))),
            "X-RateLimit-Reset": f"{wall + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": bucket_hash(self.name),
        }


def too_many(wait: float, headers: dict[str, str], *, is_global: bool) -> web.Response:
    """Discord's 429: the body's `retry_after` to the millisecond, `Retry-After` in whole
    seconds (rounded up), the scope, and `Via`."""
    scope = (
        {"X-RateLimit-Global": "true", "X-RateLimit-Scope": "global"}
        if is_global
        else {"X-RateLimit-Scope": "user"}
    )
    body = {"message": RATE_LIMITED, "retry_after": round(wait, 3), "global": is_global}
    retry = {"Retry-After": str(max(1, math.ceil(wait)))}
    return json_response(
        body, status=429, headers={**headers, **retry, **scope, "Via": "1.1 google"}
    )
