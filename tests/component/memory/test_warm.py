"""Memory's warm-up: a turn's statements are compiled before SERVING, and no row changes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.db import direct
from tzurot.memory import store
from tzurot.memory import tables as t
from tzurot.memory.domain import Exchange, NewTurn
from tzurot.memory.embedding import Embedder
from tzurot.memory.longterm import LongTermMemory
from tzurot.memory.memory_store import PostgresMemoryStore
from tzurot.memory.store import PostgresTurnStore
from tzurot.memory.warm import warm_statements

pytestmark = pytest.mark.component

PREPARED = direct.Statement("select statement from pg_prepared_statements")

TABLES = (
    t.turns,
    t.memories,
    t.waypoints,
    t.memory_modes,
    t.memory_uses,
    t.formation_outbox,
    t.fact_outbox,
)


def _compiled(engine: AsyncEngine) -> int:
    cache = engine.sync_engine._compiled_cache
    assert cache is not None
    return len(cache)


async def _rows(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as conn:
        return {
            table.name: await conn.scalar(sa.select(sa.func.count()).select_from(table)) or 0
            for table in TABLES
        }


async def test_warm_up_compiles_a_turns_statements_and_changes_nothing(
    engine: AsyncEngine,
    memory_store: PostgresMemoryStore,
    longterm: LongTermMemory,
    embedder: Embedder,
) -> None:
    turns = PostgresTurnStore(engine)
    await warm_statements(turns, memory_store, longterm, embedder.dimensions)
    # StoreExchange and history (2 shapes) run through tzurot.db.direct: compiled there.
    for statement in (
        store._STORE_EXCHANGE,
        *(store._history_statement(p, False, False) for p in (True, False)),
    ):
        assert statement.compiled_for(engine.dialect)
    assert await _rows(engine) == dict.fromkeys((table.name for table in TABLES), 0)
    # Prepared on the pools' connections (whichever path runs them: the engine's pool, the
    # direct pool's): the exchange's insert, the history read, the search's candidates,
    # formation's claim, neighbours and write.
    async with engine.connect() as conn:
        prepared = " ".join(
            await conn.scalars(sa.text("select statement from pg_prepared_statements"))
        )
    prepared += " " + " ".join(row["statement"] for row in await direct.fetch(engine, PREPARED))
    for fragment in (
        "INSERT INTO memory.turns",
        "FROM memory.turns",
        "UPDATE memory.formation_outbox",
        "WITH q AS MATERIALIZED",
        # the full-text pool's rows alone, read while the query embeds
        "MATERIALIZED (SELECT to_tsquery(",
        # the nearest pool's other rows, and the distances of the full-text pool's
        "AND id <> ALL(CAST(",
        "INSERT INTO memory.memories",
        "FROM memory.memories",
    ):
        assert fragment in prepared, fragment
    warmed = _compiled(engine)  # and the counts just read

    # A first turn's statements now come from the cache: running them compiles nothing.
    channel, personality, user = "channel-1", str(uuid.uuid4()), "user-1"
    stored = await turns.store_exchange(
        Exchange(
            str(uuid.uuid4()),
            channel,
            personality,
            user,
            (NewTurn("user", "hello there, how are you?"), NewTurn("assistant", "fine")),
        )
    )
    assert stored.created
    await turns.history(channel, personality, 10)
    await longterm.query(personality, user, "tell me about the lighthouse")
    await longterm.query(personality, user, "and you?", exclude_after=datetime.now(UTC))
    claim = await memory_store.claim_formation(10)
    assert claim is not None
    assert _compiled(engine) == warmed
