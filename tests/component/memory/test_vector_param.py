"""A search's query vector travels as a binary `vector` parameter (pgvector's codec on the
memory engine's direct pool, `memory_rows.use_binary_vectors`), not as a `real[]` cast in
SQL: the same vector reaches Postgres, so searches find the same rows at the same
distances. Only an engine memory opts in gets the codec."""

import random

import pytest
import sqlalchemy as sa
from pgvector import Vector
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.db import direct
from tzurot.db.engine import autocommit, create_engine
from tzurot.memory.memory_store import PostgresMemoryStore

pytestmark = pytest.mark.component

_ROUND_TRIP = direct.Statement(
    sa.text(
        "SELECT CAST(:vec AS vector) AS v,"
        " CAST(CAST(:vec AS vector) AS real[]) AS floats,"
        # The same list as the `real[]` the searches sent before: the same vector.
        " CAST(:vec AS vector) = CAST(CAST(:floats AS real[]) AS vector) AS same"
    )
)
_TEXT = direct.Statement(sa.text("SELECT CAST('[1,2.5]' AS vector)"))


async def test_a_vector_parameter_makes_the_round_trip_as_binary(engine: AsyncEngine) -> None:
    PostgresMemoryStore(engine)  # memory's opt-in
    rng = random.Random(3)
    vector = [rng.gauss(0, 1) for _ in range(384)]
    row = await direct.fetchrow(autocommit(engine), _ROUND_TRIP, {"vec": vector, "floats": vector})
    assert row is not None
    as_float32 = Vector(vector).to_list()  # a vector holds 4-byte floats, as real[] does
    assert row["v"] == Vector(vector)  # decoded by the codec, not text
    assert row["floats"] == as_float32
    assert row["same"] is True


async def test_only_an_engine_memory_opted_in_has_the_codec(
    engine: AsyncEngine, memory_url: str
) -> None:
    PostgresMemoryStore(engine)
    other = create_engine(memory_url)  # the same database, no opt-in (any other service's)
    try:
        assert await direct.fetchrow(autocommit(other), _TEXT, {}) == ("[1,2.5]",)
        assert await direct.fetchrow(autocommit(engine), _TEXT, {}) == (Vector([1.0, 2.5]),)
    finally:
        await other.dispose()


async def test_memory_refuses_an_engine_without_a_direct_pool(memory_url: str) -> None:
    """Its `vector` parameters need the direct pool's codec: an engine whose direct
    statements would go through its own pool fails at once, not at the first search."""
    engine = create_engine(memory_url, pool_size=2)  # no direct pool
    try:
        with pytest.raises(ValueError, match="direct pool"):
            PostgresMemoryStore(engine)
    finally:
        await engine.dispose()
