"""Discord's per-route rate limits as the fake keeps them: fixed-window buckets (rules.py
`Bucket`) answered with 429, `retry_after`, `X-RateLimit-*` headers and `Via` (as Discord's
edge sends it; discord.py's webhook adapter retries a 429 only then). Webhooks use them
(webhooks.py), and so do interaction follow-ups and edits: "Interactions webhooks share the
same rate limit properties as normal webhooks" (interactions/receiving-and-responding)."""

from __future__ import annotations

import time

from aiohttp import web

from tzurot.testing.fake_discord.rules import Bucket
from tzurot.testing.fake_discord.users import Users
from tzurot.testing.fake_discord.wire import json_response


class RateLimits(Users):
    def _limited(self, route: str, *buckets: tuple[str, tuple[int, float]]) -> web.Response | None:
        """429 if any bucket is empty; else counts the request in each."""
        now = time.monotonic()
        live = [
            self.buckets.setdefault(key, Bucket(limit, per, key)) for key, (limit, per) in buckets
        ]
        for bucket in live:
            bucket.hits = [t for t in bucket.hits if now - t < bucket.per]
            if len(bucket.hits) >= bucket.limit:
                wait = bucket.per - (now - bucket.hits[0])
                self.refusals.append((route, 429, 0))
                self.rate_limited.append((route, bucket.name))
                headers = {
                    **bucket.headers(now, time.time()),
                    "Retry-After": f"{wait:.3f}",
                    "X-RateLimit-Scope": "user",
                    "Via": "1.1 google",
                }
                body = {
                    "message": "You are being rate limited.",
                    "retry_after": round(wait, 3),
                    "global": False,
                }
                return json_response(body, status=429, headers=headers)
        for bucket in live:
            bucket.take(now)
        return None

    def _rate_headers(self, key: str) -> dict[str, str]:
        bucket = self.buckets.get(key)
        return bucket.headers(time.monotonic(), time.time()) if bucket else {}
