"""Memories formed from delivered exchanges: which turns say enough to remember, each
turn's memory text and context, and what the batch does with them (new memories, merges
into near-duplicates, links), decided in Python and written in one statement. The worker
that drains the outbox and calls this is formation.py.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import numpy as np

from tzurot.memory.domain import MemoryScope, StoredTurn
from tzurot.memory.embedding import Embedder, Vector
from tzurot.memory.memory_checks import MAX_MEMORY_CHARS
from tzurot.memory.memory_store import PostgresMemoryStore
from tzurot.memory.outbox import FormedRow, OutboxClaim
from tzurot.memory.sectors import classify
from tzurot.memory.tuning import Tuning

MAX_CONTEXT_CHARS = 1_000


class LeaseLost(Exception):
    """None of a formation claim's jobs is its own any more: its lease ran out and another
    worker took them, or they were forgotten."""


class Forming:
    """Formation of memories from exchanges (LongTermMemory has it)."""

    _store: PostgresMemoryStore
    _embedder: Embedder
    tuning: Tuning

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
        """`_store_one` (longterm.py) for each item in order, in two statements for the
        whole batch, whatever its scopes.

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
                        accessed_at=datetime.now(UTC),
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
