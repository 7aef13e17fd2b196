"""Which scopes are too large to compare exactly, remembered for a while.

A scope's nearest memories are found by comparing every memory of the scope (exact, and the
fastest way up to ~20,000 memories); past that the HNSW index is faster by far (100,000
memories: ~8 ms against ~75 ms and more; docs/MEMORY.md, "Large scopes"). A scope is counted
(up to the limit, so the count stops early) the first time it is searched and again after
`ttl_seconds`: scopes grow by a few memories a turn, so a count a while old is still right.

A large scope must also be a share of the table: through the index, its nearest are found
by walking the whole table's graph in distance order and skipping other scopes' memories,
about `k / share` memories walked for `k` of the scope, and pgvector gives up at
`hnsw.max_scan_tuples` (20,000) with the pool short. A scope under `MIN_TABLE_SHARE` of the
table (from Postgres's row estimate) stays exact: 60 / 1 % = 6,000 walked, well under the
cap. On a table of 10M memories that keeps scopes of up to 100,000 exact (~0.1 s a search):
slow, but complete.

A search in fresh mode reads only the memories from the user's fresh point, so its scope
is counted from there (a large user who starts fresh has a small window, compared exactly:
through the index, a filter that selective would leave the nearest pool short). Setting a
user's mode forgets their counts in this process; other replicas count again within
`ttl_seconds`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence

EXACT_SCOPE_LIMIT = 20_000
"""Scopes with at least this many live memories are searched through the HNSW index."""
MIN_TABLE_SHARE = 0.01
"""...and at least this share of the table's memories."""
TTL_SECONDS = 600.0
MAX_SCOPES = 10_000
"""Counts kept at once (the oldest go first): a few hundred kB."""

ScopeKey = tuple[str, tuple[str, ...], str]
"""A personality, the user ids searched together (a user's own and the shared ''), and the
user whose fresh point bounds the scope ('' for none)."""


CountUpTo = Callable[[Sequence[ScopeKey], int, float], Awaitable[tuple[Sequence[int], int]]]
"""Given the limit and the minimum share: the size a large scope needs (the larger of the
limit and the share of the table's rows, by Postgres's estimate) and each scope's live
memories counted no further than that, in one statement."""


class ScopeSizes:
    """Whether a scope holds `limit` memories or more, and `min_share` of the table, as
    counted at most `ttl_seconds` ago."""

    def __init__(
        self,
        count_up_to: CountUpTo,
        *,
        limit: int = EXACT_SCOPE_LIMIT,
        min_share: float = MIN_TABLE_SHARE,
        ttl_seconds: float = TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._count_up_to = count_up_to
        self._limit = limit
        self._min_share = min_share
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
            counts, needed = await self._count_up_to(stale, self._limit, self._min_share)
            for key, count in zip(stale, counts, strict=True):
                found[key] = count >= needed
                self._large.pop(key, None)  # re-inserted last: the dict stays oldest first
                self._large[key] = (found[key], now)
            while len(self._large) > MAX_SCOPES:
                del self._large[next(iter(self._large))]
        return found
