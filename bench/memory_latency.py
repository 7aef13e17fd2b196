"""Search latency of one scope of LoCoMo memories, formed through the product's path.

`python -m bench.memory_latency [--keep DIR] [--rounds N] [--explain]`

LoCoMo conversations (`TZUROT_BENCH_LATENCY_ONLY`, default 26,30,41,42: 2,056 memories)
are stored as one user talking with one personality (History.store_exchange, dated from
their sessions) and formed by the formation worker, as `bench/locomo.py` does; then each
of their questions is asked as inference asks (LongTermMemory.query, limit 10, default
threshold). Per search it measures wall time and this process's CPU (query embedding
included), split into the embedding (its worker thread's CPU), the full-text pool's
statement (sent while the query embeds), the nearest pool's and the rest (scoring); it
also reads the embedded Postgres' CPU over the whole pass (its processes' utime + stime,
so a mean per search) and counts SQL statements. R@5 / R@10 / MRR of the questions'
evidence are printed beside, so a change that speeds search up but ranks worse shows.

`--keep DIR` keeps the database (and the turn-to-dia_id map) in DIR: the first run forms
the memories (minutes), later runs reuse them (seconds), with migrations applied.
`--explain` runs EXPLAIN (ANALYZE, BUFFERS) of every question's statements and prints, for
each pool's statement, the median execution time and the plan of the median question.

Not part of `make bench` (it needs the LoCoMo data; `bench/locomo.py` prints the same
search figure for the full run). Set `TZUROT_BENCH_LOCOMO_DATA` as for that bench.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.locomo import DATA_ENV, QUERY_LIMIT, Conversation, _dia_ids, _new_turn, exchanges, load
from bench.memory_quality import metrics
from tzurot.cli.localdb import create_database, local_postgres, with_database
from tzurot.db import direct
from tzurot.db.engine import create_engine
from tzurot.db.migrate import upgrade
from tzurot.memory.embedding import Embedder, Vector
from tzurot.memory.formation import Formation
from tzurot.memory.longterm import LongTermMemory
from tzurot.memory.memory_store import PostgresMemoryStore
from tzurot.memory.migrations import SCRIPT_LOCATION
from tzurot.memory.minilm_onnx import OnnxMiniLMEmbedder
from tzurot.memory.service import History
from tzurot.memory.store import PostgresTurnStore
from tzurot.memory.tables import SCHEMA

ONLY_ENV = "TZUROT_BENCH_LATENCY_ONLY"
DEFAULT_ONLY = "26,30,41,42"
PERSONALITY = "locomo"
USER = "locomo-user"
DATABASE = "latency"
_MAP_FILE = "dia_of.json"
_TICKS = os.sysconf("SC_CLK_TCK")


class Phases:
    """Wall and CPU milliseconds of each phase of the current search. Phases may overlap
    (the full-text statement runs while the query embeds), so each one's CPU is its own
    thread's: the embedding's worker thread, the event loop's for a statement."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    def reset(self) -> None:
        self.wall.clear()
        self.cpu.clear()

    def add(self, name: str, wall: float, cpu: float) -> None:
        self.wall[name] = self.wall.get(name, 0.0) + wall * 1000
        self.cpu[name] = self.cpu.get(name, 0.0) + cpu * 1000


class TimedEmbedder:
    """The local model, its encode timed in the worker thread it runs in."""

    def __init__(self, inner: OnnxMiniLMEmbedder, phases: Phases) -> None:
        self._inner, self._phases = inner, phases

    @property
    def dimensions(self) -> int:
        return self._inner.dimensions

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        def timed() -> tuple[list[Vector], float]:
            started = time.thread_time()
            vectors = self._inner.embed_sync(texts)
            return vectors, time.thread_time() - started

        wall = time.perf_counter()
        vectors, cpu = await asyncio.to_thread(timed)
        self._phases.add("embedding", time.perf_counter() - wall, cpu)
        return vectors

    async def aclose(self) -> None:
        await self._inner.aclose()


def _pool(sql: str) -> str | None:
    """Which of a search's statements `sql` is: the full-text pool's (sent while the query
    embeds), the one with the query's vector (the nearest pool, with the full-text pool's
    rows), or neither (None)."""
    if "real[]" in sql:
        return "nearest pool"
    return "full-text pool" if "ts_rank" in sql else None


def _timed_statements(phases: Phases) -> None:
    """Times each `tzurot.db.direct` statement (wall, and the event loop thread's CPU),
    named by its pool: the full-text pool's (sent while the query embeds) or the nearest's."""
    run = direct._run

    async def _timed(
        engine_: AsyncEngine, statement: direct.Statement, params: direct.Params, method: str
    ) -> Any:
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return await run(engine_, statement, params, method)
        finally:
            wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
            sql, _args = statement.prepare(engine_.dialect, params)
            phases.add(f"{_pool(sql) or 'other'} statement", wall, cpu)

    direct._run = _timed  # type: ignore[assignment]


def _postgres_cpu_seconds(data_dir: Path) -> float:
    """utime + stime of the server's postmaster and every process it started."""
    postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(entry.name), int(fields[1])
        if postmaster in (pid, ppid):
            total += int(fields[11]) + int(fields[12])
    return total / _TICKS


async def _form(
    engine: AsyncEngine, embedder: Embedder, conversations: Sequence[Conversation]
) -> dict[str, str]:
    """Stores and forms every conversation into the one scope; turn id -> dia_id."""
    memory_store = PostgresMemoryStore(engine)
    history = History(PostgresTurnStore(engine))
    formation = Formation(memory_store, LongTermMemory(memory_store, embedder))
    dia_of: dict[str, str] = {}
    started = time.perf_counter()
    for conversation in conversations:
        for n, (when, turns) in enumerate(exchanges(conversation)):
            stored = await history.store_exchange(
                f"latency-{conversation.sample_id}-{n}",
                f"latency-channel-{conversation.sample_id}",
                PERSONALITY,
                USER,
                [_new_turn(turn, conversation) for turn in turns],
                occurred_at=when + timedelta(seconds=n),
            )
            for turn, stored_turn in zip(turns, stored.turns, strict=True):
                dia_of[stored_turn.id] = f"{conversation.sample_id}:{turn['dia_id']}"
        await formation.drain()
    async with engine.connect() as conn:
        await conn.execute(sa.text("ANALYZE memory.memories"))
        await conn.commit()
    print(f"formed in {time.perf_counter() - started:.0f} s", flush=True)
    return dia_of


async def _memories(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        count = await conn.scalar(
            sa.text("SELECT count(*) FROM memory.memories WHERE personality_id = :p"),
            {"p": PERSONALITY},
        )
    return int(count or 0)


def _percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * len(ordered)))]


def _line(name: str, values: Sequence[float]) -> str:
    return (
        f"{name:<28} p50 {statistics.median(values):6.2f}  p95 {_percentile(values, 0.95):6.2f}"
        f"  mean {statistics.fmean(values):6.2f} ms"
    )


async def _explain(
    engine: AsyncEngine, captured: list[tuple[str, Sequence[Any]]]
) -> tuple[list[float], str]:
    """EXPLAIN (ANALYZE, BUFFERS) of each captured statement: execution ms, median plan."""
    times: list[tuple[float, str]] = []
    async with engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        assert raw is not None
        for sql, params in captured:
            plan = await raw.fetchval(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", *params)
            found = json.loads(plan) if isinstance(plan, str) else plan
            text = "\n".join(
                r[0] for r in await raw.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", *params)
            )
            times.append((float(found[0]["Execution Time"]), text))
    times.sort(key=lambda pair: pair[0])
    return [t for t, _p in times], times[len(times) // 2][1]


async def measure(data: Path, keep: Path | None, rounds: int, explain: bool) -> None:
    only = [s.strip() for s in os.environ.get(ONLY_ENV, DEFAULT_ONLY).split(",") if s.strip()]
    conversations = [c for c in load(data) if c.sample_id in only]
    questions = [
        (c.sample_id, qa)
        for c in conversations
        for qa in c.questions
        if qa.get("evidence") and int(qa.get("category", 0)) != 5
    ]
    onnx = OnnxMiniLMEmbedder()
    onnx.load()
    with tempfile.TemporaryDirectory(prefix="tzlat-", dir="/tmp") as tmp:
        data_dir = (keep or Path(tmp)) / "pg"
        with local_postgres(data_dir, delete_on_exit=keep is None) as server_url:
            map_file = data_dir.parent / _MAP_FILE
            fresh = not map_file.exists()
            url = (
                create_database(server_url, DATABASE)
                if fresh
                else with_database(server_url, DATABASE)
            )
            upgrade(SCRIPT_LOCATION, url, SCHEMA)
            engine = create_engine(url)
            try:
                if fresh:
                    dia_of = await _form(engine, onnx, conversations)
                    map_file.write_text(json.dumps(dia_of))
                dia_of = json.loads(map_file.read_text())
                await _search(engine, onnx, data_dir, questions, dia_of, rounds, explain)
            finally:
                await engine.dispose()


def _count_direct(count: Callable[..., None]) -> None:  # after _timed_statements
    """Calls `count` (as the engine event would) for each `tzurot.db.direct` statement,
    which fires no engine events."""
    run = direct._run

    async def _counted(
        engine_: AsyncEngine, statement: direct.Statement, params: direct.Params, method: str
    ) -> Any:
        sql, args = statement.prepare(engine_.dialect, params)
        count(None, None, sql, args)
        return await run(engine_, statement, params, method)

    direct._run = _counted  # type: ignore[assignment]


async def _search(  # noqa: PLR0917 - a bench's one long loop
    engine: AsyncEngine,
    onnx: OnnxMiniLMEmbedder,
    data_dir: Path,
    questions: Sequence[tuple[str, dict[str, Any]]],
    dia_of: dict[str, str],
    rounds: int,
    explain: bool,
) -> None:
    phases = Phases()
    _timed_statements(phases)
    longterm = LongTermMemory(PostgresMemoryStore(engine), TimedEmbedder(onnx, phases))
    statements = {"n": 0, "on": False}
    captured: dict[str, list[tuple[str, Sequence[Any]]]] = {}

    def _count(_conn: Any, _cursor: Any, sql: str, params: Any, *_rest: Any) -> None:
        if statements["on"]:
            statements["n"] += 1
            pool = _pool(sql)
            if explain and pool:
                captured.setdefault(pool, []).append((sql, tuple(params)))

    event.listen(engine.sync_engine, "before_cursor_execute", _count)
    _count_direct(_count)
    print(
        f"{await _memories(engine):,} memories in one scope; {len(questions)} questions "
        f"(categories 1-4) x {rounds} rounds after one warm-up pass",
        flush=True,
    )
    for _sample, qa in questions:  # warm-up: caches, plans, connections
        await longterm.query(PERSONALITY, USER, str(qa["question"]), limit=QUERY_LIMIT)
    wall: list[float] = []
    cpu: list[float] = []
    by_phase: dict[str, list[float]] = {}
    rest: list[float] = []
    scores: list[dict[str, float]] = []
    pg_before = _postgres_cpu_seconds(data_dir)
    load_before = os.getloadavg()
    for round_ in range(rounds):
        for sample, qa in questions:
            phases.reset()
            statements["on"] = True
            started_wall, started_cpu = time.perf_counter(), time.process_time()
            found = await longterm.query(PERSONALITY, USER, str(qa["question"]), limit=QUERY_LIMIT)
            wall.append((time.perf_counter() - started_wall) * 1000)
            cpu.append((time.process_time() - started_cpu) * 1000)
            statements["on"] = False
            for name, value in phases.cpu.items():
                by_phase.setdefault(f"{name} (CPU)", []).append(value)
            rest.append(cpu[-1] - sum(phases.cpu.values()))
            for name, value in phases.wall.items():
                by_phase.setdefault(f"{name} (wall)", []).append(value)
            if round_ == 0:
                evidence = {f"{sample}:{d}" for d in qa["evidence"]}
                scores.append(metrics(_dia_ids(found, dia_of), evidence))
    pg_cpu = (_postgres_cpu_seconds(data_dir) - pg_before) * 1000 / len(wall)
    load_after = os.getloadavg()
    print(_line("search wall", wall))
    print(_line("search client CPU", cpu))
    for name in sorted(by_phase):
        print(_line(f"  {name}", by_phase[name]))
    print(_line("  scoring and rest (CPU)", rest))
    print(f"Postgres CPU per search (mean over the pass): {pg_cpu:.2f} ms")
    print(f"SQL statements per search: {statements['n'] / len(wall):.2f}")
    quality = {name: statistics.fmean(s[name] for s in scores) for name in scores[0]}
    print(
        f"R@5 {quality['recall@5']:.3f}  R@10 {quality['recall@10']:.3f}  "
        f"MRR {quality['mrr']:.3f} ({len(scores)} questions, one scope)"
    )
    print(
        "load average "
        + " / ".join(f"{x:.2f}" for x in load_before)
        + " before, "
        + " / ".join(f"{x:.2f}" for x in load_after)
        + f" after, on {os.cpu_count()} cores",
        flush=True,
    )
    for kind, statements_run in sorted(captured.items()):
        times, plan = await _explain(engine, statements_run[: len(questions)])
        print(_line(f"EXPLAIN ANALYZE, {kind}", times))
        print(f"its plan for the median question:\n{plan}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.memory_latency")
    parser.add_argument("--keep", type=Path, help="keep the formed database in this folder")
    parser.add_argument("--rounds", type=int, default=1, help="timed passes over the questions")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE each statement")
    args = parser.parse_args()
    given = os.environ.get(DATA_ENV, "")
    if not given or not Path(given).exists():
        raise SystemExit(f"set {DATA_ENV} to LoCoMo's locomo10.json or its folder")
    asyncio.run(measure(Path(given), args.keep, args.rounds, args.explain))


if __name__ == "__main__":
    main()
