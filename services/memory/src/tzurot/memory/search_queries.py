"""Long-term memory's reads by vector and full text: a search's candidates, a scope's
nearest memories (one query's, or a formation batch's), full-text matches, given memories
with their cosine; and the scope sizes that choose exact or HNSW search (search_sql.py
has the statements and says why).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.db import direct
from tzurot.memory.domain import Hit, MemoryScope
from tzurot.memory.embedding import Vector
from tzurot.memory.memory_rows import COLUMNS, as_uuids, flat_vectors, stored_memory
from tzurot.memory.scope_size import LargeScope, ScopeKey, ScopeSizes
from tzurot.memory.search_sql import (
    COUNT_UP_TO,
    NEAREST_BY_EXACT,
    Candidate,
    candidates_sql,
    matching_sql,
    nearest_select,
    nearest_sql,
    search_statement,
)
from tzurot.memory.tables import memories


@dataclass(frozen=True)
class Neighbour:
    """A stored memory near a vector (nearest_many): what formation decides with."""

    id: str
    cosine: float
    sector: str


def _scope_filter(
    personality_id: str,
    user_ids: Sequence[str],
    created_before: datetime | None = None,
    created_since: datetime | None = None,
) -> list[sa.ColumnElement[bool]]:
    where = [
        memories.c.personality_id == personality_id,
        memories.c.user_id.in_(user_ids),
        memories.c.superseded_by.is_(None),
    ]
    if created_before is not None:
        where.append(memories.c.created_at < created_before)
    if created_since is not None:
        where.append(memories.c.created_at >= created_since)
    return where


class SearchQueries:
    """Reads by vector and full text (PostgresMemoryStore has them)."""

    _auto: AsyncEngine
    """The pool in autocommit (tzurot.db.engine.autocommit): each read is one statement."""
    _sizes: ScopeSizes
    """Which scopes are large (searched through the HNSW index), counted by `_count_up_to`."""

    async def _count_up_to(
        self, scopes: Sequence[ScopeKey], rule: LargeScope
    ) -> tuple[list[int], int]:
        listed = [
            {"i": i, "pid": pid, "uids": list(uids), "fuid": fresh_for}
            for i, (pid, uids, fresh_for) in enumerate(scopes)
        ]
        counts, needed = [0] * len(scopes), rule.limit
        params = {
            "scopes": json.dumps(listed),
            "limit": rule.limit,
            "walk": rule.walk,
            "share": rule.share,
        }
        for i, needed_here, count in await direct.fetch(self._auto, COUNT_UP_TO, params):
            counts[i], needed = int(count), int(needed_here)
        return counts, needed

    async def _exact(
        self, personality_id: str, user_ids: Sequence[str], fresh_for: str = ""
    ) -> bool:
        """Whether the scope's nearest are found exactly (not a large scope, counted from
        `fresh_for`'s fresh point if given)."""
        return not await self._sizes.is_large(personality_id, user_ids, fresh_for)

    async def nearest(
        self,
        personality_id: str,
        user_ids: Sequence[str],
        embedding: Vector,
        k: int,
        *,
        sector: str | None = None,
        created_before: datetime | None = None,
        created_since: datetime | None = None,
    ) -> list[Hit]:
        """The k memories of the scope closest to `embedding`, closest first (exactly:
        every memory of the scope compared; a large scope through the HNSW index)."""
        where = _scope_filter(personality_id, user_ids, created_before, created_since)
        if sector is not None:
            where.append(memories.c.sector == sector)
        exact = await self._exact(personality_id, user_ids)
        stmt = nearest_select(where, embedding, k, exact=exact)
        async with self._auto.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        # Through the index, rows may come slightly out of order (the iterative scan's
        # relaxed order), and callers read the first as the closest.
        rows.sort(key=lambda row: float(row.distance))
        return [Hit(stored_memory(row), 1.0 - float(row.distance)) for row in rows]

    async def nearest_many(
        self, queries: Sequence[tuple[MemoryScope, Vector]], k: int
    ) -> list[list[Neighbour]]:
        """The k nearest memories of the scope for each query (scope, vector), closest
        first, in one statement (formation's batch): a LATERAL join per query row, each
        comparing its scope's memories exactly (a second statement for the queries of large
        scopes, through the HNSW index). Only what formation decides with: id, cosine,
        sector."""
        found: list[list[Neighbour]] = [[] for _ in queries]
        keys = [(scope.personality_id, (scope.user_id,), "") for scope, _v in queries]
        large = await self._sizes.large(keys)
        for exact in (True, False):
            positions = [i for i, key in enumerate(keys) if large[key] is not exact]
            if not positions:
                continue
            params = {
                "pids": [queries[i][0].personality_id for i in positions],
                "uids": [queries[i][0].user_id for i in positions],
                "vecs": flat_vectors([queries[i][1] for i in positions]),
                "k": k,
            }
            # Through tzurot.db.direct (untyped text: rows as asyncpg gives them).
            rows = await direct.fetch(self._auto, NEAREST_BY_EXACT[exact], params)
            for idx, memory_id, sector, distance in rows:
                neighbour = Neighbour(str(memory_id), 1.0 - float(distance), sector)
                found[positions[idx - 1]].append(neighbour)
        return [sorted(near, key=lambda n: -n.cosine) for near in found]

    async def keyword_search(
        self,
        personality_id: str,
        user_ids: Sequence[str],
        words: Sequence[str],
        embedding: Vector,
        k: int,
        *,
        created_before: datetime | None = None,
        created_since: datetime | None = None,
    ) -> list[Hit]:
        """Up to k memories of the scope matching any of `words` (full text), best first."""
        if not words:
            return []
        query = sa.func.to_tsquery("english", " | ".join(words))
        rank = sa.func.ts_rank(memories.c.search_text, query)
        distance = memories.c.embedding.cosine_distance(embedding)
        stmt = (
            sa.select(*COLUMNS, distance.label("distance"))
            .where(
                *_scope_filter(personality_id, user_ids, created_before, created_since),
                memories.c.search_text.op("@@")(query),
            )
            .order_by(rank.desc())
            .limit(k)
        )
        async with self._auto.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [Hit(stored_memory(row), 1.0 - float(row.distance)) for row in rows]

    async def candidates(
        self,
        personality_id: str,
        user_ids: Sequence[str],
        words: Sequence[str],
        embedding: Vector | Awaitable[Vector],
        *,
        nearest_k: int,
        keyword_k: int,
        created_before: datetime | None = None,
        created_since: datetime | None = None,
        fresh_for: str = "",
    ) -> list[Candidate]:
        """A search's candidates: the `nearest_k` closest memories of the scope (as
        `nearest`) and its `keyword_k` best full-text matches for any of `words` (as
        `keyword_search`), each once, with its cosine to `embedding`. A pool of 0 is not
        read. With `fresh_for` (a user id) the user's fresh point, if set, also bounds the
        window (read in the same statement, not by a `mode` call first).

        A known vector: both pools in one statement. A vector still being computed (an
        awaitable, e.g. the query's embedding in its thread): the full-text pool goes
        first, while it is, and the nearest pool follows once it is known."""
        shape = {
            "before": created_before is not None,
            "since": created_since is not None,
            "fresh": bool(fresh_for),
        }
        params: dict[str, Any] = {"pid": personality_id, "uids": list(user_ids)}
        if created_before is not None:
            params["before"] = created_before
        if created_since is not None:
            params["since"] = created_since
        if fresh_for:
            params["fresh_uid"] = fresh_for
        nearest = nearest_k > 0
        matching = keyword_k > 0 and bool(words)
        if matching:
            params |= {"kk": keyword_k, "tsq": " | ".join(words)}
        if nearest:
            params["nk"] = nearest_k
        if not isinstance(embedding, Awaitable):
            if not (nearest or matching):
                return []
            params["vec"] = list(embedding)
            exact = await self._exact(personality_id, user_ids, fresh_for) if nearest else True
            stmt = candidates_sql(nearest=nearest, matching=matching, exact=exact, **shape)
            return [Candidate(row) for row in await self._search(stmt, params)]
        pending = asyncio.ensure_future(embedding)
        try:
            matched = (
                await direct.fetch(self._auto, search_statement(matching_sql(**shape)), params)
                if matching
                else []
            )
            # Counted while the query embeds (once in a while: `scope_size`).
            exact = await self._exact(personality_id, user_ids, fresh_for) if nearest else True
            vector = await pending
        except BaseException:
            if not pending.cancel() and not pending.cancelled():
                pending.exception()  # retrieved: its own error is not the one raised here
            raise
        if not (nearest or matched):
            return []
        read = {row[0]: row for row in matched}
        params |= {"vec": list(vector), "known": list(read), "nk": nearest_k}
        found = []
        for row in await self._search(nearest_sql(exact=exact, **shape), params):
            earlier = read.get(row[0])
            found.append(Candidate(row if earlier is None else (*earlier, row[-1])))
        return found

    async def _search(self, stmt: sa.TextClause, params: dict[str, Any]) -> Sequence[Any]:
        """A search statement's rows, on a pooled connection (no transaction)."""
        return await direct.fetch(self._auto, search_statement(stmt), params)

    async def fetch(self, ids: Sequence[str], embedding: Vector) -> list[Hit]:
        """The given memories, with their cosine similarity to `embedding`."""
        if not ids:
            return []
        distance = memories.c.embedding.cosine_distance(embedding)
        stmt = sa.select(*COLUMNS, distance.label("distance")).where(
            memories.c.id.in_(as_uuids(ids))
        )
        async with self._auto.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [Hit(stored_memory(row), 1.0 - float(row.distance)) for row in rows]
