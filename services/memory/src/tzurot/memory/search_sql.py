"""The statements of long-term memory's reads by vector and full text (search_queries.py
runs them), and `Candidate`, a search's row as read.

A scope's nearest memories (a search's nearest pool, `nearest`, formation's neighbours)
are found exactly: every memory of the scope is compared, through the scope's index
(`cosine_distance(...)`, the function, which no index serves; `<=>` would let the planner
take the HNSW index). Under a selective scope the filtered HNSW scan was slower and lossy
(1M memories, 1 % scopes: recall@10 0.94; docs/MEMORY.md, "Exact nearest by scope").
A large scope (`scope_size.EXACT_SCOPE_LIMIT` memories or more, and enough of the table
that walking the index costs less, counted now and then) is searched through the HNSW
(cosine) index instead (`<=>`): comparing all of it would cost ~10x more. The index also
serves the whole-table pass that looks for near-duplicates; pgvector 0.8's iterative scan
(`hnsw.iterative_scan = relaxed_order`) lets a filter still fill k rows.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect

from tzurot.db import direct
from tzurot.memory.domain import Hit, StoredMemory
from tzurot.memory.embedding import Vector
from tzurot.memory.memory_rows import COLUMNS, nth_vector
from tzurot.memory.tables import memories

_COLUMN_NAMES = ", ".join(c.name for c in COLUMNS)
_CANDIDATE_ORDER = (
    "id",
    "personality_id",
    "user_id",
    "text",
    "sector",
    "salience",
    "created_at",
    "last_accessed_at",
    "source_turn_ids",
    "tags",
    "superseded_by",
    "context",
)
if tuple(c.name for c in COLUMNS) != _CANDIDATE_ORDER:  # `Candidate` reads by position
    raise RuntimeError("COLUMNS changed: update _CANDIDATE_ORDER and Candidate")


def _nearest_many_sql(*, exact: bool) -> sa.TextClause:
    """`nearest` for many (scope, vector) rows at once: each row's scope compared exactly
    (LATERAL), or through the HNSW index (`exact=False`, large scopes). The vectors travel
    as one flat `real[]` (binary floats, no text to format or parse)."""
    distance = "cosine_distance(embedding, q.vec)" if exact else "embedding <=> q.vec"
    return sa.text(
        # Each query's vector is cut from the flat array once (a materialized CTE), not per
        # row compared.
        "WITH q AS MATERIALIZED (SELECT pid, uid, idx,"  # noqa: S608 - the names are our own
        f" {nth_vector('idx')} AS vec"
        " FROM unnest(CAST(:pids AS text[]), CAST(:uids AS text[]))"
        "  WITH ORDINALITY AS q(pid, uid, idx))"
        " SELECT q.idx, m.id, m.sector, m.distance FROM q CROSS JOIN LATERAL ("
        f"  SELECT id, sector, {distance} AS distance"
        "  FROM memory.memories"
        "  WHERE personality_id = q.pid AND user_id = q.uid AND superseded_by IS NULL"
        f"  ORDER BY {distance} LIMIT :k) AS m"
    )


NEAREST_MANY = _nearest_many_sql(exact=True)
NEAREST_MANY_HNSW = _nearest_many_sql(exact=False)
NEAREST_BY_EXACT = {
    True: direct.Statement(NEAREST_MANY),
    False: direct.Statement(NEAREST_MANY_HNSW),
}
"""`nearest_many`'s statements by `exact`."""
COUNT_UP_TO = direct.Statement(
    sa.text(
        "WITH r AS (SELECT GREATEST(reltuples, 0) AS rows FROM pg_class"
        "  WHERE oid = CAST('memory.memories' AS regclass)),"
        " t AS (SELECT CAST(GREATEST(:limit, CEIL(SQRT(:walk * rows)), CEIL(:share * rows))"
        "  AS bigint) AS needed FROM r)"
        " SELECT s.i, (SELECT needed FROM t), (SELECT count(*) FROM (SELECT 1"
        "  FROM memory.memories"
        "  WHERE personality_id = s.pid AND user_id = ANY(s.uids) AND superseded_by IS NULL"
        "  AND created_at >= COALESCE((SELECT fresh_since FROM memory.memory_modes"
        "   WHERE personality_id = s.pid AND user_id = s.fuid), '-infinity')"
        "  LIMIT (SELECT needed FROM t)) AS scope)"
        " FROM jsonb_to_recordset(CAST(CAST(:scopes AS text) AS jsonb))"
        "  AS s(i int, pid text, uids text[], fuid text)"
    )
)
"""The size a large scope needs (`scope_size.LargeScope.needed` of the table's estimated
rows; -1 before the table's first analyze) and each scope's live memories
(`:scopes`, JSON: index, personality, user ids, the user whose fresh point bounds it or
''), counted no further than that (through the scope's index)."""


@functools.lru_cache(maxsize=64)
def search_statement(stmt: sa.TextClause) -> direct.Statement:
    """A search statement for tzurot.db.direct (no per-call execution machinery; its rows
    are read by position, without type processing)."""
    return direct.Statement(stmt)


@functools.lru_cache(maxsize=64)
def candidates_sql(
    *, nearest: bool, matching: bool, before: bool, since: bool, fresh: bool, exact: bool = True
) -> sa.TextClause:
    """`candidates`' statement when the query's vector is known: text SQL (built once per
    shape), so a search spends no time composing and compiling a query, and its rows skip
    the ORM types' processing.

    The query's vector and full-text query are made once, in a CTE read by InitPlans: the
    statement is prepared, and under a generic plan an expression of a parameter
    (to_tsquery) would be computed again for every row compared or ranked. The vector
    travels as a binary `vector` (the direct pool's codec, `memory_rows.use_binary_vectors`:
    no text to format in Python or parse in Postgres, no `real[]` whose floats asyncpg
    checks one by one). The full-text pool is ranked by ts_rank (term frequency), not
    ts_rank_cd (cover density): a five-word OR query matches a third of a scope (the
    speaker's name), and cover density cost ~10 us a row, 4x the rest of the statement
    (docs/MEMORY.md).
    """
    where = _scope_sql(before=before, since=since, fresh=fresh)
    made = [_QUERY_VECTOR]
    pools = []
    if nearest:
        pools.append(_nearest_pool(where, exact=exact))
    if matching:
        made.append(_QUERY_WORDS)
        pools.append(_matching_pool(where))
    sql = (
        f"WITH q AS MATERIALIZED (SELECT {', '.join(made)})"  # noqa: S608 - fixed fragments
        f" SELECT CAST(id AS text), {_COLUMN_NAMES.removeprefix('id, ')},"
        " embedding <=> (SELECT v FROM q) AS distance"
        f" FROM memory.memories WHERE id IN ({' UNION '.join(pools)})"
    )
    return sa.text(sql)


@functools.lru_cache(maxsize=16)
def matching_sql(*, before: bool, since: bool, fresh: bool) -> sa.TextClause:
    """The full-text pool's rows (as `candidates_sql`'s, without the distance), sent
    while the query is still being embedded: its ranking (`ts_rank` of every match) and
    its rows' decoding are then off the search's path (docs/MEMORY.md)."""
    where = _scope_sql(before=before, since=since, fresh=fresh)
    return sa.text(
        f"WITH q AS MATERIALIZED (SELECT {_QUERY_WORDS})"  # noqa: S608 - fixed fragments
        f" SELECT CAST(id AS text), {_COLUMN_NAMES.removeprefix('id, ')}"
        f" FROM memory.memories WHERE id IN {_matching_pool(where)}"
    )


@functools.lru_cache(maxsize=16)
def nearest_sql(*, before: bool, since: bool, fresh: bool, exact: bool = True) -> sa.TextClause:
    """Once the query's vector is known: the nearest pool's rows that the full-text pool
    did not read, then the distance alone of each full-text row (`:known`, read by
    `matching_sql` meanwhile) still in the scope and window (a memory superseded, or a
    fresh point set, between the two statements is left out, as one statement would
    leave it); a known row's other columns are NULL, and `candidates` keeps them as the
    first statement read them (a merge landing in between is seen by the next search)."""
    where = _scope_sql(before=before, since=since, fresh=fresh)
    known = "CAST(:known AS uuid[])"
    return sa.text(
        f"WITH q AS MATERIALIZED (SELECT {_QUERY_VECTOR})"  # noqa: S608 - fixed fragments
        f" SELECT CAST(id AS text), {_COLUMN_NAMES.removeprefix('id, ')},"
        " embedding <=> (SELECT v FROM q) AS distance"
        f" FROM memory.memories WHERE id IN {_nearest_pool(where, exact=exact)}"
        f" AND id <> ALL({known})"
        f" UNION ALL SELECT CAST(id AS text), {_NO_COLUMNS},"
        " embedding <=> (SELECT v FROM q)"
        f" FROM memory.memories WHERE {where} AND id = ANY({known})"
    )


_QUERY_VECTOR = "CAST(:vec AS vector) AS v"
_QUERY_WORDS = "to_tsquery('english', :tsq) AS t"
_POSTGRES: Dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
_NO_COLUMNS = ", ".join(f"CAST(NULL AS {c.type.compile(dialect=_POSTGRES)})" for c in COLUMNS[1:])
"""A row's columns after its id as NULLs of their types (a full-text row read already)."""


def _scope_sql(*, before: bool, since: bool, fresh: bool) -> str:
    """A search's scope and window as SQL: the scope's live memories, created before
    `:before` and from `:since` when given, and (`fresh`) from the user's fresh point."""
    scope = [
        "personality_id = :pid",
        "user_id = ANY(CAST(:uids AS text[]))",
        "superseded_by IS NULL",
    ]
    if before:
        scope.append("created_at < :before")
    if since:
        scope.append("created_at >= :since")
    if fresh:
        scope.append(
            "created_at >= COALESCE((SELECT fresh_since FROM memory.memory_modes"
            " WHERE personality_id = :pid AND user_id = :fresh_uid), '-infinity')"
        )
    return " AND ".join(scope)


def _nearest_pool(where: str, *, exact: bool) -> str:
    """The ids of the scope's `:nk` memories nearest the query's vector (CTE `q`'s `v`):
    exactly (`cosine_distance`, which no index serves, so every memory of the scope is
    compared), or, for a large scope, by `<=>` through the HNSW index (the module's
    docstring)."""
    distance = (
        "cosine_distance(embedding, (SELECT v FROM q))"
        if exact
        else "embedding <=> (SELECT v FROM q)"
    )
    return (
        f"(SELECT id FROM memory.memories WHERE {where}"  # noqa: S608 - fixed fragments
        f" ORDER BY {distance} LIMIT :nk)"
    )


def _matching_pool(where: str) -> str:
    """The ids of the scope's `:kk` best full-text matches of CTE `q`'s `t`, by ts_rank."""
    return (
        f"(SELECT id FROM memory.memories WHERE {where}"  # noqa: S608 - fixed fragments
        " AND search_text @@ (SELECT t FROM q)"
        " ORDER BY ts_rank(search_text, (SELECT t FROM q)) DESC, id LIMIT :kk)"
    )


def nearest_select(
    where: Sequence[sa.ColumnElement[bool]], vector: Vector, k: int, *, exact: bool = True
) -> sa.Select[Any]:
    """`nearest`'s statement: the k rows matching `where` closest to `vector`, exactly, or
    through the HNSW index (`exact=False`, a large scope)."""
    distance = _exact_distance(vector) if exact else memories.c.embedding.cosine_distance(vector)
    return sa.select(*COLUMNS, distance.label("distance")).where(*where).order_by(distance).limit(k)


def _exact_distance(vector: Vector) -> sa.ColumnElement[float]:
    """Cosine distance to `vector` as the function, not the `<=>` operator: ordering by it
    compares every row the filter keeps, as no index serves it (the module's docstring)."""
    query = sa.bindparam(None, list(vector), type_=memories.c.embedding.type)
    return sa.func.cosine_distance(memories.c.embedding, query, type_=sa.Float)


class Candidate:
    """A search candidate as read: what the score reads (id, text, context, last access,
    cosine) and its memory, built only when asked. A search reads ~110 candidates and
    returns ~10: building a frozen `StoredMemory` for each of the others cost more than
    scoring them."""

    __slots__ = ("_memory", "_row", "context", "cosine", "id", "last_accessed_at", "text")

    def __init__(self, row: Sequence[Any]) -> None:
        """From a search statement's row (a tuple or an asyncpg record): its columns by
        position (`_CANDIDATE_ORDER`, the id as text, then the distance)."""
        self._row = row
        self._memory: StoredMemory | None = None
        self.id: str = row[0]
        self.text: str = row[3]
        self.last_accessed_at: datetime = row[7]
        self.context: str = row[11]
        self.cosine: float = 1.0 - float(row[12])

    @classmethod
    def of(cls, hit: Hit) -> Candidate:
        """A candidate of a memory already built (waypoint expansion's `fetch`)."""
        memory = hit.memory
        candidate = cls.__new__(cls)
        candidate._row = ()
        candidate._memory = memory
        candidate.id, candidate.text, candidate.context = memory.id, memory.text, memory.context
        candidate.last_accessed_at, candidate.cosine = memory.last_accessed_at, hit.cosine
        return candidate

    @property
    def memory(self) -> StoredMemory:
        if self._memory is None:
            self._memory = self._built(0.0)
        return self._memory

    def scored(self, score: float) -> StoredMemory:
        """Its memory as a search result (with `score`), built once: not built first
        and then copied with `dataclasses.replace` (~20 us a result here)."""
        if self._memory is not None:
            return replace(self._memory, score=score)
        return self._built(score)

    def _built(self, score: float) -> StoredMemory:
        (
            memory_id,
            personality_id,
            user_id,
            text,
            sector,
            salience,
            created_at,
            last_accessed_at,
            source_turn_ids,
            tags,
            superseded_by,
            context,
            _distance,
        ) = self._row
        return StoredMemory(
            id=memory_id,
            personality_id=personality_id,
            user_id=user_id,
            text=text,
            sector=sector,
            salience=float(salience),
            created_at=created_at,
            last_accessed_at=last_accessed_at,
            source_turn_ids=tuple(source_turn_ids),
            score=score,
            tags=tuple(tags or ()),
            superseded_by=str(superseded_by or ""),
            context=context,
        )
