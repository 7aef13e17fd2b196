"""Long-term memory's search: a query's memories, best first.

A search gathers candidates from the scope's nearest memories (compared exactly) and
from full text (both filtered by scope and time window) and scores each by the hybrid
score (scoring.py); a weak best hit follows the waypoints one hop from the seeds. A search
has no side effects: what was retrieved is not what was useful, so reinforcement comes
only from use (the memories in the prompt of a delivered answer that was kept; see
`LongTermMemory.consolidate`).
"""

from __future__ import annotations

import asyncio
import operator
import re
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import cast

import numpy as np
from numpy.typing import NDArray

from tzurot.memory import scoring
from tzurot.memory.domain import StoredMemory
from tzurot.memory.embedding import Embedder, InContextEmbedder, Vector
from tzurot.memory.forming import spoken
from tzurot.memory.memory_checks import MemorySearch, memory_search
from tzurot.memory.memory_store import PostgresMemoryStore
from tzurot.memory.search_sql import Candidate
from tzurot.memory.tuning import Tuning

_TSQUERY_WORD = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class Window:
    """Which memories a search may see: created at or after `since`, before `before`."""

    since: datetime | None = None
    before: datetime | None = None

    def admits(self, memory: StoredMemory) -> bool:
        if self.since is not None and memory.created_at < self.since:
            return False
        return self.before is None or memory.created_at < self.before


def _ages_in_days(times: Sequence[datetime], now: datetime) -> NDArray[np.float64]:
    """Days from each time to `now`, from POSIX timestamps (one C call a time, not a
    subtraction and a `timedelta`'s total_seconds: ~1.3 us less a candidate). The times
    are aware, as `timestamptz` columns read."""
    since = np.fromiter((t.timestamp() for t in times), dtype=np.float64, count=len(times))
    ages: NDArray[np.float64] = (now.timestamp() - since) / 86400.0
    return ages


_by_id = operator.attrgetter("id")


def _tsquery_words(text: str) -> list[str]:
    """Content words safe to join into a to_tsquery OR-expression."""
    words = _TSQUERY_WORD.findall(text.lower())
    return sorted({w for w in words if w not in scoring.STOPWORDS and len(w) > 1})


class Recall:
    """Search (LongTermMemory has it)."""

    _store: PostgresMemoryStore
    _embedder: Embedder
    _in_context: InContextEmbedder | None
    """The embedder, when it can read a text in context (`embed_query`)."""
    tuning: Tuning

    async def query(
        self,
        personality_id: str,
        user_id: str,
        query: str,
        *,
        limit: int = 0,
        threshold: float = 0.0,
        exclude_after: datetime | None = None,
        no_threshold: bool = False,
        speaker: str = "",
    ) -> list[StoredMemory]:
        """The scope's (and the shared lore's) memories most relevant to `query`, best first.

        Memories created at or after `exclude_after` (already in the prompt's history) and,
        in fresh mode, before the fresh point are never returned. `speaker`: who asks, as
        in `embed_query`.
        """
        search = memory_search(
            personality_id,
            user_id,
            query,
            limit=limit,
            threshold=threshold,
            no_threshold=no_threshold,
        )
        # The full-text pool is read while the query is embedded.
        return await self.search(search, self.embed_query(search, speaker), exclude_after)

    async def embed_query(self, search: MemorySearch, speaker: str = "") -> Vector:
        """The search text's embedding (a reply's context embeds it while reading turns).

        With the asker's name (`speaker`: their turn's author), an embedder that reads in
        context reads the query as that turn will be remembered (`spoken`): the vector is
        the message's own tokens', as good a query as the message alone (LoCoMo, in
        docs/PERFORMANCE.md), and the whole run's vector serves formation of the turn."""
        if speaker and self._in_context is not None:
            start = len(spoken(speaker, ""))
            return await self._in_context.embed_in_context(spoken(speaker, search.query), start)
        (vector,) = await self._embedder.embed([search.query])
        return vector

    async def search(
        self,
        search: MemorySearch,
        vector: Vector | Awaitable[Vector],
        exclude_after: datetime | None,
    ) -> list[StoredMemory]:
        """`query` with the text's embedding, known or still being computed: the best
        memories above the threshold."""
        # The user's fresh point (fresh mode) is read by the candidates' statement itself.
        window = Window(before=exclude_after)
        user_id = search.user_id
        user_ids = [user_id, ""] if user_id else [""]
        ranked = await self.rank(
            search.personality_id,
            user_ids,
            search.query,
            vector,
            window,
            limit=search.limit,
            fresh_for=user_id,
        )
        return [m for m in ranked if m.score >= search.threshold]

    async def rank(
        self,
        personality_id: str,
        user_ids: Sequence[str],
        query: str,
        vector: Vector | Awaitable[Vector],
        window: Window,
        *,
        limit: int | None = None,
        fresh_for: str = "",
    ) -> list[StoredMemory]:
        """The candidates by hybrid score, best first (no threshold, no side effects):
        every one, or the best `limit`. With `fresh_for` (a user id), nothing from before
        that user's fresh point (fresh mode) is a candidate. `vector` may still be being
        computed (an awaitable): the full-text pool is read meanwhile."""
        t = self.tuning
        # A vector still being computed is read by the candidates, then by the expansion.
        pending = asyncio.ensure_future(vector) if isinstance(vector, Awaitable) else None
        found = await self._store.candidates(
            personality_id,
            user_ids,
            _tsquery_words(query),
            vector if pending is None else pending,
            nearest_k=t.candidates if t.weights.similarity > 0 else 0,
            keyword_k=t.candidates if t.weights.keywords > 0 or t.weights.bm25 > 0 else 0,
            created_before=window.before,
            created_since=window.since,
            fresh_for=fresh_for,
        )
        hits: dict[str, Candidate] = {hit.id: hit for hit in found}
        if not hits:
            return []
        edges = []
        if t.weights.waypoints > 0:
            seeds = [h.id for h in sorted(hits.values(), key=lambda h: -h.cosine)[: t.seeds]]
            edges = await self._store.neighbours(seeds)
        scored = self._score(query, hits, edges)
        if t.weights.waypoints > 0 and scored[0][0] < t.expansion_below:
            # Weak best hit: follow the graph one hop from the seeds.
            new = sorted({dst for _src, dst, _w in edges if dst not in hits})
            if fresh_for:
                fresh = (await self._store.mode(personality_id, fresh_for)).fresh_since
                since = max(filter(None, (window.since, fresh)), default=None)
                window = replace(window, since=since)
            known = await pending if pending is not None else cast("Vector", vector)
            for hit in await self._store.fetch(new, known):
                memory = hit.memory
                in_scope = memory.personality_id == personality_id and memory.user_id in user_ids
                if in_scope and window.admits(memory):
                    hits[memory.id] = Candidate.of(hit)
            scored = self._score(query, hits, edges)
        # Only the returned candidates' memories are built.
        return [candidate.scored(score) for score, candidate in scored[:limit]]

    def _score(
        self, query: str, hits: dict[str, Candidate], edges: Sequence[tuple[str, str, float]]
    ) -> list[tuple[float, Candidate]]:
        """(score, candidate) of every candidate, best first (ties by id)."""
        now = datetime.now(UTC)
        # In id order, so a stable sort by score leaves ties by id.
        candidates = sorted(hits.values(), key=_by_id)
        incoming: dict[str, list[float]] = {}
        for _src, dst, weight in edges:
            incoming.setdefault(dst, []).append(weight)
        # A memory is searched with its context (its turn's neighbours); its words are
        # counted once per process (scoring.document caches them).
        scores = scoring.candidate_scores(
            scoring.tokens(query),
            [scoring.document(hit.text, hit.context) for hit in candidates],
            np.array([hit.cosine for hit in candidates], dtype=np.float64),
            _ages_in_days([hit.last_accessed_at for hit in candidates], now),
            self.tuning.weights,
            asks_when=scoring.asks_when(query),
            waypoints=np.array(
                [scoring.waypoint_activation(incoming.get(hit.id, ())) for hit in candidates]
            )
            if incoming
            else None,
        )
        best_first = np.argsort(-scores, kind="stable").tolist()
        values = scores.tolist()
        return [(values[i], candidates[i]) for i in best_first]
