"""`python -m bench.pg_statements [--rate R] [--seconds S]`: Postgres's CPU per turn by
statement, and its commits per turn, for the mesh as deployed at a steady open-loop rate.

The embedded Postgres has no pg_stat_statements (nor auto_explain), so this turns on
`log_statement_stats` for the measured step only (`ALTER SYSTEM`, then a reload: every
backend reads it): each backend then logs the CPU (user + system) it spent on each Bind
(where a custom plan is planned) and Execute message, with the statement's text. The
commit (WAL flush, fdatasync) happens at Sync, after both, so it is in neither; the WAL
written during the step (`pg_waldump`) counts the commits instead. Logging costs CPU too,
so read the statements against each other, not as an absolute total.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]

from bench.deployed import Deployed, bot_chat, deployed_mesh, idle
from bench.load import ProviderClock, at_rate, conversations
from bench.results import summarise

USERS = 50

_USAGE = re.compile(
    r"LOG:  (?P<kind>PARSE|BIND|EXECUTE) MESSAGE STATISTICS\n"
    r".*?!\t(?P<user>[\d.]+) s user, (?P<system>[\d.]+) s system, [\d.]+ s elapsed\n"
    r".*?STATEMENT:  (?P<statement>.*?)(?=\n\d{4}-\d\d-\d\d |\Z)",
    re.DOTALL,
)


@dataclass
class StatementCost:
    """What one statement's messages cost in all: calls (Execute messages) and CPU seconds
    per message kind."""

    calls: int = 0
    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    @property
    def total(self) -> float:
        return sum(self.seconds.values())


def statement_costs(log: str) -> dict[str, StatementCost]:
    """Per statement (its text, whitespace collapsed), from a server log written with
    `log_statement_stats = on` and `log_min_error_statement = log`."""
    costs: dict[str, StatementCost] = defaultdict(StatementCost)
    for match in _USAGE.finditer(log):
        cost = costs[" ".join(match["statement"].split())]
        cost.seconds[match["kind"]] += float(match["user"]) + float(match["system"])
        if match["kind"] == "EXECUTE":
            cost.calls += 1
    return dict(costs)


def commits(waldump: str) -> int:
    """Transactions committed in `pg_waldump`'s listing (each one flushed the WAL)."""
    return sum(1 for line in waldump.splitlines() if "desc: COMMIT" in line)


async def _set_stats(data_dir: Path, *, on: bool) -> None:
    connection = await asyncpg.connect(host=str(data_dir), user="postgres", database="postgres")
    try:
        await connection.execute(f"alter system set log_statement_stats = {'on' if on else 'off'}")
        await connection.execute(
            f"alter system set log_min_error_statement = {'log' if on else 'error'}"
        )
        await connection.execute("select pg_reload_conf()")
    finally:
        await connection.close()


async def _wal_position(data_dir: Path) -> str:
    connection = await asyncpg.connect(host=str(data_dir), user="postgres", database="postgres")
    try:
        return str(await connection.fetchval("select pg_current_wal_insert_lsn()::text"))
    finally:
        await connection.close()


def _waldump(data_dir: Path, start: str, end: str) -> str:
    from pgserver._commands import POSTGRES_BIN_PATH  # noqa: PLC0415 - heavy, used once

    range_ = ["--start", start, "--end", end]
    return subprocess.run(  # noqa: S603 - pgserver's own tool on our data dir
        [str(POSTGRES_BIN_PATH / "pg_waldump"), "--path", str(data_dir / "pg_wal"), *range_],
        capture_output=True,
        text=True,
        check=False,
    ).stdout


async def _drive(deployed: Deployed, rate: float, seconds: float) -> tuple[str, str, int, str]:
    data_dir = deployed.postgres_dir
    async with bot_chat(deployed, users=USERS, prefix="mesh") as chat:
        await conversations(chat, ProviderClock(), count=USERS, turns_each=2, prefix="mesh")
        await idle(deployed.servers_cpu)
        log_file = data_dir / "log"
        log_start = log_file.stat().st_size if log_file.exists() else 0
        wal_start = await _wal_position(data_dir)
        await _set_stats(data_dir, on=True)
        step = await at_rate(
            chat, ProviderClock(), per_second=rate, seconds=seconds, users=USERS, prefix="mesh"
        )
        await idle(deployed.servers_cpu)  # formation's writes of the step are counted
        await _set_stats(data_dir, on=False)
        wal_end = await _wal_position(data_dir)
    with log_file.open("rb") as log:
        log.seek(log_start)
        text = log.read().decode(errors="replace")
    turns = len(step.timings) + step.errors
    latency = summarise("", [t.whole_ms for t in step.timings] or [0.0])
    summary = f"{turns} turns at {rate:g}/s: p50 {latency.p50:.0f} ms, p99 {latency.p99:.0f} ms"
    return text, _waldump(data_dir, wal_start, wal_end), turns, summary


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pg_statements")
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--width", type=int, default=110, help="characters of statement shown")
    args = parser.parse_args()
    with deployed_mesh() as deployed:
        log, waldump, turns, summary = asyncio.run(_drive(deployed, args.rate, args.seconds))
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    costs = statement_costs(log)
    per_turn = 1000 / max(turns, 1)
    total = sum(cost.total for cost in costs.values())
    print(f"{summary} (load average {load})")
    print(
        f"Bind + Execute CPU {total * per_turn:.2f} ms a turn over {len(costs)} statements; "
        f"commits {commits(waldump) / max(turns, 1):.2f} a turn"
    )
    print(" ms/turn  calls/turn  bind ms  exec ms  statement")
    for statement, cost in sorted(costs.items(), key=lambda item: -item[1].total):
        calls = max(cost.calls, 1)
        print(
            f"{cost.total * per_turn:8.3f}  {cost.calls / max(turns, 1):10.2f}"
            f"  {1000 * cost.seconds['BIND'] / calls:7.3f}"
            f"  {1000 * cost.seconds['EXECUTE'] / calls:7.3f}"
            f"  {statement[: args.width]}"
        )


if __name__ == "__main__":
    main()
