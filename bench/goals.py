"""Issue 16's goals, each with its measured value (`make bench-quick` prints them).

- CPU per turn, all services, retrieval and formation included (bench.cpu): ≤ 25 ms;
- SQL round trips per turn, all services (bench.cpu): ≤ 25;
- the local embedder: ≤ 3 ms CPU per short text on one thread, memory service RSS ≤ 250 MiB
  (a fresh process importing memory's service with the model loaded; bench.embedders);
- formation: ≥ 200 exchanges/s per memory replica (the outbox drained by one worker);
- first turn after start ≤ 2 times the steady p50 (bench.cpu's first mesh turn; its CPU
  against the steady CPU per turn is printed too, as the wall ratio is one turn's noise);
- the mesh/floor ratio of CPU per turn ≤ 1.3 (the floor has long-term memory too, so the
  ratio is transport: gRPC, mTLS, interceptors, access logs).

The sustained rate (≥ 50/s, the mesh as deployed: a process per service) is printed by
`throughput`, the cold start (≤ 3 s) by `cold_start`; `python -m bench` lists every goal
again after its table.

A goal not met is printed as such, with its value.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench import cpu, embedders, results
from bench.results import Figure
from tzurot.cli.localdb import create_database, local_postgres
from tzurot.db.engine import create_engine
from tzurot.db.migrate import upgrade
from tzurot.memory.domain import NewTurn, Role
from tzurot.memory.formation import Formation
from tzurot.memory.longterm import LongTermMemory
from tzurot.memory.memory_store import PostgresMemoryStore
from tzurot.memory.migrations import SCRIPT_LOCATION
from tzurot.memory.minilm_onnx import OnnxMiniLMEmbedder
from tzurot.memory.service import History
from tzurot.memory.store import PostgresTurnStore
from tzurot.memory.tables import SCHEMA

_TOPICS = ["hiking", "my sister", "the new job", "a cat called Miso", "the marathon", "ramen"]


def _postgres_cpu_seconds(marker: str) -> float:
    """CPU seconds (user + system) of the Postgres server whose command line holds
    `marker` (its data directory) and of its backends, from /proc (Linux; 0 elsewhere)."""
    proc = Path("/proc")
    if not proc.is_dir():
        return 0.0
    stats: dict[str, list[str]] = {}
    servers = set()
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().decode(errors="replace")
            stats[entry.name] = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if marker in command and "postgres" in command:
            servers.add(entry.name)
    tick = os.sysconf("SC_CLK_TCK")
    return sum(
        (int(stat[11]) + int(stat[12])) / tick
        for pid, stat in stats.items()
        if pid in servers or stat[1] in servers
    )


async def formation_rate(exchanges: int) -> dict[str, float]:
    """One worker draining a full outbox (model warm): exchanges formed per second (wall),
    and the CPU per exchange of this process (the worker and its embedder) and of Postgres,
    which a loaded machine moves far less than the wall rate."""
    embedder = OnnxMiniLMEmbedder()
    embedder.load()
    with (
        tempfile.TemporaryDirectory(prefix="tzbench-", dir="/tmp") as tmp,
        local_postgres(Path(tmp) / "pg", delete_on_exit=True) as server_url,
    ):
        url = create_database(server_url, f"goals_{uuid.uuid4().hex[:8]}")
        upgrade(SCRIPT_LOCATION, url, SCHEMA)
        engine = create_engine(url)
        try:
            memory_store = PostgresMemoryStore(engine)
            turn_store = PostgresTurnStore(engine)
            history = History(turn_store)
            formation = Formation(memory_store, LongTermMemory(memory_store, embedder))
            for n in range(exchanges):
                topic = _TOPICS[n % len(_TOPICS)]
                await history.store_exchange(
                    f"goal-{n}",
                    "goal-channel",
                    "goal-persona",
                    f"goal-user-{n % 10}",
                    [
                        NewTurn(Role.USER.value, f"Day {n}: I keep thinking about {topic} ({n})."),
                        NewTurn(Role.ASSISTANT.value, f"Tell me more about {topic} on day {n}!"),
                    ],
                )
            postgres_cpu = _postgres_cpu_seconds(tmp)
            cpu = time.process_time()
            started = time.perf_counter()
            formed = await formation.drain()
            elapsed = time.perf_counter() - started
            cpu = time.process_time() - cpu
            postgres_cpu = _postgres_cpu_seconds(tmp) - postgres_cpu
        finally:
            await engine.dispose()
    return {
        "rate": formed / elapsed,
        "memory_cpu_ms": round(1000 * cpu / formed, 2),
        "postgres_cpu_ms": round(1000 * postgres_cpu / formed, 2),
    }


def _goal(name: str, value: float, unit: str, target: str, met: bool, **extra: Any) -> Figure:
    return results.goal(name, value, unit, target, met, **extra)


def run(quick: bool) -> list[Figure]:
    sql = asyncio.run(cpu.measure(40 if quick else 120, rounds=4 if quick else 6))
    mesh, floor = sql["mesh"], sql["floor"]
    int8 = embedders.make("onnx-int8")
    int8.load()
    single = embedders.cpu_ms(lambda: int8.embed_sync([embedders.SHORT]), 50 if quick else 300)
    batched = embedders.cpu_ms(lambda: int8.embed_sync(embedders.BATCH), 5) / len(embedders.BATCH)
    rss = embedders.rss_mib("onnx-int8")
    formation = asyncio.run(formation_rate(200 if quick else 1000))
    rate = formation["rate"]
    first_ratio = sql["first_turn_ms"] / mesh["p50_ms"]
    return [
        _goal(
            "CPU per turn, mesh",
            mesh["cpu_ms"],
            "ms",
            "<= 25 ms",
            mesh["cpu_ms"] <= 25,
            floor_ms=floor["cpu_ms"],
            ratio=round(mesh["cpu_ms"] / floor["cpu_ms"], 2),
        ),
        _goal(
            "mesh/floor CPU per turn (transport)",
            mesh["cpu_ms"] / floor["cpu_ms"],
            "x",
            "<= 1.3x, the floor with long-term memory",
            mesh["cpu_ms"] / floor["cpu_ms"] <= 1.3,
            mesh_ms=mesh["cpu_ms"],
            floor_ms=floor["cpu_ms"],
        ),
        _goal(
            "SQL round trips per turn, mesh",
            mesh["round_trips"],
            "",
            "<= 25",
            mesh["round_trips"] <= 25,
            statements=mesh["statements"],
            gateway_statements=mesh["gateway_statements"],
            transactions=mesh["transactions"],
        ),
        _goal(
            "embedder CPU per short text",
            single,
            "ms",
            "<= 3 ms",
            single <= 3,
            batch64_ms_per_text=round(batched, 2),
        ),
        _goal(
            "memory RSS with the embedder",
            rss["VmRSS"],
            "MiB",
            "<= 250 MiB",
            rss["VmRSS"] <= 250,
            peak_mib=rss["VmHWM"],
        ),
        _goal(
            "formation",
            rate,
            "exchanges/s",
            ">= 200/s",
            rate >= 200,
            memory_cpu_ms_per_exchange=formation["memory_cpu_ms"],
            postgres_cpu_ms_per_exchange=formation["postgres_cpu_ms"],
        ),
        _goal(
            "first turn / steady p50",
            first_ratio,
            "x",
            "<= 2x",
            first_ratio <= 2,
            first_ms=sql["first_turn_ms"],
            p50_ms=mesh["p50_ms"],
            first_cpu_ms=sql["first_turn_cpu_ms"],
            # Steady CPU includes formation's work after the turns; the first turn's does not.
            first_cpu_over_steady=round(sql["first_turn_cpu_ms"] / mesh["cpu_ms"], 2),
        ),
    ]


if __name__ == "__main__":
    run(quick=True)
