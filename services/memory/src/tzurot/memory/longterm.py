"""Long-term memory use-cases (OpenMemory-style): add, search, prune, count, consolidate,
form from delivered exchanges, incognito and fresh modes. No gRPC here (forgetting a user
is forget_user.py).

A search gathers candidates from the scope's nearest memories (compared exactly) and
from full text (both filtered by scope and time window) and scores each by the hybrid
score (scoring.py). A search has no side effects: what was retrieved is not what was
useful, so reinforcement comes only from use (the memories in the prompt of a delivered
answer that was kept; see `consolidate`).
"""

from __future__ import annotations

import asyncio
import operator
import re
import uuid
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import numpy as np
import structlog
from numpy.typing import NDArray

from tzurot.memory import reflection, scoring
from tzurot.memory.domain import (
    AddedMemory,
    Consolidation,
    MemoryMode,
    MemoryScope,
    MemoryStats,
    StoredMemory,
    StoredTurn,
)
from tzurot.memory.embedding import Embedder, InContextEmbedder, Vector
from tzurot.memory.memory_store import Candidate, FormedRow, OutboxClaim, PostgresMemoryStore
from tzurot.memory.sectors import Sector, classify
from tzurot.memory.tombstones import Forgotten
from tzurot.memory.validation import check_id, check_past_time
from tzurot.runtime.errors import FailedPrecondition, InvalidArgument

log = structlog.get_logger("tzurot.memory")

DEFAULT_QUERY_LIMIT = 20
MAX_QUERY_LIMIT = 100
DEFAULT_THRESHOLD = 0.5
MAX_MEMORY_CHARS = 4_000
_TSQUERY_WORD = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class Tuning:
    """Every knob of long-term memory; the defaults are OpenMemory's unless noted."""

    weights: scoring.Weights = field(default_factory=scoring.Weights)
    candidates: int = 60
    """Candidates per source (vector, full text) before hybrid scoring."""
    initial_salience: float = 0.5
    use_boost: float = 0.1
    """Salience step of a memory used in a delivered answer that was kept."""
    merge_similarity: float = 0.92
    """A new memory this close (cosine) to one of its scope merges into it."""
    link_similarity: float = 0.75
    link_weight: float = 0.5
    expansion_below: float = 0.55
    seeds: int = 3
    prune_below: float = 0.05
    waypoint_fade_per_day: float = 0.01
    reflection_similarity: float = 0.8
    reflection_min_memories: int = 20
    reflection_min_cluster: int = 3
    reflection_max_chars: int = 400
    min_formation_chars: int = 12
    use_grace: timedelta = timedelta(minutes=10)
    """A used memory is reinforced once its answer stood this long (not deleted/regenerated)."""


@dataclass(frozen=True)
class Window:
    """Which memories a search may see: created at or after `since`, before `before`."""

    since: datetime | None = None
    before: datetime | None = None

    def admits(self, memory: StoredMemory) -> bool:
        if self.since is not None and memory.created_at < self.since:
            return False
        return self.before is None or memory.created_at < self.before


def _now() -> datetime:
    return datetime.now(UTC)


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


def check_text(field_name: str, text: str) -> str:
    if not text.strip():
        raise InvalidArgument(field_name, f"{field_name} is required")
    if len(text) > MAX_MEMORY_CHARS:
        raise InvalidArgument(
            field_name, f"{field_name} must be at most {MAX_MEMORY_CHARS} characters"
        )
    return text


MAX_TAGS = 8
_TAG = re.compile(r"[a-z0-9_:-]{1,40}")


def check_tags(tags: Sequence[str]) -> list[str]:
    """At most MAX_TAGS short lowercase tags, once each."""
    chosen = list(dict.fromkeys(tags))
    if len(chosen) > MAX_TAGS:
        raise InvalidArgument("memory.tags", f"at most {MAX_TAGS} tags")
    for tag in chosen:
        if not _TAG.fullmatch(tag):
            raise InvalidArgument("memory.tags", "a tag is 1-40 of a-z, 0-9, _ : -")
    return chosen


def check_unit(field_name: str, value: float, *, default: float) -> float:
    """A value in [0, 1]; 0 means `default`."""
    if value == 0:
        return default
    if not 0 < value <= 1:
        raise InvalidArgument(field_name, f"{field_name} must be between 0 and 1")
    return value


@dataclass(frozen=True)
class MemorySearch:
    """A checked search: whose memories, for what text, how many, how relevant at least."""

    personality_id: str
    user_id: str
    query: str
    limit: int
    threshold: float


def memory_search(
    personality_id: str,
    user_id: str,
    query: str,
    *,
    limit: int = 0,
    threshold: float = 0.0,
    no_threshold: bool = False,
) -> MemorySearch:
    """The search QueryMemories asks for, checked (InvalidArgument naming the field); a
    `limit` of 0 is the default, a `threshold` of 0 too (0.0 itself with `no_threshold`)."""
    check_id("personality_id", personality_id)
    check_id("user_id", user_id, required=False)
    check_text("query", query)
    if limit == 0:
        limit = DEFAULT_QUERY_LIMIT
    if not 1 <= limit <= MAX_QUERY_LIMIT:
        raise InvalidArgument("limit", f"limit must be between 1 and {MAX_QUERY_LIMIT}")
    threshold = (
        0.0 if no_threshold else check_unit("threshold", threshold, default=DEFAULT_THRESHOLD)
    )
    return MemorySearch(personality_id, user_id, query, limit, threshold)


class LeaseLost(Exception):
    """None of a formation claim's jobs is its own any more: its lease ran out and another
    worker took them, or they were forgotten."""


class LongTermMemory:
    def __init__(
        self, store: PostgresMemoryStore, embedder: Embedder, tuning: Tuning | None = None
    ) -> None:
        self._store = store
        self._embedder = embedder
        self._in_context = embedder if isinstance(embedder, InContextEmbedder) else None
        self.tuning = tuning or Tuning()

    # Search.

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
        now = _now()
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

    async def reinforce_used(self) -> int:
        """Memories used in delivered answers that stood `use_grace` get their boost (once)."""
        t = self.tuning
        return await self._store.reinforce_used(t.use_grace, t.use_boost)

    # Storage.

    async def add(
        self,
        personality_id: str,
        user_id: str,
        text: str,
        *,
        sector: str = "",
        salience: float = 0.0,
        source_turn_ids: Sequence[str] = (),
        memory_id: str = "",
        created_at: datetime | None = None,
        tags: Sequence[str] = (),
        on_behalf_of: str = "",
    ) -> AddedMemory:
        """Stores one memory (user_id '' for the personality's shared lore).

        `created_at` is when it happened (imports); None is now.

        The sector is classified from the text unless given; a near-duplicate in the
        scope absorbs it instead (merged=True). Refused while the user is incognito, or the
        user it is `on_behalf_of` (whose turn found it, for a memory in the shared lore);
        FAILED_PRECONDITION `FORGOTTEN` (nothing stored) when any of them, or the
        personality, was forgotten (checked by the insert: tombstones.py).
        With `memory_id` (imports) the call is idempotent and never merges: a memory of
        that id is returned as stored (existed=True); `created_at` keeps an original time.
        """
        if memory_id:
            memory_id = _check_uuid("memory.id", memory_id)
            existing = await self._store.get(memory_id)
            if existing is not None:
                return AddedMemory(existing, merged=False, existed=True)
        check_id("personality_id", personality_id)
        check_id("user_id", user_id, required=False)
        check_id("on_behalf_of_user_id", on_behalf_of, required=False)
        check_text("memory.text", text)
        tags = check_tags(tags)
        salience = check_unit("memory.salience", salience, default=self.tuning.initial_salience)
        for index, turn_id in enumerate(source_turn_ids):
            check_id(f"memory.source_turn_ids[{index}]", turn_id)
        if created_at is not None:
            check_past_time("memory.created_at", created_at)
        chosen = Sector(sector) if sector else classify(text)
        if any(
            [await self._incognito(personality_id, who) for who in {user_id, on_behalf_of} if who]
        ):
            raise FailedPrecondition(
                "the user is in incognito mode for this personality", reason="INCOGNITO"
            )
        (vector,) = await self._embedder.embed([text])
        scope = MemoryScope(personality_id, user_id)
        return await self._store_one(
            scope,
            text=text,
            vector=vector,
            sector=chosen,
            salience=salience,
            source_turn_ids=source_turn_ids,
            memory_id=memory_id or None,
            created_at=created_at,
            tags=tags,
            on_behalf_of=on_behalf_of,
        )

    async def _store_one(
        self,
        scope: MemoryScope,
        *,
        text: str,
        vector: Vector,
        sector: Sector,
        salience: float,
        source_turn_ids: Sequence[str],
        memory_id: str | None = None,
        created_at: datetime | None = None,
        tags: Sequence[str] = (),
        context: str = "",
        on_behalf_of: str = "",
    ) -> AddedMemory:
        t = self.tuning
        near = await self._store.nearest(scope.personality_id, [scope.user_id], vector, 10)
        if memory_id is None and near and near[0].cosine >= t.merge_similarity:
            merged = await self._store.merge(near[0].memory.id, source_turn_ids, salience, tags)
            return AddedMemory(merged, merged=True)
        memory = await self._store.insert(
            scope,
            text=text,
            embedding=vector,
            sector=sector.value,
            salience=salience,
            source_turn_ids=source_turn_ids,
            created_at=created_at,
            memory_id=memory_id,
            tags=tags,
            context=context,
            on_behalf_of=on_behalf_of,
        )
        related = [
            (memory.id, hit.memory.id)
            for hit in near
            if hit.cosine >= t.link_similarity and hit.memory.sector == sector.value
        ]
        await self._store.link(related, t.link_weight)
        return AddedMemory(memory, merged=False)

    async def probe_embedder(self) -> None:
        """Embeds a word: raises unless the embedder answers now (formation's check, after
        a failure, of whether the embedder is down rather than the batch at fault)."""
        await self._embedder.embed(["ok"])

    async def form(self, turns: Sequence[StoredTurn]) -> int:
        """Memories from one delivered exchange (see `form_many`)."""
        return await self.form_many([turns])

    async def form_many(
        self,
        exchanges: Sequence[Sequence[StoredTurn]],
        preceding: Mapping[str, StoredTurn] | None = None,
        *,
        claim: OutboxClaim | None = None,
        after: asyncio.Future[Any] | None = None,
    ) -> int:
        """Memories from delivered exchanges: one per turn with enough to remember.

        Every text of the batch is embedded in one call (the embedder's cost is per call as
        much as per text). Idempotent: an exchange whose turns already formed memories forms
        none again. Incognito is decided when the exchange is stored (an exchange made while
        incognito never reaches formation), not now: turning incognito on later does not
        lose what was said before it.

        With the formation worker's `claim` (which read what is formed already), the writes
        end the claim's jobs in the same statement, only for the jobs still leased to it (a
        forget, or another worker once the lease ran out, may have taken some); if none is,
        nothing is written and LeaseLost is raised. With `after` (the formation worker's previous
        batch), the texts are embedded at once and the stored neighbours read only once
        `after` is done, however it ended.
        """
        pending = [
            (MemoryScope(turns[0].personality_id, turns[0].user_id), turns)
            for turns in exchanges
            if turns
        ]
        if claim is not None:
            formed = set(claim.formed)
        else:
            formed = set()
            for scope in {scope for scope, _turns in pending}:
                ids = [turn.id for s, turns in pending if s == scope for turn in turns]
                formed |= await self._store.formed_turns(scope, ids)
        before = preceding or {}
        chosen = [
            (scope, turn, _memory_text(turn, body), _context(turns, i, before.get(turn.job_id)))
            for scope, turns in pending
            if not any(turn.id in formed for turn in turns)
            for i, turn in enumerate(turns)
            if len(body := _memory_body(turn)) >= self.tuning.min_formation_chars
        ]
        vectors = (
            await self._embedder.embed([text for _scope, _turn, text, _ctx in chosen])
            if chosen
            else []
        )
        if not chosen and claim is None:
            return 0
        if after is not None:
            await asyncio.wait([after])
        await self._store_formed(
            [
                (scope, turn, text, context, vector)
                for (scope, turn, text, context), vector in zip(chosen, vectors, strict=True)
            ],
            claim,
        )
        return len(chosen)

    async def _store_formed(
        self,
        items: Sequence[tuple[MemoryScope, StoredTurn, str, str, Vector]],
        claim: OutboxClaim | None = None,
    ) -> None:
        """`_store_one` for each item in order, in two statements for the whole batch,
        whatever its scopes.

        The store's neighbours of every item are read in one statement; the items are then
        decided in order in Python, each also seeing the batch's earlier new memories of
        its scope (what `_store_one` one by one would have read back), so merges and links
        come out as before. Then one statement writes the new memories, every merge (one
        per absorbing memory, any scope), the links, and ends the claim.
        """
        t = self.tuning
        near_all = await self._store.nearest_many(
            [(scope, vector) for scope, _turn, _text, _context, vector in items], 10
        )
        new: list[FormedRow] = []
        new_index: dict[str, int] = {}
        # The batch's new memories of each scope, as rows of one matrix (cosines at once).
        by_scope: dict[MemoryScope, _NewOfScope] = {}
        merges: dict[str, tuple[list[str], float]] = {}
        links: list[tuple[str, str]] = []
        for (scope, turn, text, context, vector), stored_near in zip(items, near_all, strict=True):
            # (id, cosine, sector, new row or None) for the stored and the batch's memories.
            near: list[tuple[str, float, str, FormedRow | None]] = [
                (hit.id, hit.cosine, hit.sector, None) for hit in stored_near
            ]
            as_array = np.asarray(vector, dtype=np.float32)
            of_scope = by_scope.setdefault(scope, _NewOfScope(len(as_array)))
            near += [
                (new[i].id, cosine, new[i].sector, new[i])
                for i, cosine in of_scope.cosines(as_array)
            ]
            near = sorted(near, key=lambda n: -n[1])[:10]
            if near and near[0][1] >= t.merge_similarity:
                target_id, _cos, _sector, target_row = near[0]
                if target_row is not None:  # a memory of this batch absorbs it
                    index = new_index[target_row.id]
                    new[index] = replace(
                        new[index],
                        source_turn_ids=tuple(
                            dict.fromkeys([*new[index].source_turn_ids, turn.id])
                        ),
                        salience=min(1.0, max(new[index].salience, t.initial_salience)),
                        accessed_at=_now(),
                    )
                else:
                    turn_ids, salience = merges.get(target_id, ([], 0.0))
                    merges[target_id] = ([*turn_ids, turn.id], max(salience, t.initial_salience))
                continue
            sector = classify(text).value
            row = FormedRow(
                id=str(uuid.uuid4()),
                scope=scope,
                text=text,
                vector=vector,
                sector=sector,
                salience=t.initial_salience,
                source_turn_ids=(turn.id,),
                created_at=turn.created_at,
                context=context,
            )
            new_index[row.id] = len(new)
            of_scope.add(len(new), as_array)
            new.append(row)
            links += [
                (row.id, other_id)
                for other_id, cosine, other_sector, _row in near
                if cosine >= t.link_similarity and other_sector == sector
            ]
        if not await self._store.write_formed(new, merges, links, t.link_weight, claim):
            raise LeaseLost("another worker leased these jobs again; it forms them")

    # Maintenance and privacy.

    async def drop_weak(self, personality_id: str, user_id: str, threshold: float) -> int:
        """Deletes the scope's memories whose salience (decayed to now) is under `threshold`."""
        check_id("personality_id", personality_id)
        check_id("user_id", user_id, required=False)
        if not 0 < threshold <= 1:
            raise InvalidArgument("threshold", "threshold must be between 0 and 1")
        deleted = await self._store.drop_weak(personality_id, user_id, threshold)
        log.info("weak memories dropped", personality_id=personality_id, deleted=deleted)
        return deleted

    async def stats(self, personality_id: str, user_id: str) -> MemoryStats:
        check_id("personality_id", personality_id)
        check_id("user_id", user_id, required=False)
        return await self._store.stats(personality_id, user_id)

    async def consolidate(self) -> Consolidation:
        """The "REM" pass: decay salience, fade and prune edges, merge, reflect."""
        t = self.tuning
        decayed = await self._store.decay_all()
        pruned = await self._store.prune_waypoints(t.waypoint_fade_per_day, t.prune_below)
        merged = 0
        gone: set[str] = set()
        for older, newer in await self._store.near_duplicates(1 - t.merge_similarity):
            if older in gone or newer in gone:
                continue
            await self._store.absorb(older, newer)
            gone.add(newer)
            merged += 1
        reflections = await self.reflect()
        reinforced = await self.reinforce_used()
        result = Consolidation(decayed, pruned, merged, reflections, reinforced)
        log.info("memory consolidated", **result.__dict__)
        return result

    async def reflect(self) -> int:
        """Summarises clusters of related episodic memories into reflective ones. Safe to
        run while another pass does: a summary and the marks on its sources are kept
        together or not at all (`mark_reflected`), so no episode is summarised twice."""
        t = self.tuning
        made = 0
        for scope in await self._store.reflection_scopes(t.reflection_min_memories):
            episodes, vectors = await self._store.episodic(scope)
            groups = reflection.clusters(vectors, t.reflection_similarity, t.reflection_min_cluster)
            for group in groups:
                members = [episodes[i] for i in group]
                text = reflection.summarise([m.text for m in members], t.reflection_max_chars)
                if not text:
                    continue
                (vector,) = await self._embedder.embed([text])
                turn_ids = sorted({tid for m in members for tid in m.source_turn_ids})
                salience = max(m.salience for m in members)
                try:
                    memory = await self._store.mark_reflected(
                        scope,
                        [m.id for m in members],
                        text=text,
                        embedding=vector,
                        salience=salience,
                        source_turn_ids=turn_ids,
                    )
                except Forgotten:  # the scope's user or personality: nothing of it is kept
                    break
                if memory is None:
                    # Another pass at once reflected on these first (gateway's trigger and
                    # the CronJob), or they were deleted meanwhile: no second summary, and
                    # none that outlives its sources.
                    continue
                await self._store.link([(memory.id, m.id) for m in members], t.link_weight)
                made += 1
        return made

    async def export_user(self, user_id: str) -> list[StoredMemory]:
        """Every memory of the user, oldest first (the data export); nothing is touched."""
        check_id("user_id", user_id)
        found = await self._store.user_memories(user_id)
        log.info("user memories exported", user_id=user_id, memories=len(found))
        return found

    async def export_modes(self, user_id: str) -> list[tuple[str, MemoryMode]]:
        """The user's memory modes, (personality id, mode) each (the data export)."""
        check_id("user_id", user_id)
        return await self._store.user_modes(user_id)

    async def set_mode(
        self,
        personality_id: str,
        user_id: str,
        incognito_until: datetime | None,
        fresh_since: datetime | None,
    ) -> MemoryMode:
        """Sets the mode; FAILED_PRECONDITION `FORGOTTEN` for a forgotten user or personality."""
        check_id("personality_id", personality_id)
        check_id("user_id", user_id)
        return await self._store.set_mode(
            personality_id, user_id, MemoryMode(incognito_until, fresh_since)
        )

    async def mode(self, personality_id: str, user_id: str) -> MemoryMode:
        check_id("personality_id", personality_id)
        check_id("user_id", user_id)
        return await self._store.mode(personality_id, user_id)

    async def _incognito(self, personality_id: str, user_id: str) -> bool:
        until = (await self._store.mode(personality_id, user_id)).incognito_until
        return until is not None and until > _now()


class _NewOfScope:
    """A batch's new memories of one scope: their indexes and vectors (one matrix)."""

    def __init__(self, dimensions: int) -> None:
        self._matrix = np.empty((8, dimensions), dtype=np.float32)
        self._indexes: list[int] = []

    def cosines(self, vector: np.ndarray) -> list[tuple[int, float]]:
        """(index, cosine) of each, for a unit vector."""
        if not self._indexes:
            return []
        found = self._matrix[: len(self._indexes)] @ vector
        return list(zip(self._indexes, found.tolist(), strict=True))

    def add(self, index: int, vector: np.ndarray) -> None:
        count = len(self._indexes)
        if count == len(self._matrix):
            self._matrix = np.concatenate([self._matrix, np.empty_like(self._matrix)])
        self._matrix[count] = vector
        self._indexes.append(index)


def _memory_body(turn: StoredTurn) -> str:
    """What a turn said: its content and its attachments' descriptions."""
    parts = [turn.content.strip()]
    parts += [a.description.strip() for a in turn.attachments if a.description.strip()]
    return " ".join(part for part in parts if part)


def _check_uuid(field: str, value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise InvalidArgument(field, f"{field} must be a UUID") from None


MAX_CONTEXT_CHARS = 1_000


def _context(turns: Sequence[StoredTurn], index: int, preceding: StoredTurn | None) -> str:
    """The turns around `turns[index]`: the one before (for an exchange's first, the
    conversation's turn before it that is the same user's or the channel's own, as the
    formation claim reads it: never another user's) and the one after in its exchange."""
    before = turns[index - 1] if index > 0 else preceding
    after = turns[index + 1] if index + 1 < len(turns) else None
    parts = [_memory_text(t, _memory_body(t)) for t in (before, after) if t is not None]
    return "\n".join(parts)[:MAX_CONTEXT_CHARS]


def _memory_text(turn: StoredTurn, body: str) -> str:
    return spoken(turn.author_name or turn.role.value, body)


def spoken(speaker: str, body: str) -> str:
    """A turn's memory text: who said it, and what."""
    return f"{speaker}: {body}"[:MAX_MEMORY_CHARS]
