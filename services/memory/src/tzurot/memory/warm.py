"""Memory's warm-up before it reports SERVING: the first message after start pays no
first-use costs that the next one does not.

The local embedding model runs once (its first encode alone costs seconds). A turn's
statements (StoreExchange, GetHistory, the search's pools, formation's claim, neighbours
and write) run once with keys that match nothing, which fills SQLAlchemy's compiled-statement
cache, the pooled connection's prepared statements and the database backend's catalog caches
for them (on every connection the pool opens later too: `tzurot.db.warm`). Nothing changes:
the exchange has no turns and forms nothing, the claim leases at most zero jobs, and the
formation write carries no rows and no claim."""

from __future__ import annotations

import asyncio
import math
import time
from datetime import UTC, datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.db.warm import warm_pool
from tzurot.memory.domain import Exchange, MemoryScope
from tzurot.memory.embedding import Embedder, MiniLMEmbedder
from tzurot.memory.longterm import LongTermMemory
from tzurot.memory.memory_store import PostgresMemoryStore
from tzurot.memory.minilm_onnx import OnnxMiniLMEmbedder
from tzurot.memory.recall import Window
from tzurot.memory.store import PostgresTurnStore

log = structlog.get_logger(__name__)

# No job, channel, personality or user has this id (ids are Discord snowflakes, UUIDs or
# prefixed names, never a DEL character).
NO_MATCH = "\x7fwarm-up"
NEIGHBOURS = 10
"""Formation reads this many stored neighbours of each new memory (`_store_formed`)."""


async def warm_embedder(embedder: Embedder) -> None:
    """Loads the local model and runs it once. A remote embedder is left alone: its
    endpoint being down must not stop memory from starting."""
    if isinstance(embedder, OnnxMiniLMEmbedder | MiniLMEmbedder):
        started = time.perf_counter()
        await embedder.embed(["warming up"])
        if isinstance(embedder, OnnxMiniLMEmbedder):  # a query's run, token states too
            await embedder.embed_in_context(f"{NO_MATCH}: warming up", len(NO_MATCH) + 2)
        log.info("embedder.warm", seconds=round(time.perf_counter() - started, 2))


async def warm_statements(
    turns: PostgresTurnStore,
    memories: PostgresMemoryStore,
    longterm: LongTermMemory,
    dimensions: int,
) -> None:
    """A turn's statements, compiled and run once with keys that match nothing."""
    vector = [1 / math.sqrt(dimensions)] * dimensions  # any unit vector: nothing is near
    await turns.store_exchange(
        Exchange(NO_MATCH, NO_MATCH, NO_MATCH, user_id="", turns=(), imported=True)
    )
    for one_personality in (True, False):  # a conversation, or a group channel's
        await turns.history(NO_MATCH, NO_MATCH if one_personality else "", 1)
    # The search's shapes: with history (a window) or none yet; with words to match, or a
    # query of stop words only; the vector known, or still being computed (the full-text
    # pool is then read first, on its own).
    for window in (Window(), Window(before=datetime.now(UTC))):
        for query in ("warming up", ""):
            for given in (vector, _still_embedding(vector)):
                await longterm.rank(
                    NO_MATCH, [NO_MATCH, ""], query, given, window, limit=1, fresh_for=NO_MATCH
                )
    await memories.claim_formation(0)
    await memories.nearest_many([(MemoryScope(NO_MATCH, NO_MATCH), vector)], NEIGHBOURS)
    await memories.write_formed([], {}, [], 0.0)


async def _still_embedding(vector: list[float]) -> list[float]:
    """`vector` as a search gets its query's embedding while the model still runs."""
    return vector


async def warm_up(
    engine: AsyncEngine,
    embedder: Embedder,
    turns: PostgresTurnStore,
    memories: PostgresMemoryStore,
    longterm: LongTermMemory,
) -> None:
    """Runs the local model once (in its thread) while the statements are warmed on every
    pooled connection."""
    model = asyncio.ensure_future(warm_embedder(embedder))
    try:
        started = time.thread_time()  # this thread's: the model runs in its own meanwhile
        statements = await warm_pool(
            engine, lambda: warm_statements(turns, memories, longterm, embedder.dimensions)
        )
        cpu = round(time.thread_time() - started, 3)
        log.info("memory.warm", statements=statements, cpu_seconds=cpu)
    finally:
        await model
