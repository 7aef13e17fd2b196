"""Which scopes are too large to compare exactly, remembered for a while.

A scope's nearest memories are found by comparing every memory of the scope (exact, and the
fastest way up to ~20,000 memories); past that the HNSW index is faster by far (100,000
memories: ~8 ms against ~75 ms and more; docs/MEMORY.md, "Large scopes"). A scope is counted
(up to the size it needs, so the count stops early) the first time it is searched and again
after `ttl_seconds`: scopes grow by a few memories a turn, so a count a while old is still
right.

Through the index, a scope's nearest are found by walking the whole table's graph in
distance order and skipping other scopes' memories: about `pool / share` memories walked to
fill the pool, each checked against the scope in the heap, ~12 times what comparing one
memory exactly costs (measured: ~10 against ~0.8 us). So a large scope needs, besides the
limit, `count * share >= 12 * pool` (walking cheaper than comparing; with share = count /
rows, count >= sqrt(720 * rows)), and a walk within half of pgvector's
`hnsw.max_scan_tuples` (20,000), past which it gives up with the pool short (share >= 0.6 %).
On a table of 150,000 memories the limit decides; on one of 10M, a scope needs ~85,000.

A search in fresh mode reads only the memories from the user's fresh point, so its scope
is counted from there (a large user who starts fresh has a small window, compared exactly).
Setting a user's mode forgets their counts in this process; other replicas count again
within `ttl_seconds`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

EXACT_SCOPE_LIMIT = 20_000
"""Scopes with fewer live memories are always compared exactly."""
POOL = 60
"""The search's nearest pool (`Tuning.candidates`): what a walk through the index fills."""
WALK_COST = 12.0
"""Walking one memory through the index against comparing one exactly (docs/MEMORY.md)."""
MAX_WALK = 10_000
"""Half of pgvector's `hnsw.max_scan_tuples` (20,000)."""
TTL_SECONDS = 600.0
MAX_SCOPES = 10_000
"""Counts kept at once (the oldest go first): a few hundred kB."""


@dataclass(frozen=True)
class LargeScope:
    """The size from which a scope is searched through the HNSW index, given the table's."""

    limit: int = EXACT_SCOPE_LIMIT
    walk: float = WALK_COST * POOL
    """count * share must reach this (walking `pool / share` costs less than comparing)."""
    share: float = POOL / MAX_WALK
    """...and the share at least this (the walk within pgvector's cap)."""

    def needed(self, table_rows: float) -> int:
        """The live memories a scope needs, in a table of about `table_rows`."""
        rows = max(table_rows, 0.0)
        return max(self.limit, math.ceil(math.sqrt(self.walk * rows)), math.ceil(self.share * rows))


ScopeKey = tuple[str, tuple[str, ...], str]
"""A personality, the user ids searched together (a user's own and the shared ''), and the
user whose fresh point bounds the scope ('' for none)."""


CountUpTo = Callable[[Sequence[ScopeKey], LargeScope], Awaitable[tuple[Sequence[int], int]]]
"""The size a large scope needs (`LargeScope.needed` of the table's rows, by Postgres's
estimate) and each scope's live memories counted no further than that, in one statement."""


class ScopeSizes:
    """Whether a scope is large (`LargeScope`), as counted at most `ttl_seconds` ago."""

    def __init__(
        self,
        count_up_to: CountUpTo,
        *,
        rule: LargeScope | None = None,
        ttl_seconds: float = TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._count_up_to = count_up_to
        self._rule = rule or LargeScope()
        self._ttl = ttl_seconds
        self._clock = clock
        self._large: dict[ScopeKey, tuple[bool, float]] = {}

    async def is_large(
        self, personality_id: str, user_ids: Sequence[str], fresh_for: str = ""
    ) -> bool:
        key = (personality_id, tuple(user_ids), fresh_for)
        return (await self.large([key]))[key]

    def forget(self, personality_id: str, user_id: str) -> None:
        """Drops the counts bounded by the user's fresh point (their mode changed)."""
        for key in [k for k in self._large if k[0] == personality_id and k[2] == user_id]:
            del self._large[key]

    async def large(self, keys: Sequence[ScopeKey]) -> dict[ScopeKey, bool]:
        """Each scope's answer; the scopes not counted lately are counted together."""
        now = self._clock()
        found: dict[ScopeKey, bool] = {}
        stale: list[ScopeKey] = []
        for key in dict.fromkeys(keys):
            known = self._large.get(key)
            if known is not None and now - known[1] < self._ttl:
                found[key] = known[0]
            else:
                stale.append(key)
        if stale:
            counts, needed = await self._count_up_to(stale, self._rule)
            for key, count in zip(stale, counts, strict=True):
                found[key] = count >= needed
                self._large.pop(key, None)  # re-inserted last: the dict stays oldest first
                self._large[key] = (found[key], now)
            while len(self._large) > MAX_SCOPES:
                del self._large[next(iter(self._large))]
        return found
