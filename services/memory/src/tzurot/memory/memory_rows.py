"""The memories table as every part of the long-term store reads and writes it: the columns
a memory is read with and how a row becomes a `StoredMemory`, salience decayed in SQL, the
vector parameters, and the insert that tombstones can refuse.

Effective salience is computed in SQL: the stored salience decayed by the sector's daily
rate for the days since `decayed_at`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert

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
