"""`python -m bench.cpu [--turns N]`: CPU and database work per turn, mesh and floor.

Runs turns of one conversation one after another and prints, per turn: CPU time of the
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
from typing import Any

from prometheus_client import REGISTRY
from sqlalchemy import event
from sqlalchemy.dialects.postgresql import asyncpg as pg_asyncpg
from sqlalchemy.engine import Engine

from bench.env import FLOOR, MESH, bench_env
from bench.load import conversations
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


async def measure(turns: int) -> dict[str, Any]:
    """{side: figures} for mesh and floor, and the mesh's first turn after start (wall and
    CPU ms; the CPU, unlike the wall time, hardly moves with the machine's load)."""
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
        for side, chat in ((MESH, env.grpc), (FLOOR, env.floor)):
            await conversations(chat, env.clock, count=1, turns_each=5, prefix=side)
            await _quiesce()
            _counts.clear()
            rpcs = _rpcs_served()
            cpu, provider_cpu = time.process_time(), provider.cpu_seconds()
            timings = await conversations(chat, env.clock, count=1, turns_each=turns, prefix=side)
            await _quiesce()  # formation's work for these turns counts too
            process_ms = (time.process_time() - cpu) * 1000 / turns
            provider_ms = (provider.cpu_seconds() - provider_cpu) * 1000 / turns
            rpcs = _rpcs_served() - rpcs
            statements, transactions = _counts["statements"], _counts["transactions"]
            found[side] = {
                # The services' CPU: the process's, less the fake provider's thread.
                "cpu_ms": round(process_ms - provider_ms, 1),
                "process_cpu_ms": round(process_ms, 1),
                "provider_cpu_ms": round(provider_ms, 1),
                "p50_ms": round(statistics.median(t.whole_ms for t in timings), 1),
                "statements": round(statements / turns, 1),
                "gateway_statements": round(_counts["gateway"] / turns, 1),
                "transactions": round(transactions / turns, 1),
                "round_trips": round((statements + 2 * transactions) / turns, 1),
                "rpcs": round(rpcs / turns, 1),
            }
    event.remove(Engine, "before_cursor_execute", _count_statement)
    return found


async def _run(turns: int) -> None:
    found = await measure(turns)
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
    asyncio.run(_run(parser.parse_args().turns))


if __name__ == "__main__":
    main()
