"""What the bot says when the denylist refuses a message: nothing for a mute; for a block, a
notice at most once per cooldown per user (or a blocked user could make the bot spam). The
cooldown (`Cooldowns`) also keeps the bot's other notices to one per channel and cooldown."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from tzurot.runtime.errors import TzurotError

MUTED = "MUTED"
DENYLISTED = "DENYLISTED"


class Cooldowns:
    """Keys (a user, a channel) told something at most once per `cooldown_seconds`; the
    `capacity` most recent kept."""

    def __init__(
        self,
        cooldown_seconds: float,
        *,
        capacity: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._cooldown, self._capacity, self._clock = cooldown_seconds, capacity, clock
        self._told: OrderedDict[int, float] = OrderedDict()

    def due(self, key: int) -> bool:
        """Whether `key` may be told now (then it counts as told)."""
        now = self._clock()
        told = self._told.get(key)
        if told is not None and now - told < self._cooldown:
            return False
        self._told[key] = now
        self._told.move_to_end(key)
        while len(self._told) > self._capacity:
            self._told.popitem(last=False)
        return True


class DenyNotices:
    def __init__(
        self,
        cooldown_seconds: float,
        *,
        capacity: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._told = Cooldowns(cooldown_seconds, capacity=capacity, clock=clock)

    def should_reply(self, err: TzurotError, user_id: int) -> bool:
        """False when the refusal must stay silent: a mute, or a block already told."""
        if err.reason == MUTED:
            return False
        if err.reason != DENYLISTED:
            return True
        return self._told.due(user_id)
