"""Memory figures: insert and filtered search latency at growing sizes, and recall@10 of
`nearest` (exact since 4 Dec 2026, HNSW before) against numpy's exact search, on
clustered (not uniform) 384-d unit vectors.

Scope filter: one of 100 users of one personality (1% of the rows), as in production.
Sizes: `TZUROT_BENCH_MEMORY_SIZES` (comma-separated, e.g. 10000,100000,1000000); by default
10k in quick mode, 10k and 100k otherwise.

The rows are loaded through the product's path (`insert_many`, the HNSW index maintained row by
row: ~60-500 rows/s on a shared machine, so 1M takes hours). `TZUROT_BENCH_MEMORY_BULK=1` loads
them instead with one binary COPY into the table with its secondary indexes dropped, then
builds the indexes again (the HNSW one in `maintenance_work_mem`), and prints the COPY's and
each index build's time: what a 1M figure costs. The searches and inserts measured after are
the product's either way.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import numpy as np
import numpy.typing as npt
from pgvector.asyncpg import register_vector

from bench.results import Figure, summarise
from tzurot.cli.localdb import create_database, local_postgres
from tzurot.db.engine import create_engine
from tzurot.db.heads import libpq_url
from tzurot.db.migrate import upgrade
from tzurot.memory.domain import MemoryScope
from tzurot.memory.memory_store import PostgresMemoryStore
from tzurot.memory.migrations import SCRIPT_LOCATION
from tzurot.memory.tables import SCHEMA

USERS = 100
CLUSTERS = 200
K = 10
BATCH = 2000
BULK_ENV = "TZUROT_BENCH_MEMORY_BULK"
BULK_MEMORY = "3GB"
"""maintenance_work_mem of the index builds: a 1M x 384-d HNSW graph (~1.8 GB) then fits."""


def clustered(
    rng: np.random.Generator, count: int, centres: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32]:
    picks = rng.integers(0, len(centres), count)
    noise = rng.normal(0, 0.35, (count, centres.shape[1])).astype(np.float32)
    vectors: npt.NDArray[np.float32] = centres[picks] + noise
    unit: npt.NDArray[np.float32] = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return unit


def run(quick: bool) -> list[Figure]:
    default = "10000" if quick else "10000,100000"
    sizes = [int(n) for n in os.environ.get("TZUROT_BENCH_MEMORY_SIZES", default).split(",")]
    bulk = os.environ.get(BULK_ENV, "0") not in {"", "0"}
    return asyncio.run(measure(sizes, queries=100 if quick else 500, bulk=bulk))


def _row_user(i: int) -> str:
    return f"u{i % USERS}"


async def bulk_load(
    url: str,
    vectors: npt.NDArray[np.float32],
    first: int,
    user_of: Callable[[int], str] = _row_user,
) -> dict[str, float]:
    """Appends `vectors` (row `first + i` of user `user_of(first + i)`) by COPY with the
    table's secondary indexes dropped, then rebuilds them; the seconds of each step."""
    seconds: dict[str, float] = {}
    conn = await asyncpg.connect(libpq_url(url))
    try:
        await register_vector(conn)
        indexes = await conn.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'memory'"
            " AND tablename = 'memories' AND indexname <> 'memories_pkey'"
        )
        for index in indexes:
            await conn.execute(f"DROP INDEX memory.{index['indexname']}")
        started = time.perf_counter()
        await conn.copy_records_to_table(
            "memories",
            schema_name="memory",
            columns=["personality_id", "user_id", "text", "embedding", "sector", "salience"],
            records=(
                ("p", user_of(first + i), str(first + i), vector, "semantic", 0.5)
                for i, vector in enumerate(vectors)
            ),
        )
        seconds["copy"] = time.perf_counter() - started
        await conn.execute(f"SET maintenance_work_mem = '{BULK_MEMORY}'")
        for index in indexes:
            started = time.perf_counter()
            await conn.execute(index["indexdef"])
            seconds[index["indexname"]] = time.perf_counter() - started
        started = time.perf_counter()
        await conn.execute("ANALYZE memory.memories")
        seconds["analyze"] = time.perf_counter() - started
    finally:
        await conn.close()
    return seconds


async def measure(
    sizes: list[int], queries: int, ef_search: int = 100, *, bulk: bool = False
) -> list[Figure]:
    figures: list[Figure] = []
    rng = np.random.default_rng(42)
    centres = rng.normal(0, 1, (CLUSTERS, 384)).astype(np.float32)
    with (
        tempfile.TemporaryDirectory(prefix="tzbench-", dir="/tmp") as tmp,
        local_postgres(Path(tmp) / "pg", delete_on_exit=True) as server_url,
    ):
        url = create_database(server_url, f"bench_{uuid.uuid4().hex[:8]}")
        upgrade(SCRIPT_LOCATION, url, SCHEMA)
        engine = create_engine(url)
        store = PostgresMemoryStore(engine, ef_search=ef_search)
        try:
            vectors = np.zeros((0, 384), dtype=np.float32)
            users: list[int] = []
            for size in sorted(sizes):
                started = time.perf_counter()
                before = len(vectors)
                if bulk and size > before:
                    fresh = clustered(rng, size - before, centres)
                    steps = await bulk_load(url, fresh, before)
                    print(
                        f"bulk load to {size:,}: "
                        + ", ".join(f"{name} {value:.1f} s" for name, value in steps.items()),
                        flush=True,
                    )
                    vectors = np.vstack([vectors, fresh])
                    users += [(before + i) % USERS for i in range(size - before)]
                while len(vectors) < size:
                    count = min(BATCH, size - len(vectors))
                    fresh = clustered(rng, count, centres)
                    first = len(vectors)
                    await store.insert_many(
                        [
                            {
                                "personality_id": "p",
                                "user_id": _row_user(first + i),
                                "text": str(first + i),
                                "embedding": fresh[i].tolist(),
                                "sector": "semantic",
                                "salience": 0.5,
                            }
                            for i in range(count)
                        ]
                    )
                    vectors = np.vstack([vectors, fresh])
                    users += [(first + i) % USERS for i in range(count)]
                bulk_seconds = time.perf_counter() - started
                rate = (size - before) / bulk_seconds if bulk_seconds else 0.0
                figures += await _measure(
                    store, rng, centres, vectors, np.array(users), queries, size, rate
                )
        finally:
            await engine.dispose()
    return figures


async def _measure(  # noqa: PLR0917 - one figure's inputs
    store: PostgresMemoryStore,
    rng: np.random.Generator,
    centres: npt.NDArray[np.float32],
    vectors: npt.NDArray[np.float32],
    users: npt.NDArray[np.int64],
    queries: int,
    size: int,
    bulk_rate: float,
) -> list[Figure]:
    inserts: list[float] = []
    for n in range(min(queries, 100)):
        vector = clustered(rng, 1, centres)[0].tolist()
        started = time.perf_counter()
        await store.insert(
            MemoryScope("p-insert", f"u{n}"),
            text="x",
            embedding=vector,
            sector="semantic",
            salience=0.5,
        )
        inserts.append((time.perf_counter() - started) * 1000)
    latencies: list[float] = []
    recalls: list[float] = []
    for n in range(queries):
        user = n % USERS
        query = clustered(rng, 1, centres)[0]
        started = time.perf_counter()
        hits = await store.nearest("p", [f"u{user}"], query.tolist(), K)
        latencies.append((time.perf_counter() - started) * 1000)
        scope = np.flatnonzero(users == user)
        exact = scope[np.argsort(-(vectors[scope] @ query))[:K]]
        found = {int(hit.memory.text) for hit in hits}
        recalls.append(len(found & {int(i) for i in exact}) / K)
    recall = float(np.mean(recalls))
    return [
        summarise(f"memory insert at {size:,}", inserts),
        summarise(
            f"memory search (1% scope, k={K}) at {size:,}",
            latencies,
            recall_at_10=round(recall, 4),
            bulk_load_rows_per_s=round(bulk_rate),
        ),
    ]
