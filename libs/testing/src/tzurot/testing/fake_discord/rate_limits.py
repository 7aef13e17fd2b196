"""Discord's rate limits as the fake applies them (buckets.py: the buckets and the 429s).

- Global (rate-limits.mdx L120-128): 50 requests per second per bot token, or per IP address
  for a request without an `Authorization` header (the webhook-token routes), checked before
  any route's own limit. "Interaction endpoints are not bound to the bot's Global Rate Limit"
  (L128; interactions/receiving-and-responding.mdx L437): the callback and the routes under
  `/webhooks/{application.id}/{interaction.token}` are not counted.
- Per route: webhooks (webhooks.py), and interaction follow-ups and edits: "Interactions
  webhooks share the same rate limit properties as normal webhooks" (receiving-and-responding
  L429); Create Message per channel (channels.py, buckets.py `CREATE_MESSAGE_RATE`).
"""

from __future__ import annotations

import time

from aiohttp import web

from tzurot.testing.fake_discord.buckets import Bucket, too_many
from tzurot.testing.fake_discord.rules import API_PREFIX
from tzurot.testing.fake_discord.users import Users


class RateLimits(Users):
    def _limited(self, route: str, *buckets: tuple[str, tuple[int, float]]) -> web.Response | None:
        """429 if any bucket is empty; else counts the request in each."""
        now = time.monotonic()
        live = [
            self.buckets.setdefault(key, Bucket(limit, per, key)) for key, (limit, per) in buckets
        ]
        for bucket in live:
            wait = bucket.wait(now)
            if wait > 0:
                self.refusals.append((route, 429, 0))
                self.rate_limited.append((route, bucket.name))
                return too_many(wait, bucket.headers(now, time.time()), is_global=False)
        for bucket in live:
            bucket.take(now)
        return None

    def _rate_headers(self, key: str) -> dict[str, str]:
        bucket = self.buckets.get(key)
        return bucket.headers(time.monotonic(), time.time()) if bucket else {}

    def _global_key(self, request: web.Request) -> str | None:
        """The global bucket a request counts in: its bot token's, else its IP address's;
        None for an interaction endpoint."""
        path = request.path.removeprefix(API_PREFIX)
        if path.startswith(("/interactions/", f"/webhooks/{self.application_id}/")):
            return None
        if request.headers.get("Authorization"):
            return f"global:{request.headers['Authorization']}"
        return f"global-ip:{request.remote}"

    def _globally_limited(self, route: str, request: web.Request) -> web.Response | None:
        """429 (`global: true`) once the request's global bucket has had 50 in the last second."""
        key = self._global_key(request)
        if key is None:
            return None
        limit, per = self.global_rate
        bucket = self.buckets.setdefault(key, Bucket(limit, per, key))
        wait = bucket.take(time.monotonic())
        if wait == 0.0:
            return None
        self.refusals.append((route, 429, 0))
        self.rate_limited.append((route, "global"))
        return too_many(wait, {}, is_global=True)
