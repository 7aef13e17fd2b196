"""How often a streaming answer may edit its message, per channel.

All answers in a channel post through one webhook, and Discord allows a webhook about 5
requests per 2 seconds. Every answer streaming in a channel shares that budget (one request in
five is kept for new messages), so the edit interval of each grows with the number of answers
streaming there, and doubles for a while after a 429. The configured interval is the floor.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

WEBHOOK_REQUESTS, WEBHOOK_WINDOW = 5, 2.0
EDIT_SHARE = (WEBHOOK_REQUESTS - 1) / WEBHOOK_REQUESTS


@dataclass
class _Channel:
    streaming: int = 0
    backoff_until: float = 0.0
    backoff: float = 1.0


class ChannelCadence:
    def __init__(self, floor: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._floor, self._clock = floor, clock
        self._channels: dict[int, _Channel] = {}

    def start(self, channel_id: int) -> None:
        self._channels.setdefault(channel_id, _Channel()).streaming += 1

    def stop(self, channel_id: int) -> None:
        state = self._channels.get(channel_id)
        if state is None:
            return
        state.streaming -= 1
        if state.streaming <= 0 and self._clock() >= state.backoff_until:
            del self._channels[channel_id]

    def interval(self, channel_id: int) -> float:
        """Seconds between two edits of one answer streaming in `channel_id`."""
        state = self._channels.get(channel_id)
        if state is None:
            return self._floor
        per_request = WEBHOOK_WINDOW / (WEBHOOK_REQUESTS * EDIT_SHARE)
        shared = per_request * max(1, state.streaming)
        factor = state.backoff if self._clock() < state.backoff_until else 1.0
        return max(self._floor, shared) * factor

    def limited(self, channel_id: int, retry_after: float) -> None:
        """Discord answered 429: slow the channel down for a while."""
        state = self._channels.setdefault(channel_id, _Channel())
        state.backoff = min(state.backoff * 2, 8.0)
        state.backoff_until = self._clock() + max(retry_after, WEBHOOK_WINDOW) * 5
