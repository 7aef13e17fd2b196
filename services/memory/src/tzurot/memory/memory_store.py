"""Memory's Postgres store for long-term memory: memories, waypoints, modes, the outbox.

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
Effective salience is computed in SQL: the stored salience decayed by the sector's daily
rate for the days since `decayed_at`.
"""

from __future__ import annotations

import asyncio
import functools
import json
import uuid
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import ConnectionPoolEntry

from tzurot.db import direct
from tzurot.db.engine import autocommit
from tzurot.memory.domain import (
    Hit,
    MemoryMode,
    MemoryScope,
    MemoryStats,
    StoredMemory,
    StoredTurn,
)
from tzurot.memory.embedding import Vector
from tzurot.memory.scope_size import LargeScope, ScopeKey, ScopeSizes
from tzurot.memory.sectors import DECAY_PER_DAY, Sector
from tzurot.memory.store import stored_turn
from tzurot.memory.tables import (
    EMBEDDING_DIMENSIONS,
    formation_outbox,
    memories,
    memory_modes,
    memory_uses,
    turns,
    waypoints,
)
from tzurot.memory.tombstones import Forgotten, forgotten_clause, forgotten_sql

_COLUMNS = (
    memories.c.id,
    memories.c.personality_id,
    memories.c.user_id,
    memories.c.text,
    memories.c.sector,
    memories.c.salience,
    memories.c.created_at,
    memories.c.last_accessed_at,
    memories.c.source_turn_ids,
    memories.c.tags,
    memories.c.superseded_by,
    memories.c.context,
)

_DAYS_SINCE_DECAY = sa.func.extract("epoch", sa.func.now() - memories.c.decayed_at) / 86400.0
_RATE = sa.case(
    *((memories.c.sector == sector.value, rate) for sector, rate in DECAY_PER_DAY.items()),
    else_=0.0,
)
MIN_EXPONENT = -700.0
"""The lowest exponent decay passes to Postgres' exp(), which raises "value out of range:
underflow" below about -745 (a memory of 1970 in the emotional sector reaches it in 2072):
e^-700 is a salience of ~1e-304, as good as none."""
EFFECTIVE_SALIENCE = memories.c.salience * sa.func.exp(
    sa.func.greatest(-_RATE * _DAYS_SINCE_DECAY, MIN_EXPONENT)
)
"""Salience now: decay since the last consolidation or access applied on read."""


def memory_columns() -> tuple[sa.Column[Any], ...]:
    """The columns `stored_memory` reads (no embedding)."""
    return _COLUMNS


def stored_memory(row: Any) -> StoredMemory:
    return _memory(row)


def _with_turns(extra: Sequence[str]) -> sa.ColumnElement[list[str]]:
    """The updated row's own source turns plus `extra`, distinct.

    The subquery is correlated to the row being updated: uncorrelated, it would read
    `FROM memory.memories` and collect every memory's turns in the table.
    """
    union = sa.func.unnest(sa.func.array_cat(memories.c.source_turn_ids, list(extra)))
    return sa.func.array(sa.select(union).distinct().correlate(memories).scalar_subquery())


def _with_tags(extra: Sequence[str]) -> sa.ColumnElement[list[str]]:
    """The updated row's own tags plus `extra`, distinct (correlated, as _with_turns)."""
    union = sa.func.unnest(sa.func.array_cat(memories.c.tags, list(extra)))
    return sa.func.array(sa.select(union).distinct().correlate(memories).scalar_subquery())


_COLUMN_NAMES = ", ".join(c.name for c in _COLUMNS)
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
if tuple(c.name for c in _COLUMNS) != _CANDIDATE_ORDER:  # `Candidate` reads by position
    raise RuntimeError("_COLUMNS changed: update _CANDIDATE_ORDER and Candidate")
_DIMENSIONS = EMBEDDING_DIMENSIONS


def _nth_vector(index: str) -> str:
    """SQL for the `index`-th (1-based) row of the two-dimensional `real[]` parameter :vecs,
    as a vector."""
    return f"CAST(ARRAY(SELECT unnest((CAST(:vecs AS real[]))[{index}:{index}])) AS vector)"


def _nearest_many_sql(*, exact: bool) -> sa.TextClause:
    """`nearest` for many (scope, vector) rows at once: each row's scope compared exactly
    (LATERAL), or through the HNSW index (`exact=False`, large scopes). The vectors travel
    as one flat `real[]` (binary floats, no text to format or parse)."""
    distance = "cosine_distance(embedding, q.vec)" if exact else "embedding <=> q.vec"
    return sa.text(
        # Each query's vector is cut from the flat array once (a materialized CTE), not per
        # row compared.
        "WITH q AS MATERIALIZED (SELECT pid, uid, idx,"  # noqa: S608 - the names are our own
        f" {_nth_vector('idx')} AS vec"
        " FROM unnest(CAST(:pids AS text[]), CAST(:uids AS text[]))"
        "  WITH ORDINALITY AS q(pid, uid, idx))"
        " SELECT q.idx, m.id, m.sector, m.distance FROM q CROSS JOIN LATERAL ("
        f"  SELECT id, sector, {distance} AS distance"
        "  FROM memory.memories"
        "  WHERE personality_id = q.pid AND user_id = q.uid AND superseded_by IS NULL"
        f"  ORDER BY {distance} LIMIT :k) AS m"
    )


_NEAREST_MANY = _nearest_many_sql(exact=True)
_NEAREST_MANY_HNSW = _nearest_many_sql(exact=False)
_NEAREST = {True: direct.Statement(_NEAREST_MANY), False: direct.Statement(_NEAREST_MANY_HNSW)}
"""`nearest_many`'s statements by `exact`."""
_COUNT_UP_TO = direct.Statement(
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


def _flat(vectors: Sequence[Vector]) -> list[list[float]]:
    """The vectors as one two-dimensional array parameter: asyncpg checks the shape of the
    first row only (a flat list had every float checked against the collection ABCs)."""
    return [vector if isinstance(vector, list) else list(vector) for vector in vectors]


_EFFECTIVE_SALIENCE_SQL = (
    "m.salience * exp(greatest(-(CASE m.sector "
    + " ".join(
        f"WHEN '{sector.value}' THEN {float(rate)!r}" for sector, rate in DECAY_PER_DAY.items()
    )
    + f" ELSE 0.0 END) * extract(epoch FROM now() - m.decayed_at) / 86400.0, {MIN_EXPONENT!r}))"
)
"""EFFECTIVE_SALIENCE of the row `m`, as SQL text."""

PRECEDING_WINDOW = 8
"""How many turns back formation looks for an exchange's preceding turn, its memories'
context: the newest of them that is the same user's or the channel's own (user_id '').
Another user's turn is never a memory's context: ForgetUser deletes that user's turns and
memories, and their words must not stay behind in someone else's memory (and its
search_text). Bounded so that a user new to a busy channel does not scan its history;
migration 0013 remade the older memories' context with the same window."""

_TURN_COLUMNS = [c.name for c in turns.c if c.name != "user_id"] + ["user_id"]
"""The turns' columns as `_CLAIM` returns them (after its job and row kind)."""
_ORDER_BACK = "ORDER BY p.created_at DESC, p.job_id DESC, p.position DESC"

_CLAIM = sa.text(
    # The oldest free rows: never leased, or their lease (or the wait after a failure) ran
    # out. Locked: two replicas never take one.
    "WITH free AS (SELECT job_id, attempts FROM memory.formation_outbox"  # noqa: S608 - our names; values bound
    "  WHERE (claimed_until IS NULL OR claimed_until < now()) AND job_id <> ALL(:skip)"
    "  ORDER BY created_at, job_id LIMIT :n FOR UPDATE SKIP LOCKED"
    # Each claim counts an attempt (formation.py gives it back when the embedder or
    # Postgres was down): a job claimed `:max` times already, its leases lost (a worker
    # dying on it, or slower than the lease) or failing alone, is dropped ...
    "), dropped AS (DELETE FROM memory.formation_outbox o"
    "  WHERE o.job_id IN (SELECT job_id FROM free WHERE attempts >= :max) RETURNING o.job_id"
    # ... and the others are leased for `:lease` seconds.
    "), claimed AS (UPDATE memory.formation_outbox o"
    " SET claimed_until = now() + make_interval(secs => :lease), claimed_by = :token,"
    "  attempts = o.attempts + 1"
    " WHERE o.job_id IN (SELECT job_id FROM free WHERE attempts < :max)"
    " RETURNING o.job_id, o.created_at"
    # Each exchange's first turn, whose preceding turn is its memories' context.
    "), firsts AS (SELECT DISTINCT ON (t.job_id) t.job_id, t.channel_id, t.personality_id,"
    "  t.user_id, t.created_at FROM memory.turns t JOIN claimed c ON c.job_id = t.job_id"
    "  ORDER BY t.job_id, t.position"
    # The claimed jobs with their turns (none: deleted since) and whether the turn's
    # scope already holds a memory formed from it ...
    ") SELECT c.job_id AS claimed_job, c.created_at AS claimed_at, 'turn' AS kind,"
    f" {', '.join('t.' + name for name in _TURN_COLUMNS)},"
    " EXISTS (SELECT 1 FROM memory.memories m WHERE m.source_turn_ids @> ARRAY[t.id::text]"
    "  AND m.personality_id = t.personality_id AND m.user_id = t.user_id) AS formed"
    " FROM claimed c LEFT JOIN memory.turns t ON t.job_id = c.job_id"
    # ... the turn before each exchange in its conversation that is the same user's or the
    # channel's own, among the last PRECEDING_WINDOW ...
    " UNION ALL SELECT f.job_id, NULL, 'preceding',"
    f" {', '.join('p.' + name for name in _TURN_COLUMNS)}, false"
    " FROM firsts f CROSS JOIN LATERAL (SELECT * FROM (SELECT * FROM memory.turns p"
    "  WHERE p.channel_id = f.channel_id AND p.personality_id = f.personality_id"
    f"  AND p.created_at < f.created_at {_ORDER_BACK} LIMIT {PRECEDING_WINDOW}) p"
    f"  WHERE p.user_id IN (f.user_id, '') {_ORDER_BACK} LIMIT 1) p"
    # ... and the jobs dropped.
    " UNION ALL SELECT d.job_id, NULL, 'dropped',"
    f" {', '.join('NULL' for _name in _TURN_COLUMNS)}, false FROM dropped d"
).bindparams(
    sa.bindparam("token", type_=sa.Uuid),
    sa.bindparam("skip", type_=ARRAY(sa.Text)),
    sa.bindparam("lease", type_=sa.Float),
    sa.bindparam("n", type_=sa.Integer),
    sa.bindparam("max", type_=sa.Integer),
)
"""A batch of the formation outbox, leased, with all formation reads of it: one statement."""
_CLAIM_DIRECT = direct.Statement(_CLAIM)  # run through tzurot.db.direct


def _kept(job: str) -> str:
    """SQL: whether a formation write keeps the batch's work for the job `job`: all of it
    without a claim (no `:jobs`), else only while the job is still the claim's (`mine`)."""
    return f"(cardinality(:jobs) = 0 OR {job} IN (SELECT job_id FROM mine))"  # noqa: S608


def _kept_turns(turns_column: str, jobs_column: str) -> str:
    """SQL: the turn ids of `turns_column` whose job (the same place of `jobs_column`) is
    `_kept`, in order."""
    return (
        f"ARRAY(SELECT s.turn FROM unnest({turns_column}, {jobs_column})"  # noqa: S608 - ours
        f" WITH ORDINALITY AS s(turn, job, k) WHERE {_kept('s.job')} ORDER BY s.k)"
    )


_WRITE_FORMED = sa.text(
    # Which of the batch's jobs are still ours? (Another replica may have taken rows whose
    # lease ran out; a forget deleted its user's.) Locked, so no one takes them before this
    # statement commits.
    "WITH mine AS MATERIALIZED (SELECT job_id FROM memory.formation_outbox"  # noqa: S608
    "  WHERE job_id = ANY(:jobs) AND claimed_by = :token FOR UPDATE"
    # The batch's new memories, but none formed from a job no longer ours (its new worker
    # forms it) nor of a forgotten user or personality (tombstones.py); a turn of a job no
    # longer ours merged into one of them is left out of its sources.
    "), given AS MATERIALIZED (SELECT n.i, n.id, n.personality_id, n.user_id, n.text,"
    "  n.sector, n.salience, n.context, n.created_at, n.accessed_at,"
    f"  {_kept_turns('n.source_turn_ids', 'n.jobs')} AS source_turn_ids,"
    f"  NOT {_kept('n.jobs[1]')}"
    f"  OR {forgotten_sql('n.personality_id', 'n.user_id')} AS left_out"
    " FROM jsonb_to_recordset(:rows) AS n(i int, id uuid, personality_id text, user_id text,"
    "  text text, sector text, salience float8, source_turn_ids text[], jobs text[],"
    "  context text, created_at timestamptz, accessed_at timestamptz)"
    "), new AS (INSERT INTO memory.memories (id, personality_id, user_id, text, embedding,"
    "  sector, salience, source_turn_ids, context, created_at, last_accessed_at, decayed_at)"
    f" SELECT n.id, n.personality_id, n.user_id, n.text, {_nth_vector('n.i')}, n.sector,"
    "  n.salience, n.source_turn_ids, n.context, coalesce(n.created_at, now()),"
    "  coalesce(n.accessed_at, n.created_at, now()), coalesce(n.accessed_at, n.created_at, now())"
    " FROM given n WHERE NOT n.left_out"
    # A near-duplicate arrived: the target absorbs its turns (of jobs still ours), salience
    # and access (merge()).
    f"), merging AS (SELECT u.id, {_kept_turns('u.turns', 'u.jobs')} AS turns, u.salience"
    " FROM jsonb_to_recordset(:merges) AS u(id uuid, turns text[], jobs text[], salience float8)"
    "), merged AS (UPDATE memory.memories m SET"
    "  source_turn_ids = ARRAY(SELECT DISTINCT unnest(m.source_turn_ids || u.turns)),"
    f"  salience = least(1.0, greatest({_EFFECTIVE_SALIENCE_SQL}, u.salience)),"
    "  last_accessed_at = now(), decayed_at = now()"
    " FROM merging u WHERE m.id = u.id AND cardinality(u.turns) > 0"
    # Edges in both directions, in a fixed order (concurrent upserts cannot deadlock); none
    # to a new memory left out above.
    "), linked AS (INSERT INTO memory.waypoints (src_id, dst_id, weight)"
    " SELECT CAST(l.src AS uuid), CAST(l.dst AS uuid), :weight"
    " FROM unnest(CAST(:srcs AS text[]), CAST(:dsts AS text[])) AS l(src, dst)"
    " WHERE NOT EXISTS (SELECT 1 FROM given n"
    "  WHERE n.left_out AND CAST(n.id AS text) IN (l.src, l.dst)) ORDER BY 1, 2"
    " ON CONFLICT (src_id, dst_id) DO NOTHING"
    "), done AS (DELETE FROM memory.formation_outbox WHERE job_id IN (SELECT job_id FROM mine)"
    ") SELECT cardinality(:jobs) = 0 OR EXISTS (SELECT 1 FROM mine)"
).bindparams(
    sa.bindparam("jobs", type_=ARRAY(sa.Text)),
    sa.bindparam("token", type_=sa.Uuid),
    sa.bindparam("rows", type_=JSONB),
    sa.bindparam("merges", type_=JSONB),
    sa.bindparam("weight", type_=sa.Float),
)
"""Formation's writes for a batch and the end of its claim's jobs: one statement. Only the
work of the jobs still the claim's is written (all of it without a claim); nothing if none
is."""

_RENEW_CLAIM = sa.text(
    "UPDATE memory.formation_outbox"
    " SET claimed_until = now() + make_interval(secs => :lease)"
    " WHERE job_id = ANY(:jobs) AND claimed_by = :token"
).bindparams(
    sa.bindparam("jobs", type_=ARRAY(sa.Text)),
    sa.bindparam("token", type_=sa.Uuid),
    sa.bindparam("lease", type_=sa.Float),
)
"""A claim's lease extended (formation's heartbeat), on the jobs still its own."""

_RELEASE_FAILED = sa.text(
    # Claimed `:max` times (each claim counted one), the job goes; else it is free again
    # after `:retry` seconds, twice as long after each attempt. Both only while the job is
    # still this claim's (another replica's lease, or its new row, is not touched).
    "WITH gone AS (DELETE FROM memory.formation_outbox"
    "  WHERE job_id = :job AND claimed_by = :token AND attempts >= :max RETURNING job_id"
    "), kept AS (UPDATE memory.formation_outbox SET claimed_by = NULL, claimed_until = now()"
    "  + make_interval(secs => :retry * power(2, least(greatest(attempts, 1), 20) - 1))"
    "  WHERE job_id = :job AND claimed_by = :token AND attempts < :max"
    ") SELECT EXISTS (SELECT 1 FROM gone)"
).bindparams(
    sa.bindparam("job", type_=sa.Text),
    sa.bindparam("token", type_=sa.Uuid),
    sa.bindparam("max", type_=sa.Integer),
    sa.bindparam("retry", type_=sa.Float),
)
"""A job that failed alone given back with its attempt counted, or dropped: one statement."""

_RELEASE_UNFORMED = sa.text(
    "UPDATE memory.formation_outbox SET attempts = greatest(attempts - 1, 0),"
    " claimed_by = NULL, claimed_until = now() + make_interval(secs => :delay)"
    " WHERE job_id = ANY(:jobs) AND claimed_by = :token"
).bindparams(
    sa.bindparam("jobs", type_=ARRAY(sa.Text)),
    sa.bindparam("token", type_=sa.Uuid),
    sa.bindparam("delay", type_=sa.Float),
)
"""Jobs given back untried (the embedder or Postgres was down): their claim's attempt
uncounted, free again after `:delay` seconds."""


@functools.lru_cache(maxsize=64)
def _statement(stmt: sa.TextClause) -> direct.Statement:
    """A search statement for tzurot.db.direct (no per-call execution machinery; its rows
    are read by position, without type processing)."""
    return direct.Statement(stmt)


@functools.lru_cache(maxsize=64)
def _candidates_sql(
    *, nearest: bool, matching: bool, before: bool, since: bool, fresh: bool, exact: bool = True
) -> sa.TextClause:
    """`candidates`' statement when the query's vector is known: text SQL (built once per
    shape), so a search spends no time composing and compiling a query, and its rows skip
    the ORM types' processing.

    The query's vector and full-text query are made once, in a CTE read by InitPlans: the
    statement is prepared, and under a generic plan an expression of a parameter (the cast
    of the vector, to_tsquery) would be computed again for every row compared or ranked.
    The vector travels as `real[]` (binary floats: no text to format in Python or parse in
    Postgres). The full-text pool is ranked by ts_rank (term frequency), not ts_rank_cd
    (cover density): a five-word OR query matches a third of a scope (the speaker's name),
    and cover density cost ~10 us a row, 4x the rest of the statement (docs/MEMORY.md).
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
def _matching_sql(*, before: bool, since: bool, fresh: bool) -> sa.TextClause:
    """The full-text pool's rows (as `_candidates_sql`'s, without the distance), sent
    while the query is still being embedded: its ranking (`ts_rank` of every match) and
    its rows' decoding are then off the search's path (docs/MEMORY.md)."""
    where = _scope_sql(before=before, since=since, fresh=fresh)
    return sa.text(
        f"WITH q AS MATERIALIZED (SELECT {_QUERY_WORDS})"  # noqa: S608 - fixed fragments
        f" SELECT CAST(id AS text), {_COLUMN_NAMES.removeprefix('id, ')}"
        f" FROM memory.memories WHERE id IN {_matching_pool(where)}"
    )


@functools.lru_cache(maxsize=16)
def _nearest_sql(*, before: bool, since: bool, fresh: bool, exact: bool = True) -> sa.TextClause:
    """Once the query's vector is known: the nearest pool's rows that the full-text pool
    did not read, then the distance alone of each full-text row (`:known`, read by
    `_matching_sql` meanwhile) still in the scope and window (a memory superseded, or a
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


_QUERY_VECTOR = "CAST(CAST(:vec AS real[]) AS vector) AS v"
_QUERY_WORDS = "to_tsquery('english', :tsq) AS t"
_POSTGRES: Dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
_NO_COLUMNS = ", ".join(f"CAST(NULL AS {c.type.compile(dialect=_POSTGRES)})" for c in _COLUMNS[1:])
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


def _memory(row: Any, score: float = 0.0) -> StoredMemory:
    return StoredMemory(
        id=str(row.id),
        personality_id=row.personality_id,
        user_id=row.user_id,
        text=row.text,
        sector=row.sector,
        salience=float(row.salience),
        created_at=row.created_at,
        last_accessed_at=row.last_accessed_at,
        source_turn_ids=tuple(row.source_turn_ids),
        score=score,
        tags=tuple(row.tags or ()),
        superseded_by=str(row.superseded_by or ""),
        context=row.context,
    )


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


def nearest_select(
    where: Sequence[sa.ColumnElement[bool]], vector: Vector, k: int, *, exact: bool = True
) -> sa.Select[Any]:
    """`nearest`'s statement: the k rows matching `where` closest to `vector`, exactly, or
    through the HNSW index (`exact=False`, a large scope)."""
    distance = _exact_distance(vector) if exact else memories.c.embedding.cosine_distance(vector)
    return (
        sa.select(*_COLUMNS, distance.label("distance")).where(*where).order_by(distance).limit(k)
    )


def _exact_distance(vector: Vector) -> sa.ColumnElement[float]:
    """Cosine distance to `vector` as the function, not the `<=>` operator: ordering by it
    compares every row the filter keeps, as no index serves it (the module's docstring)."""
    query = sa.bindparam(None, list(vector), type_=memories.c.embedding.type)
    return sa.func.cosine_distance(memories.c.embedding, query, type_=sa.Float)


def _insert_unless(
    table: sa.Table, values: Mapping[str, Any], gone: sa.Exists
) -> postgresql.Insert:
    """INSERT of one row of `values` into `table`, unless `gone` (a tombstone check) holds:
    `INSERT … SELECT … WHERE NOT EXISTS`, one statement. Each value is cast to its column's
    type (a SELECT's parameters are not typed by the columns they go to)."""
    columns = [table.c[name] for name in values]
    chosen = sa.select(
        *(
            sa.cast(sa.bindparam(None, value, type_=column.type), column.type)
            for column, value in zip(columns, values.values(), strict=True)
        )
    ).where(~gone)
    return insert(table).from_select(columns, chosen)


def _ids(ids: Iterable[str]) -> list[uuid.UUID]:
    return [uuid.UUID(value) for value in ids]


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


def _hnsw_session(engine: AsyncEngine, ef_search: int) -> None:
    """Every connection of the pool scans HNSW iteratively with `ef_search` candidates
    (the near-duplicates pass; a scope's nearest are exact).

    Set once per connection, on its first checkout (it stays for the session: the pool
    resets a returned connection with ROLLBACK, not DISCARD), so an HNSW statement is one
    statement with no transaction around it, instead of BEGIN, two set_config, the
    query and COMMIT.
    """
    key = f"tzurot_hnsw_{ef_search}"

    @event.listens_for(engine.sync_engine.pool, "checkout")
    def _settings(dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        if record.info.get(key):
            return
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SET hnsw.iterative_scan = relaxed_order")
            cursor.execute(f"SET hnsw.ef_search = {int(ef_search)}")
        finally:
            cursor.close()
        dbapi_connection.commit()  # a SET in a rolled-back transaction would be undone
        record.info[key] = True


@dataclass(frozen=True)
class Neighbour:
    """A stored memory near a vector (nearest_many): what formation decides with."""

    id: str
    cosine: float
    sector: str


@dataclass(frozen=True)
class FormedRow:
    """A memory formation decided to insert."""

    id: str
    scope: MemoryScope
    text: str
    vector: Vector
    sector: str
    salience: float
    source_turn_ids: tuple[str, ...]
    created_at: datetime | None
    context: str = ""
    accessed_at: datetime | None = None
    """Set when a later memory of the same batch merged into it (as `merge` would)."""


def _edge_key(row: dict[str, Any]) -> tuple[uuid.UUID, uuid.UUID]:
    return row["src_id"], row["dst_id"]


class PostgresMemoryStore:
    """All of memory's long-term SQL."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        ef_search: int = 100,
        large_scope: LargeScope | None = None,
    ) -> None:
        self._engine = engine
        # Lone statements need no BEGIN/COMMIT around them (tzurot.db.engine.autocommit).
        self._auto = autocommit(engine)
        _hnsw_session(engine, ef_search)
        self._sizes = ScopeSizes(self._count_up_to, rule=large_scope)

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
        for i, needed_here, count in await direct.fetch(self._auto, _COUNT_UP_TO, params):
            counts[i], needed = int(count), int(needed_here)
        return counts, needed

    async def _exact(
        self, personality_id: str, user_ids: Sequence[str], fresh_for: str = ""
    ) -> bool:
        """Whether the scope's nearest are found exactly (not a large scope, counted from
        `fresh_for`'s fresh point if given)."""
        return not await self._sizes.is_large(personality_id, user_ids, fresh_for)

    async def insert(
        self,
        scope: MemoryScope,
        *,
        text: str,
        embedding: Vector,
        sector: str,
        salience: float,
        source_turn_ids: Sequence[str] = (),
        created_at: datetime | None = None,
        memory_id: str | None = None,
        tags: Sequence[str] = (),
        context: str = "",
        on_behalf_of: str = "",
    ) -> StoredMemory:
        """Inserts one memory; with `memory_id` an existing row of that id wins (returned
        unchanged), so a caller-named memory is stored once.

        Forgotten (and nothing stored) when the scope's personality or user, or the user it
        is `on_behalf_of`, was forgotten: checked by the insert itself (tombstones.py)."""
        values: dict[str, Any] = {
            "tags": list(tags),
            "context": context,
            "personality_id": scope.personality_id,
            "user_id": scope.user_id,
            "text": text,
            "embedding": embedding,
            "sector": sector,
            "salience": salience,
            "source_turn_ids": list(source_turn_ids),
        }
        if created_at is not None:
            values |= {"created_at": created_at, "last_accessed_at": created_at}
            values["decayed_at"] = created_at
        gone = forgotten_clause(scope.personality_id, scope.user_id, on_behalf_of)
        if memory_id is None:
            stmt = _insert_unless(memories, values, gone).returning(*_COLUMNS)
            async with self._auto.begin() as conn:
                row = (await conn.execute(stmt)).one_or_none()
            if row is None:
                raise Forgotten
            return _memory(row)
        stmt = (
            _insert_unless(memories, values | {"id": uuid.UUID(memory_id)}, gone)
            .on_conflict_do_nothing(index_elements=[memories.c.id])
            .returning(*_COLUMNS)
        )
        async with self._engine.begin() as conn:
            inserted = (await conn.execute(stmt)).one_or_none()
            if inserted is None:
                inserted = (
                    await conn.execute(sa.select(*_COLUMNS).where(memories.c.id == memory_id))
                ).one_or_none()
        if inserted is None:  # not stored before, and not now: its scope was forgotten
            raise Forgotten
        return _memory(inserted)

    async def get(self, memory_id: str) -> StoredMemory | None:
        async with self._auto.connect() as conn:
            row = (
                await conn.execute(sa.select(*_COLUMNS).where(memories.c.id == memory_id))
            ).one_or_none()
        return None if row is None else _memory(row)

    async def insert_many(self, rows: Sequence[dict[str, Any]]) -> None:
        """Bulk insert of prepared rows (benchmarks): no tombstone check, so never for a
        user's or a personality's data (AddMemory and formation check theirs)."""
        async with self._engine.begin() as conn:
            await conn.execute(memories.insert(), list(rows))

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
        return [Hit(_memory(row), 1.0 - float(row.distance)) for row in rows]

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
                "vecs": _flat([queries[i][1] for i in positions]),
                "k": k,
            }
            # Through tzurot.db.direct (untyped text: rows as asyncpg gives them).
            rows = await direct.fetch(self._auto, _NEAREST[exact], params)
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
            sa.select(*_COLUMNS, distance.label("distance"))
            .where(
                *_scope_filter(personality_id, user_ids, created_before, created_since),
                memories.c.search_text.op("@@")(query),
            )
            .order_by(rank.desc())
            .limit(k)
        )
        async with self._auto.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [Hit(_memory(row), 1.0 - float(row.distance)) for row in rows]

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
            stmt = _candidates_sql(nearest=nearest, matching=matching, exact=exact, **shape)
            return [Candidate(row) for row in await self._search(stmt, params)]
        pending = asyncio.ensure_future(embedding)
        try:
            matched = (
                await direct.fetch(self._auto, _statement(_matching_sql(**shape)), params)
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
        for row in await self._search(_nearest_sql(exact=exact, **shape), params):
            earlier = read.get(row[0])
            found.append(Candidate(row if earlier is None else (*earlier, row[-1])))
        return found

    async def _search(self, stmt: sa.TextClause, params: dict[str, Any]) -> Sequence[Any]:
        """A search statement's rows, on a pooled connection (no transaction)."""
        return await direct.fetch(self._auto, _statement(stmt), params)

    async def fetch(self, ids: Sequence[str], embedding: Vector) -> list[Hit]:
        """The given memories, with their cosine similarity to `embedding`."""
        if not ids:
            return []
        distance = memories.c.embedding.cosine_distance(embedding)
        stmt = sa.select(*_COLUMNS, distance.label("distance")).where(memories.c.id.in_(_ids(ids)))
        async with self._auto.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [Hit(_memory(row), 1.0 - float(row.distance)) for row in rows]

    async def formed_turns(self, scope: MemoryScope, turn_ids: Sequence[str]) -> set[str]:
        """Which of these turns the scope already holds a memory formed from."""
        given = list(turn_ids)
        found = sa.func.unnest(memories.c.source_turn_ids).label("turn_id")
        inner = (
            sa.select(found)
            .where(
                memories.c.personality_id == scope.personality_id,
                memories.c.user_id == scope.user_id,
                memories.c.source_turn_ids.overlap(given),
            )
            .subquery()
        )
        stmt = sa.select(inner.c.turn_id).where(inner.c.turn_id.in_(given)).distinct()
        async with self._auto.connect() as conn:
            return set(await conn.scalars(stmt))

    async def merge(
        self,
        target_id: str,
        source_turn_ids: Sequence[str],
        salience: float,
        tags: Sequence[str] = (),
    ) -> StoredMemory:
        """A near-duplicate arrived: the target absorbs its turns, tags, salience and access."""
        stmt = (
            sa.update(memories)
            .where(memories.c.id == uuid.UUID(target_id))
            .values(
                source_turn_ids=_with_turns(source_turn_ids),
                tags=_with_tags(tags),
                salience=sa.func.least(1.0, sa.func.greatest(EFFECTIVE_SALIENCE, salience)),
                last_accessed_at=sa.func.now(),
                decayed_at=sa.func.now(),
            )
            .returning(*_COLUMNS)
        )
        async with self._auto.begin() as conn:
            return _memory((await conn.execute(stmt)).one())

    async def absorb(self, keep_id: str, drop_id: str) -> None:
        """Consolidation's merge: `keep` takes `drop`'s turns, salience and edges; `drop` goes."""
        keep, drop = uuid.UUID(keep_id), uuid.UUID(drop_id)
        async with self._engine.begin() as conn:
            dropped = (
                await conn.execute(
                    sa.delete(memories)
                    .where(memories.c.id == drop)
                    .returning(memories.c.source_turn_ids, EFFECTIVE_SALIENCE.label("salience"))
                )
            ).first()
            if dropped is None:
                return
            await conn.execute(
                sa.update(memories)
                .where(memories.c.id == keep)
                .values(
                    source_turn_ids=_with_turns(dropped.source_turn_ids),
                    salience=sa.func.least(
                        1.0, sa.func.greatest(EFFECTIVE_SALIENCE, float(dropped.salience))
                    ),
                )
            )

    async def neighbours(self, ids: Sequence[str]) -> list[tuple[str, str, float]]:
        """Edges (src, dst, weight) leaving any of `ids`."""
        if not ids:
            return []
        stmt = sa.select(waypoints.c.src_id, waypoints.c.dst_id, waypoints.c.weight).where(
            waypoints.c.src_id.in_(_ids(ids))
        )
        async with self._auto.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [(str(r.src_id), str(r.dst_id), float(r.weight)) for r in rows]

    async def link(self, pairs: Iterable[tuple[str, str]], weight: float) -> int:
        """Edges in both directions with `weight`; an existing edge is left as it is."""
        rows = []
        for a, b in pairs:
            if a == b:
                continue
            rows += [
                {"src_id": uuid.UUID(a), "dst_id": uuid.UUID(b), "weight": weight},
                {"src_id": uuid.UUID(b), "dst_id": uuid.UUID(a), "weight": weight},
            ]
        if not rows:
            return 0
        # Deterministic order: concurrent upserts of the same pairs cannot deadlock.
        rows = sorted({(r["src_id"], r["dst_id"]): r for r in rows}.values(), key=_edge_key)
        stmt = (
            insert(waypoints)
            .values(rows)
            .on_conflict_do_nothing(index_elements=[waypoints.c.src_id, waypoints.c.dst_id])
        )
        async with self._auto.begin() as conn:
            await conn.execute(stmt)
        return len(rows) // 2

    async def reinforce_used(self, grace: timedelta, boost: float) -> int:
        """Boosts, once, the memories used by answers delivered at least `grace` ago whose
        exchange still stands (a deleted or regenerated answer's turns are gone), then
        forgets those uses. Returns how many memories were reinforced."""
        due = (
            sa.delete(memory_uses)
            .where(memory_uses.c.created_at < sa.func.now() - grace)
            .returning(memory_uses.c.job_id, memory_uses.c.memory_ids)
            .cte("due")
        )
        kept = (
            sa.select(sa.func.unnest(due.c.memory_ids).label("id"))
            .where(sa.exists().where(turns.c.job_id == due.c.job_id, turns.c.role == "assistant"))
            .cte("kept")
        )
        stmt = (
            sa.update(memories)
            .where(memories.c.id.in_(sa.select(kept.c.id)))
            .values(
                salience=sa.func.least(1.0, EFFECTIVE_SALIENCE + boost * (1 - EFFECTIVE_SALIENCE)),
                last_accessed_at=sa.func.now(),
                decayed_at=sa.func.now(),
            )
            .returning(memories.c.id)
        )
        async with self._auto.begin() as conn:
            return len((await conn.execute(stmt)).all())

    async def drop_weak(self, personality_id: str, user_id: str, threshold: float) -> int:
        stmt = sa.delete(memories).where(
            memories.c.personality_id == personality_id,
            memories.c.user_id == user_id,
            threshold > EFFECTIVE_SALIENCE,
        )
        async with self._auto.begin() as conn:
            return int((await conn.execute(stmt)).rowcount)

    async def stats(self, personality_id: str, user_id: str) -> MemoryStats:
        stmt = (
            sa.select(
                memories.c.sector,
                sa.func.count(),
                sa.func.min(memories.c.created_at),
                sa.func.max(memories.c.created_at),
            )
            .where(memories.c.personality_id == personality_id, memories.c.user_id == user_id)
            .group_by(memories.c.sector)
        )
        async with self._auto.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return MemoryStats(
            total=sum(int(row[1]) for row in rows),
            sectors={row[0]: int(row[1]) for row in rows},
            oldest=min((row[2] for row in rows), default=None),
            newest=max((row[3] for row in rows), default=None),
        )

    async def user_memories(self, user_id: str) -> list[StoredMemory]:
        """Every memory of the user (any personality; not the shared lore), oldest first."""
        stmt = (
            sa.select(*_COLUMNS)
            .where(memories.c.user_id == user_id)
            .order_by(memories.c.created_at, memories.c.id)
        )
        async with self._auto.connect() as conn:
            return [_memory(row) for row in await conn.execute(stmt)]

    async def user_modes(self, user_id: str) -> list[tuple[str, MemoryMode]]:
        """(personality id, mode) of every memory mode the user set, by personality id."""
        m = memory_modes.c
        stmt = (
            sa.select(m.personality_id, m.incognito_until, m.fresh_since)
            .where(m.user_id == user_id)
            .order_by(m.personality_id)
        )
        async with self._auto.connect() as conn:
            return [(row[0], MemoryMode(row[1], row[2])) for row in await conn.execute(stmt)]

    async def mode(self, personality_id: str, user_id: str) -> MemoryMode:
        stmt = sa.select(memory_modes.c.incognito_until, memory_modes.c.fresh_since).where(
            memory_modes.c.personality_id == personality_id, memory_modes.c.user_id == user_id
        )
        async with self._auto.connect() as conn:
            row = (await conn.execute(stmt)).first()
        return MemoryMode() if row is None else MemoryMode(row[0], row[1])

    async def set_mode(self, personality_id: str, user_id: str, mode: MemoryMode) -> MemoryMode:
        """Sets the mode; Forgotten (nothing stored) for a forgotten personality or user,
        checked by the upsert itself (tombstones.py)."""
        m = memory_modes.c
        values = {
            "personality_id": personality_id,
            "user_id": user_id,
            "incognito_until": mode.incognito_until,
            "fresh_since": mode.fresh_since,
        }
        stmt = (
            _insert_unless(memory_modes, values, forgotten_clause(personality_id, user_id))
            .on_conflict_do_update(
                index_elements=[m.personality_id, m.user_id],
                set_={"incognito_until": mode.incognito_until, "fresh_since": mode.fresh_since},
            )
            .returning(m.personality_id)
        )
        async with self._auto.begin() as conn:
            stored = (await conn.execute(stmt)).first()
        if stored is None:
            raise Forgotten
        self._sizes.forget(personality_id, user_id)  # a fresh point bounds their scope
        return mode

    # Consolidation.

    async def decay_all(self) -> int:
        """Applies pending decay to every memory not decayed for an hour; how many changed."""
        stmt = (
            sa.update(memories)
            .where(memories.c.decayed_at < sa.func.now() - sa.text("interval '1 hour'"))
            .values(salience=EFFECTIVE_SALIENCE, decayed_at=sa.func.now())
        )
        async with self._engine.begin() as conn:
            return int((await conn.execute(stmt)).rowcount)

    async def prune_waypoints(self, rate_per_day: float, floor: float) -> int:
        """Edges fade by `rate_per_day` since last reinforced; those under `floor` go."""
        faded = waypoints.c.weight * sa.func.exp(
            sa.func.greatest(
                -rate_per_day
                * sa.func.extract("epoch", sa.func.now() - waypoints.c.updated_at)
                / 86400.0,
                MIN_EXPONENT,
            )
        )
        async with self._engine.begin() as conn:
            pruned = await conn.execute(sa.delete(waypoints).where(faded < floor))
            await conn.execute(
                sa.update(waypoints)
                .where(waypoints.c.updated_at < sa.func.now())
                .values(weight=faded, updated_at=sa.func.now())
            )
        return int(pruned.rowcount)

    async def near_duplicates(self, max_distance: float) -> list[tuple[str, str]]:
        """Pairs (older, newer) of one scope and sector closer than `max_distance`."""
        other = memories.alias("other")
        nearest = (
            sa.select(other.c.id, other.c.created_at, other.c.embedding)
            .where(
                other.c.personality_id == memories.c.personality_id,
                other.c.user_id == memories.c.user_id,
                other.c.sector == memories.c.sector,
                other.c.id != memories.c.id,
                other.c.superseded_by.is_(None),
            )
            .order_by(other.c.embedding.cosine_distance(memories.c.embedding))
            .limit(1)
            .lateral("nearest")
        )
        stmt = sa.select(
            memories.c.id, memories.c.created_at, nearest.c.id, nearest.c.created_at
        ).where(
            nearest.c.embedding.cosine_distance(memories.c.embedding) <= max_distance,
            memories.c.superseded_by.is_(None),
        )
        async with self._auto.connect() as conn:
            rows = (await conn.execute(stmt.join_from(memories, nearest, sa.true()))).all()
        pairs = set()
        for a_id, a_at, b_id, b_at in rows:
            older, newer = (a_id, b_id) if (a_at, str(a_id)) <= (b_at, str(b_id)) else (b_id, a_id)
            pairs.add((str(older), str(newer)))
        return sorted(pairs)

    async def reflection_scopes(self, min_count: int) -> list[MemoryScope]:
        """Scopes holding at least `min_count` episodic memories not yet reflected on."""
        stmt = (
            sa.select(memories.c.personality_id, memories.c.user_id)
            .where(memories.c.sector == "episodic", ~memories.c.reflected)
            .group_by(memories.c.personality_id, memories.c.user_id)
            .having(sa.func.count() >= min_count)
        )
        async with self._auto.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [MemoryScope(row[0], row[1]) for row in rows]

    async def episodic(
        self, scope: MemoryScope
    ) -> tuple[list[StoredMemory], npt.NDArray[np.float32]]:
        """The scope's unreflected episodic memories (oldest first) and their embeddings."""
        stmt = (
            sa.select(*_COLUMNS, memories.c.embedding)
            .where(
                memories.c.personality_id == scope.personality_id,
                memories.c.user_id == scope.user_id,
                memories.c.sector == "episodic",
                ~memories.c.reflected,
            )
            .order_by(memories.c.created_at, memories.c.id)
        )
        async with self._auto.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        vectors = np.array([np.asarray(row.embedding) for row in rows], dtype=np.float32)
        return [_memory(row) for row in rows], vectors

    async def mark_reflected(
        self,
        scope: MemoryScope,
        ids: Sequence[str],
        *,
        text: str,
        embedding: Vector,
        salience: float,
        source_turn_ids: Sequence[str],
    ) -> StoredMemory | None:
        """Stores the reflective memory summarising the memories `ids` of `scope` and marks
        them reflected: one transaction, all or nothing.

        None, and nothing kept, unless every one of them still exists unreflected. Two
        consolidation passes at once (gateway's trigger and the CronJob) read the same
        episodes and summarise them both; the first to mark them keeps its summary, and the
        other finds them reflected and keeps none, nor marks the rest of its group (a group
        that overlaps only in part stays to be reflected on by the next pass). So do
        sources deleted meanwhile (their user forgotten): no summary outlives them. The
        rows are locked in id order, so two passes wait for each other and never
        deadlock; READ COMMITTED reads a row again once its lock is free.

        Forgotten (and nothing stored) when the scope's personality or user was forgotten:
        the insert, the transaction's first statement, checks the tombstones
        (tombstones.py)."""
        wanted = set(_ids(ids))
        values: dict[str, Any] = {
            "personality_id": scope.personality_id,
            "user_id": scope.user_id,
            "text": text,
            "embedding": embedding,
            "sector": Sector.REFLECTIVE.value,
            "salience": salience,
            "source_turn_ids": list(source_turn_ids),
        }
        gone = forgotten_clause(scope.personality_id, scope.user_id)
        summary = _insert_unless(memories, values, gone).returning(*_COLUMNS)
        unreflected = (
            sa.select(memories.c.id)
            .where(
                memories.c.id.in_(sorted(wanted)),
                memories.c.personality_id == scope.personality_id,
                memories.c.user_id == scope.user_id,
                ~memories.c.reflected,
            )
            .order_by(memories.c.id)
            .with_for_update()
        )
        mark = (
            sa.update(memories)
            .where(memories.c.id.in_(unreflected.scalar_subquery()))
            .values(reflected=True)
        )
        async with self._engine.connect() as conn, conn.begin() as transaction:
            row = (await conn.execute(summary)).one_or_none()
            if row is None:
                raise Forgotten
            if (await conn.execute(mark)).rowcount < len(wanted):
                await transaction.rollback()
                return None
        return _memory(row)

    # The formation outbox.

    async def pending_jobs(self, limit: int) -> list[str]:
        stmt = (
            sa.select(formation_outbox.c.job_id)
            .order_by(formation_outbox.c.created_at)
            .limit(limit)
        )
        async with self._auto.connect() as conn:
            return list(await conn.scalars(stmt))

    async def claim_formation(
        self,
        limit: int,
        *,
        skip: Sequence[str] = (),
        lease: float = 60.0,
        max_attempts: int = 5,
    ) -> OutboxClaim | None:
        """Leases up to `limit` of the oldest free outbox jobs for `lease` seconds (None if
        none), with their turns, each exchange's preceding turn and which turns are formed
        already: one statement.

        `FOR UPDATE SKIP LOCKED` picks the rows, so two replicas never lease one job; a
        job is free again when its lease runs out (its worker died) or its worker gives it
        back (`release_failed`, `release_unformed`). `skip`: jobs this pass already failed.
        Each claim counts an attempt; a job claimed `max_attempts` times already is dropped
        instead (`OutboxClaim.dropped`), so one whose lease keeps being lost cannot be
        embedded again and again for ever.
        """
        token = uuid.uuid4()
        params = {
            "token": token,
            "skip": list(skip),
            "lease": lease,
            "n": limit,
            "max": max_attempts,
        }
        rows = await direct.fetch(self._auto, _CLAIM_DIRECT, params)  # its own transaction
        if not rows:
            return None
        dropped = tuple(sorted(r["claimed_job"] for r in rows if r["kind"] == "dropped"))
        claimed_at = {r["claimed_job"]: r["claimed_at"] for r in rows if r["kind"] == "turn"}
        job_ids = sorted(claimed_at, key=lambda job_id: (claimed_at[job_id], job_id))
        turns_of: dict[str, list[StoredTurn]] = {job_id: [] for job_id in job_ids}
        preceding: dict[str, StoredTurn] = {}
        formed: set[str] = set()
        for row in rows:
            if row["id"] is None:  # a claimed job whose turns were deleted since, or dropped
                continue
            turn = stored_turn(row)
            if row["kind"] == "preceding":
                preceding[row["claimed_job"]] = turn
                continue
            turns_of[row["claimed_job"]].append(turn)
            if row["formed"]:
                formed.add(turn.id)
        for found in turns_of.values():
            found.sort(key=lambda turn: turn.position)
        return OutboxClaim(token, tuple(job_ids), turns_of, preceding, formed, dropped)

    async def write_formed(
        self,
        new: Sequence[FormedRow],
        merges: Mapping[str, tuple[Sequence[str], float]],
        links: Iterable[tuple[str, str]],
        link_weight: float,
        claim: OutboxClaim | None = None,
    ) -> bool:
        """Formation's writes in one statement: the new memories, the merges into stored
        ones ({target: (turn ids, salience)}), the links (both directions) and, with a
        claim, the end of its jobs (their outbox rows go).

        With a claim, only the work of its jobs still leased to it is written (a forget may
        have deleted one job's row, another worker may have leased some again once the
        lease ran out: that worker forms them), and those jobs end; False, and nothing
        written, if none of them is.
        """
        job_of = (
            {turn.id: job for job, turns in claim.turns.items() for turn in turns}
            if claim is not None
            else {}
        )
        # Ids as text (lowercase hex orders as the uuids do): no uuid.UUID per edge.
        edges = sorted({(a, b) for x, y in links if x != y for a, b in ((x, y), (y, x))})
        params = {
            "jobs": list(claim.job_ids) if claim is not None else [],
            "token": claim.token if claim is not None else uuid.uuid4(),
            "rows": [
                {
                    "i": index,
                    "id": row.id,
                    "personality_id": row.scope.personality_id,
                    "user_id": row.scope.user_id,
                    "text": row.text,
                    "sector": row.sector,
                    "salience": row.salience,
                    "source_turn_ids": list(row.source_turn_ids),
                    "jobs": [job_of.get(turn_id, "") for turn_id in row.source_turn_ids],
                    "context": row.context,
                    "created_at": _iso(row.created_at),
                    "accessed_at": _iso(row.accessed_at),
                }
                for index, row in enumerate(new, start=1)
            ],
            "vecs": _flat([row.vector for row in new]),
            "merges": [
                {
                    "id": target,
                    "turns": list(turn_ids),
                    "jobs": [job_of.get(turn_id, "") for turn_id in turn_ids],
                    "salience": salience,
                }
                for target, (turn_ids, salience) in merges.items()
            ],
            "srcs": [src for src, _dst in edges],
            "dsts": [dst for _src, dst in edges],
            "weight": link_weight,
        }
        async with self._auto.connect() as conn:
            return bool(await conn.scalar(_WRITE_FORMED, params))

    async def renew_claim(self, claim: OutboxClaim, lease: float) -> int:
        """Extends the claim's lease by `lease` seconds from now; how many of its jobs are
        still its own (0: all done, given back, forgotten or leased again elsewhere)."""
        params = {"jobs": list(claim.job_ids), "token": claim.token, "lease": lease}
        async with self._auto.connect() as conn:
            return int((await conn.execute(_RENEW_CLAIM, params)).rowcount)

    async def release_failed(
        self, claim: OutboxClaim, job_id: str, max_attempts: int, retry: float = 60.0
    ) -> bool:
        """Gives back a job that failed alone, its attempt (counted by the claim) kept: it
        is free again after `retry` seconds, doubled for each attempt, so its attempts are
        spread over time (an embedder failing now and then does not use them all up at
        once); True (and the row deleted) once `max_attempts` is reached. One statement,
        and nothing done unless the job is still this claim's."""
        params = {"job": job_id, "token": claim.token, "max": max_attempts, "retry": retry}
        async with self._auto.connect() as conn:
            return bool(await conn.scalar(_RELEASE_FAILED, params))

    async def release_unformed(
        self, claim: OutboxClaim, job_ids: Sequence[str], delay: float
    ) -> None:
        """Gives back the claim's jobs `job_ids` untried (the embedder or Postgres was
        down: nothing wrong with them), the claim's attempt uncounted; free again after
        `delay` seconds."""
        params = {"jobs": list(job_ids), "token": claim.token, "delay": delay}
        async with self._auto.connect() as conn:
            await conn.execute(_RELEASE_UNFORMED, params)

    async def ping(self) -> None:
        """One trivial statement: raises unless Postgres answers (formation's check, after
        a failure, of whether the database is down)."""
        async with self._auto.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat()


@dataclass(frozen=True)
class OutboxClaim:
    """Leased outbox jobs and what formation reads of them (`claim_formation`)."""

    token: uuid.UUID
    job_ids: tuple[str, ...]
    turns: Mapping[str, Sequence[StoredTurn]]
    """Each job's turns in order (none: deleted since it was stored)."""
    preceding: Mapping[str, StoredTurn]
    """Each exchange's preceding turn in its conversation (its memories' context): the
    same user's or the channel's own (memory_store.PRECEDING_WINDOW)."""
    formed: frozenset[str] | set[str]
    """Turns whose scope already holds a memory formed from them."""
    dropped: tuple[str, ...] = ()
    """Jobs the claim deleted instead: claimed `max_attempts` times already."""

    def only(self, job_id: str) -> OutboxClaim:
        """The same lease, for one of its jobs (formed alone after a failed batch)."""
        return replace(self, job_ids=(job_id,))
