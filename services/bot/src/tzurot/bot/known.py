"""The personalities each user may use, as the gateway last listed them for that user: for
naming the personality of a job that posted one of our messages.

The list depends on who asks: a private personality is its owner's (and superusers') alone.
One list for everyone let a user's `@name` reach someone else's private personality, or miss
their own, for as long as another user's list was cached. So each user's list is their own,
at most `ttl` seconds old; to keep that small, the public personalities (everyone's alike) are
kept once, from the latest list, and per user only the others (their private ones; every one
for a superuser), for the `capacity` users who asked last.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from tzurot.v1 import common_pb2 as common

Fetch = Callable[[common.Actor], Awaitable[list[common.Personality]]]
KNOWN_USERS = 2048
"""How many users' lists are kept (their private personalities only; most have none)."""


class KnownPersonalities:
    def __init__(
        self,
        fetch: Fetch,
        *,
        ttl: float,
        capacity: int = KNOWN_USERS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch, self._ttl, self._capacity, self._clock = fetch, ttl, capacity, clock
        self._public: list[common.Personality] = []
        self._theirs: OrderedDict[str, tuple[float, list[common.Personality]]] = OrderedDict()

    async def usable_by(self, actor: common.Actor) -> list[common.Personality]:
        """Every personality `actor` may use, as the gateway listed them for them at most
        `ttl` seconds ago (one ListPersonalities per user and `ttl`)."""
        key = actor.user_id
        now = self._clock()
        cached = self._theirs.get(key)
        if cached is None or now - cached[0] > self._ttl:
            listed = await self._fetch(actor)
            self._public = [p for p in listed if p.public]
            cached = (now, [p for p in listed if not p.public])
            self._theirs[key] = cached
        self._theirs.move_to_end(key)
        while len(self._theirs) > self._capacity:
            self._theirs.popitem(last=False)
        public = {p.id for p in self._public}
        return [*self._public, *(p for p in cached[1] if p.id not in public)]
