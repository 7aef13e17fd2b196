"""`python -m bench.cpu [--turns N] [--rounds R]`: CPU and database work per turn, mesh and floor.

Runs turns of one conversation one after another, each side in R blocks taken in turn with
the other's (mesh, floor, floor, mesh, ...: the host's speed drifts within a minute, and
the mesh/floor ratio should not), and prints, per turn: CPU time of the
services (this process, where every service runs, less the fake provider's own thread;
Postgres not counted; the process's whole figure and the provider's are printed too),
p50 of the whole turn, the SQL statements all services sent (and gateway's alone;
SQLAlchemy engine events and tzurot.db.direct), BEGINs sent
(counted in the asyncpg adapter), round trips = statements + BEGIN + COMMIT/ROLLBACK, and
the RPCs the services served (their `grpc_server_handled_total`; none on the floor).
Background SQL (memory's formation worker) is let drain before each side is measured, and
its work for the measured turns is counted (the clock stops once it is quiet again).
Quieter than the latency figures on a shared machine: compare these before and after a change.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import REGISTRY
from sqlalchemy import event
from sqlalchemy.dialects.postgresql import asyncpg as pg_asyncpg
from sqlalchemy.engine import Engine

from bench.env import FLOOR, MESH, bench_env
from bench.load import Chat, conversations
from tzurot.db import direct

_counts: Counter[str] = Counter()


def _count_statement(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
    _counts["statements"] += 1
    if "core." in statement:  # gateway's schema
        _counts["gateway"] += 1


async def _quiesce() -> None:
    """Waits until background work (memory's formation worker) stops sending SQL."""
    for _ in range(40):
        before = _counts["statements"]
        await asyncio.sleep(0.5)
        if _counts["statements"] == before:
            return


def _count_direct_statements() -> None:
    """Counts statements sent through `tzurot.db.direct` (no SQLAlchemy engine events)."""
    run = direct._run

    async def counted(engine: Any, statement: Any, params: Any, method: str) -> Any:
        sql, _ = statement.prepare(engine.dialect, params)
        _count_statement(None, None, sql)
        return await run(engine, statement, params, method)

    direct._run = counted


def _count_transactions() -> None:
    """Counts BEGINs sent to Postgres (autocommit connections send none)."""
    adapter = pg_asyncpg.AsyncAdapt_asyncpg_connection
    start = adapter._start_transaction

    async def counted(self: Any) -> None:
        if self.isolation_level != "autocommit":
            _counts["transactions"] += 1
        await start(self)  # type: ignore[no-untyped-call]

    adapter._start_transaction = counted  # type: ignore[method-assign]


def _rpcs_served() -> float:
    return sum(
        sample.value
        for metric in REGISTRY.collect()
        if metric.name == "grpc_server_handled"
        for sample in metric.samples
        if sample.name == "grpc_server_handled_total"
    )


@dataclass
class _Totals:
    """One side's measured blocks, summed."""

    turns: int = 0
    process_s: float = 0.0
    provider_s: float = 0.0
    statements: int = 0
    gateway: int = 0
    transactions: int = 0
    rpcs: float = 0.0
    whole_ms: list[float] = field(default_factory=list)

    def figures(self) -> dict[str, float]:
        turns = self.turns
        process_ms = self.process_s * 1000 / turns
        provider_ms = self.provider_s * 1000 / turns
        return {
            # The services' CPU: the process's, less the fake provider's thread.
            "cpu_ms": round(process_ms - provider_ms, 1),
            "process_cpu_ms": round(process_ms, 1),
            "provider_cpu_ms": round(provider_ms, 1),
            "p50_ms": round(statistics.median(self.whole_ms), 1),
            "statements": round(self.statements / turns, 1),
            "gateway_statements": round(self.gateway / turns, 1),
            "transactions": round(self.transactions / turns, 1),
            "round_trips": round((self.statements + 2 * self.transactions) / turns, 1),
            "rpcs": round(self.rpcs / turns, 1),
        }


async def _block(
    chat: Chat, clock: Any, side: str, turns: int, *, provider: Any, total: _Totals
) -> None:
    """`turns` turns of one conversation of `side`, with formation's work after them."""
    await _quiesce()
    _counts.clear()
    rpcs = _rpcs_served()
    cpu, provider_cpu = time.process_time(), provider.cpu_seconds()
    timings = await conversations(chat, clock, count=1, turns_each=turns, prefix=side)
    await _quiesce()  # formation's work for these turns counts too
    total.turns += turns
    total.process_s += time.process_time() - cpu
    total.provider_s += provider.cpu_seconds() - provider_cpu
    total.statements += _counts["statements"]
    total.gateway += _counts["gateway"]
    total.transactions += _counts["transactions"]
    total.rpcs += _rpcs_served() - rpcs
    total.whole_ms += [t.whole_ms for t in timings]


async def measure(turns: int, rounds: int = 4) -> dict[str, Any]:
    """{side: figures} for mesh and floor, and the mesh's first turn after start (wall and
    CPU ms; the CPU, unlike the wall time, hardly moves with the machine's load). Each side
    runs `turns` turns, in `rounds` blocks taken in turn with the other side's."""
    event.listen(Engine, "before_cursor_execute", _count_statement)
    _count_transactions()
    _count_direct_statements()
    found: dict[str, Any] = {}
    async with bench_env(1, provider_on_thread=True) as env:
        provider = env.provider_thread
        assert provider is not None
        cpu, provider_cpu = time.process_time(), provider.cpu_seconds()
        (first,) = await conversations(env.grpc, env.clock, count=1, turns_each=1, prefix=MESH)
        first_cpu = time.process_time() - cpu - (provider.cpu_seconds() - provider_cpu)
        found["first_turn_cpu_ms"] = round(first_cpu * 1000, 1)  # less the fake provider's
        found["first_turn_ms"] = first.whole_ms
        chats: dict[str, Chat] = {MESH: env.grpc, FLOOR: env.floor}
        for side, chat in chats.items():
            await conversations(chat, env.clock, count=1, turns_each=5, prefix=side)
        # The sides take turns in blocks (mesh, floor, floor, mesh, ...): a host whose speed
        # drifts within the minute moves both sides alike, not the ratio between them.
        totals = {side: _Totals() for side in chats}
        block = max(1, turns // rounds)
        for n in range(rounds):
            for side in (MESH, FLOOR) if n % 2 == 0 else (FLOOR, MESH):
                await _block(
                    chats[side], env.clock, side, block, provider=provider, total=totals[side]
                )
        for side, total in totals.items():
            found[side] = total.figures()
    event.remove(Engine, "before_cursor_execute", _count_statement)
    return found


async def _run(turns: int, rounds: int) -> None:
    found = await measure(turns, rounds)
    print(
        f"first turn after start {found['first_turn_ms']:.1f} ms "
        f"(cpu {found['first_turn_cpu_ms']:.1f} ms)"
    )
    for side in (MESH, FLOOR):
        f = found[side]
        print(
            f"{side:5}  cpu {f['cpu_ms']:6.1f} ms/turn (process {f['process_cpu_ms']:5.1f}, "
            f"fake provider {f['provider_cpu_ms']:4.1f})  p50 {f['p50_ms']:6.1f} ms  "
            f"statements {f['statements']:5.1f}/turn (gateway {f['gateway_statements']:4.1f})  "
            f"transactions {f['transactions']:5.1f}/turn  "
            f"round trips {f['round_trips']:5.1f}/turn  rpcs {f['rpcs']:4.1f}/turn",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cpu")
    parser.add_argument("--turns", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    asyncio.run(_run(args.turns, args.rounds))


if __name__ == "__main__":
    main()
