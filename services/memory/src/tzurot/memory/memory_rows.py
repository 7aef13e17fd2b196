"""The memories table as every part of the long-term store reads and writes it: the columns
a memory is read with and how a row becomes a `StoredMemory`, salience decayed in SQL, the
vector parameters (and the binary `vector` codec of the direct pool's connections), and the
insert that tombstones can refuse.

Effective salience is computed in SQL: the stored salience decayed by the sector's daily
rate for the days since `decayed_at`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from pgvector.asyncpg import register_vector
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.db import direct
from tzurot.db.direct_pool import pool_for
from tzurot.memory.domain import StoredMemory
from tzurot.memory.embedding import Vector
from tzurot.memory.sectors import DECAY_PER_DAY
from tzurot.memory.tables import memories

COLUMNS = (
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
"""What a memory is read with (no embedding); `stored_memory` reads them."""

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

EFFECTIVE_SALIENCE_SQL = (
    "m.salience * exp(greatest(-(CASE m.sector "
    + " ".join(
        f"WHEN '{sector.value}' THEN {float(rate)!r}" for sector, rate in DECAY_PER_DAY.items()
    )
    + f" ELSE 0.0 END) * extract(epoch FROM now() - m.decayed_at) / 86400.0, {MIN_EXPONENT!r}))"
)
"""EFFECTIVE_SALIENCE of the row `m`, as SQL text."""


def memory_columns() -> tuple[sa.Column[Any], ...]:
    """The columns `stored_memory` reads (no embedding)."""
    return COLUMNS


def stored_memory(row: Any) -> StoredMemory:
    """A row of `COLUMNS` (read by name) as a memory."""
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
        score=0.0,
        tags=tuple(row.tags or ()),
        superseded_by=str(row.superseded_by or ""),
        context=row.context,
    )


def nth_vector(index: str) -> str:
    """SQL for the `index`-th (1-based) row of the two-dimensional `real[]` parameter :vecs,
    as a vector."""
    return f"CAST(ARRAY(SELECT unnest((CAST(:vecs AS real[]))[{index}:{index}])) AS vector)"


_VECTOR_SCHEMA = (
    "SELECT n.nspname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace"
    " WHERE t.oid = to_regtype('vector')"
)
"""The schema of the `vector` type a statement's `CAST(... AS vector)` names (the extension's,
found through the connection's search_path as the statements find it)."""


def use_binary_vectors(engine: AsyncEngine) -> None:
    """Gives every connection of `engine`'s direct pool pgvector's binary codec for `vector`
    (`binary_vectors`), so a search's `CAST(:vec AS vector)` takes a list of floats as
    4 + 4n bytes: ~0.05-0.1 ms of CPU less a search than a `real[]` (asyncpg checks each
    float) cast in SQL (docs/PERFORMANCE.md). Only memory's database has the type, so only
    memory asks for it. The engine's own connections keep the text form SQLAlchemy's
    `Vector` type binds: the statements with a `vector` parameter go through
    `tzurot.db.direct`, which needs the direct pool (an engine of 3 connections or more)."""
    if pool_for(engine.dialect) is None:
        raise ValueError("memory's engine needs a direct pool (a pool_size of 3 or more)")
    direct.on_connect(engine, binary_vectors)


async def binary_vectors(conn: Any) -> None:
    """pgvector's binary codecs (`vector`, `halfvec`, `sparsevec`) on an asyncpg connection,
    in the schema the extension was made in."""
    schema = await conn.fetchval(_VECTOR_SCHEMA)
    if schema is None:
        raise RuntimeError("the database has no vector type: run `tzurot migrate`")
    await register_vector(conn, schema=schema)


def flat_vectors(vectors: Sequence[Vector]) -> list[list[float]]:
    """The vectors as one two-dimensional array parameter (:vecs): asyncpg checks the shape
    of the first row only (a flat list had every float checked against the collection
    ABCs)."""
    return [vector if isinstance(vector, list) else list(vector) for vector in vectors]


def as_uuids(ids: Iterable[str]) -> list[uuid.UUID]:
    return [uuid.UUID(value) for value in ids]


def insert_unless(table: sa.Table, values: Mapping[str, Any], gone: sa.Exists) -> postgresql.Insert:
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
