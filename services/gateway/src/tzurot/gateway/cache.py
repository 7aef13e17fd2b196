"""A short-lived in-process cache of rows that change rarely (personalities, LLM configs).

Each entry lives `ttl` seconds. Writes through this process call `clear()` when they commit;
writes by other replicas are seen within `ttl`. A read that began before a `clear()` cannot
store what it read afterwards (the generation check), so a write is never undone by a slow
reader.

Misses (a key known to name nothing) are kept apart from the entries, so asking for names that
do not exist never evicts what does: at most `max_misses` of them (the oldest dropped first),
each for `miss_ttl` seconds at most (1 s: something created on another replica is found within
a second), cleared with the entries.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")

CATALOG_TTL_SECONDS = 5.0
MISS_TTL_SECONDS = 1.0


class TtlCache(Generic[V]):
    def __init__(
        self,
        ttl: float = CATALOG_TTL_SECONDS,
        *,
        max_entries: int = 4096,
        miss_ttl: float = MISS_TTL_SECONDS,
        max_misses: int = 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl
        self._max = max_entries
        self._clock = clock
        self._entries: dict[Hashable, tuple[float, V]] = {}
        self._miss_ttl = min(ttl, miss_ttl)
        self._max_misses = max_misses
        self._misses: dict[Hashable, float] = {}  # key -> when it expires, oldest first
        self.generation = 0

    def get(self, key: Hashable) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= self._clock():
            del self._entries[key]
            return None
        return entry[1]

    def put(self, key: Hashable, value: V, generation: int) -> None:
        """Keeps `value` unless the cache was cleared since `generation` was read."""
        if generation != self.generation or self._ttl <= 0:
            return
        if len(self._entries) >= self._max:
            self._entries.clear()
        self._entries[key] = (self._clock() + self._ttl, value)

    def missed(self, key: Hashable) -> bool:
        """Whether `key` was found to name nothing (`put_miss`) less than `miss_ttl` ago."""
        expires = self._misses.get(key)
        if expires is None:
            return False
        if expires <= self._clock():
            del self._misses[key]
            return False
        return True

    def put_miss(self, key: Hashable, generation: int) -> None:
        """Remembers that `key` names nothing, unless the cache was cleared since
        `generation` was read; the oldest miss makes room, never an entry."""
        if generation != self.generation or self._miss_ttl <= 0 or self._max_misses <= 0:
            return
        self._misses.pop(key, None)  # kept again as the newest
        while len(self._misses) >= self._max_misses:
            del self._misses[next(iter(self._misses))]
        self._misses[key] = self._clock() + self._miss_ttl

    def clear(self) -> None:
        self._entries.clear()
        self._misses.clear()
        self.generation += 1
