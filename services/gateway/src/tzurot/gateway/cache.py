"""A short-lived in-process cache of rows that change rarely (personalities, LLM configs).

Each entry lives `ttl` seconds. Writes through this process call `clear()` when they commit;
writes by other replicas are seen within `ttl`. A read that began before a `clear()` cannot
store what it read afterwards (the generation check), so a write is never undone by a slow
reader.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")

CATALOG_TTL_SECONDS = 5.0


class TtlCache(Generic[V]):
    def __init__(
        self,
        ttl: float = CATALOG_TTL_SECONDS,
        *,
        max_entries: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl
        self._max = max_entries
        self._clock = clock
        self._entries: dict[Hashable, tuple[float, V]] = {}
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

    def clear(self) -> None:
        self._entries.clear()
        self.generation += 1
