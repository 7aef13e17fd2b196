"""`python -m bench.memory_large_scope [--queries N]`: one user's scope past the exact limit.

100,000 memories of one user, interleaved in the heap with 50,000 of 50 other users
(`memory_speed`'s COPY, clustered vectors). For each query, two stores search the same
database in turn:
- the store as shipped: past `scope_size.EXACT_SCOPE_LIMIT` through the HNSW index;
- a store with no limit: exact.

Each gives the search's candidates (a pool of 60) and formation's neighbours (k 10). The
figures are their latency and the search's recall@10 against numpy's exact top 10
(docs/MEMORY.md, "Large scopes"). Full `make bench` only: the COPY and the HNSW build take
about a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.memory_speed import CLUSTERS, bulk_load, clustered
from bench.results import Figure, summarise, table
from tzurot.cli.localdb import create_database, local_postgres
from tzurot.db.engine import create_engine
from tzurot.db.migrate import upgrade
from tzurot.memory.domain import MemoryScope
from tzurot.memory.memory_store import PostgresMemoryStore
from tzurot.memory.migrations import SCRIPT_LOCATION
from tzurot.memory.scope_size import LargeScope
from tzurot.memory.tables import SCHEMA

ROWS = 150_000
POOL = 60
K = 10
SHIPPED, EXACT = "as shipped (HNSW past the limit)", "exact (no limit)"


def _user_of(row: int) -> str:
    """Two rows in three are the large user's."""
    return "large" if row % 3 else f"u{row % 50}"


async def measure(queries: int) -> list[Figure]:
    rng = np.random.default_rng(3)
    centres = rng.normal(0, 1, (CLUSTERS, 384)).astype(np.float32)
    vectors = clustered(rng, ROWS, centres)
    large = np.array([row for row in range(ROWS) if _user_of(row) == "large"])
    with (
        tempfile.TemporaryDirectory(prefix="tzbench-", dir="/tmp") as tmp,
        local_postgres(Path(tmp) / "pg", delete_on_exit=True) as server_url,
    ):
        url = create_database(server_url, "large_scope")
        upgrade(SCRIPT_LOCATION, url, SCHEMA)
        await bulk_load(url, vectors, 0, _user_of)
        engines = [create_engine(url), create_engine(url)]
        stores = {
            SHIPPED: PostgresMemoryStore(engines[0]),
            EXACT: PostgresMemoryStore(engines[1], large_scope=LargeScope(limit=ROWS + 1)),
        }
        searches: dict[str, list[float]] = {name: [] for name in stores}
        neighbours: dict[str, list[float]] = {name: [] for name in stores}
        recalls: dict[str, list[float]] = {name: [] for name in stores}
        try:
            for n in range(queries + 1):
                query = clustered(rng, 1, centres)[0]
                best = set(large[np.argsort(-(vectors[large] @ query))[:K]].tolist())
                for name, store in stores.items():
                    started = time.perf_counter()
                    found = await store.candidates(
                        "p", ["large"], [], query.tolist(), nearest_k=POOL, keyword_k=0
                    )
                    searched = time.perf_counter()
                    await store.nearest_many([(MemoryScope("p", "large"), query.tolist())], K)
                    done = time.perf_counter()
                    if n == 0:  # the scope's count and the first reads
                        continue
                    searches[name].append((searched - started) * 1000)
                    neighbours[name].append((done - searched) * 1000)
                    top = sorted(found, key=lambda c: -c.cosine)[:K]
                    recalls[name].append(len({int(c.memory.text) for c in top} & best) / K)
        finally:
            for engine in engines:
                await engine.dispose()
    return [
        figure
        for name in stores
        for figure in (
            summarise(
                f"large scope search, {name}",
                searches[name],
                recall_at_10=round(float(np.mean(recalls[name])), 3),
            ),
            summarise(f"large scope formation neighbours, {name}", neighbours[name]),
        )
    ]


def run(quick: bool) -> list[Figure]:
    return [] if quick else asyncio.run(measure(queries=40))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.memory_large_scope")
    parser.add_argument("--queries", type=int, default=40)
    print(table(asyncio.run(measure(parser.parse_args().queries))))


if __name__ == "__main__":
    main()
