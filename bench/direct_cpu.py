"""`python -m bench.direct_cpu [--turns N] [--rounds R]`: the CPU of `tzurot.db.direct`'s
statements inside real turns.

Sums this thread's CPU (`time.thread_time`) during each resumption of a direct statement's
coroutine (`direct._run`: preparing the SQL, taking a connection from its pool, asyncpg's
call, giving the connection back; the time spent waiting for Postgres does not count) over
turns of one conversation through the in-process mesh, after 10 turns to warm up; prints
µs a statement, statements and ms a turn per round, and the process's CPU a turn beside it.
Loop timings (`bench.direct`) understate what a piece costs inside turns (PERFORMANCE.md,
7 Dec 2026 12:30): compare before and after in the same minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Generator
from typing import Any

from bench.env import MESH, bench_env
from bench.load import conversations
from tzurot.db import direct

_spent = {"cpu": 0.0, "statements": 0}


class _Timed:
    """Awaits `inner`, adding the thread CPU of each of its resumptions to `_spent`."""

    def __init__(self, inner: Awaitable[Any]) -> None:
        self._inner = inner

    def __await__(self) -> Generator[Any, Any, Any]:
        steps = self._inner.__await__()
        value: Any = None
        error: BaseException | None = None
        while True:
            started = time.thread_time()
            try:
                yielded = steps.throw(error) if error is not None else steps.send(value)
            except StopIteration as done:
                return done.value
            finally:
                _spent["cpu"] += time.thread_time() - started
            try:
                value, error = (yield yielded), None
            except BaseException as exc:  # thrown in by the loop (cancellation): pass it on
                value, error = None, exc


def _instrument() -> None:
    run = direct._run

    async def timed(*args: Any) -> Any:
        _spent["statements"] += 1
        return await _Timed(run(*args))

    direct._run = timed  # type: ignore[assignment]


async def _run(turns: int, rounds: int) -> None:
    _instrument()
    per_statement, per_turn = [], []
    async with bench_env(1) as env:
        await conversations(env.grpc, env.clock, count=1, turns_each=10, prefix=MESH)
        for _ in range(rounds):
            _spent.update(cpu=0.0, statements=0)
            process = time.process_time()
            await conversations(env.grpc, env.clock, count=1, turns_each=turns, prefix=MESH)
            process_ms = (time.process_time() - process) * 1000 / turns
            count = int(_spent["statements"])
            us = _spent["cpu"] * 1e6 / max(1, count)
            ms = _spent["cpu"] * 1000 / turns
            per_statement.append(us)
            per_turn.append(ms)
            print(
                f"direct {us:6.1f} µs/statement  {count / turns:5.1f} statements/turn  "
                f"{ms:5.2f} ms/turn  (process {process_ms:5.1f} ms/turn)",
                flush=True,
            )
    print(
        f"median {statistics.median(per_statement):6.1f} µs/statement  "
        f"{statistics.median(per_turn):5.2f} ms/turn"
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.direct_cpu")
    parser.add_argument("--turns", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(_run(args.turns, args.rounds))


if __name__ == "__main__":
    main()
