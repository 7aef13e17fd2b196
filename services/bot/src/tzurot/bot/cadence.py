"""How often a streaming answer may edit its message, per webhook.

Discord's rate limits count per route and top-level resource, and a webhook's routes count
against the webhook (discord-api-docs topics/rate-limits: `webhook_id + webhook_token`); a
thread's messages go through its parent channel's webhook (`thread_id` is a query parameter,
not a resource). So every answer streaming in a channel or in any of its threads shares one
bucket, about 5 requests per 2 seconds (the docs give no number and ask clients to read the
headers; that is the commonly observed one, and the fake Discord's). That budget, less one
request in five kept for new messages, is divided among the answers streaming through the
webhook at once: the edit interval of each grows with their number, and doubles for a while
after a 429. The configured interval is the floor, the pace of an answer streaming alone.

discord.py paces a webhook by its `X-RateLimit-Remaining` itself, so overrunning the bucket
seldom shows as a 429: the requests queue behind it, and the answers lag behind their stream.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from tzurot.bot.delivery import channel_key
from tzurot.bot.webhooks import webhook_channel

WEBHOOK_REQUESTS, WEBHOOK_WINDOW = 5, 2.0
EDIT_SHARE = (WEBHOOK_REQUESTS - 1) / WEBHOOK_REQUESTS


def webhook_key(channel: object) -> int:
    """The key of the webhook that posts into `channel`: its own id, a thread's parent's id
    (the channel's id where no webhook can post: nothing streams there)."""
    try:
        parent, _ = webhook_channel(channel)
    except TypeError:
        return channel_key(channel)
    return parent.id


@dataclass
class _Webhook:
    streaming: int = 0
    backoff_until: float = 0.0
    backoff: float = 1.0


class WebhookCadence:
    """The edit interval of the answers streaming through each webhook (`webhook_key`)."""

    def __init__(self, floor: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._floor, self._clock = floor, clock
        self._webhooks: dict[int, _Webhook] = {}

    def start(self, webhook: int) -> None:
        """One more answer streams through `webhook`."""
        self._webhooks.setdefault(webhook, _Webhook()).streaming += 1

    def stop(self, webhook: int) -> None:
        """One answer streaming through `webhook` is done (posted, refused or failed)."""
        state = self._webhooks.get(webhook)
        if state is None:
            return
        state.streaming -= 1
        if state.streaming <= 0 and self._clock() >= state.backoff_until:
            del self._webhooks[webhook]

    def interval(self, webhook: int) -> float:
        """Seconds between two edits of one answer streaming through `webhook`: together the
        answers streaming through it edit at most 4 times per 2 s."""
        state = self._webhooks.get(webhook)
        if state is None:
            return self._floor
        per_request = WEBHOOK_WINDOW / (WEBHOOK_REQUESTS * EDIT_SHARE)
        shared = per_request * max(1, state.streaming)
        factor = state.backoff if self._clock() < state.backoff_until else 1.0
        return max(self._floor, shared) * factor

    def limited(self, webhook: int, retry_after: float) -> None:
        """Discord answered 429: slow every answer streaming through the webhook for a while.
        A 429 while that slow-down lasts doubles it (at most 8x); one after it has run out
        starts again at 2x, however long the webhook has stayed busy."""
        state = self._webhooks.setdefault(webhook, _Webhook())
        if self._clock() >= state.backoff_until:
            state.backoff = 1.0
        state.backoff = min(state.backoff * 2, 8.0)
        state.backoff_until = self._clock() + max(retry_after, WEBHOOK_WINDOW) * 5
