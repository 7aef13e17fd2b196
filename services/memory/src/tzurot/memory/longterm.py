"""Long-term memory use-cases (OpenMemory-style): add, search, prune, count, consolidate,
form from delivered exchanges, incognito and fresh modes. No gRPC here (forgetting a user
is forget_user.py).

`LongTermMemory` is the one class callers use. Search is recall.py's and formation from
exchanges forming.py's; a memory added by hand, upkeep, the data export and the modes are
here. A search has no side effects: reinforcement comes only from use (the memories in the
prompt of a delivered answer that was kept; see `consolidate`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import structlog

from tzurot.memory import reflection
from tzurot.memory.domain import (
    AddedMemory,
    Consolidation,
    MemoryMode,
    MemoryScope,
    MemoryStats,
    StoredMemory,
)
from tzurot.memory.embedding import Embedder, InContextEmbedder, Vector
from tzurot.memory.forming import Forming
from tzurot.memory.memory_checks import (
    MAX_MEMORY_CHARS,
    check_tags,
    check_text,
    check_unit,
    check_uuid,
    memory_search,
)
from tzurot.memory.memory_store import PostgresMemoryStore
from tzurot.memory.recall import Recall, Window
from tzurot.memory.sectors import Sector, classify
from tzurot.memory.tombstones import Forgotten
from tzurot.memory.tuning import Tuning
from tzurot.memory.validation import check_id, check_past_time
from tzurot.runtime.errors import FailedPrecondition, InvalidArgument

# Tuning, Window, memory_search and MAX_MEMORY_CHARS are still imported from here by the
# benchmarks (bench/) and a gateway test that checks its limit against this one.
__all__ = ["MAX_MEMORY_CHARS", "LongTermMemory", "Tuning", "Window", "memory_search"]

log = structlog.get_logger("tzurot.memory")


class LongTermMemory(Recall, Forming):
    def __init__(
        self, store: PostgresMemoryStore, embedder: Embedder, tuning: Tuning | None = None
    ) -> None:
        self._store = store
        self._embedder = embedder
        self._in_context = embedder if isinstance(embedder, InContextEmbedder) else None
        self.tuning = tuning or Tuning()

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
            memory_id = check_uuid("memory.id", memory_id)
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

    # Maintenance and privacy.

    async def reinforce_used(self) -> int:
        """Memories used in delivered answers that stood `use_grace` get their boost (once)."""
        t = self.tuning
        return await self._store.reinforce_used(t.use_grace, t.use_boost)

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
        return until is not None and until > datetime.now(UTC)
