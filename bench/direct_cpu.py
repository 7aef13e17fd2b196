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
from typing import Any

from bench.turn_cpu import ThreadCpu, warmed_conversation
from tzurot.db import direct

_spent: dict[str, float] = {"cpu": 0.0, "statements": 0}


def _instrument() -> None:
    run = direct._run

    async def timed(*args: Any) -> Any:
        _spent["statements"] += 1
        return await ThreadCpu(run(*args), _spent, "cpu")

    direct._run = timed  # type: ignore[assignment]


async def _run(turns: int, rounds: int) -> None:
    _instrument()
    per_statement, per_turn = [], []
    async with warmed_conversation(10) as run_turns:
        for _ in range(rounds):
            _spent.update(cpu=0.0, statements=0)
            process_ms = await run_turns(turns)
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
