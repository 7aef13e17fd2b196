"""`python -m bench.rate_profile [--rate R] [--seconds S] [--top N] [--out DIR]`: where each
service of the mesh as deployed spends its CPU under a steady open-loop rate.

Starts the mesh as `tzurot up` runs it (`bench.deployed`), drives turns at `--rate` per
second for `--seconds`, and meanwhile samples every service process with py-spy (a dev
dependency; it attaches to a running process, so nothing in the services changes). Prints
each process's CPU per turn and, per service, the functions with the most samples: "self"
(the sampled line was in that function) and "total" (anywhere on the stack), the share of
that process's samples. The raw stacks stay in `--out` (py-spy's collapsed format, one
file per service) for a flame graph.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]

from bench.deployed import (
    SERVICES,
    Deployed,
    bot_chat,
    children,
    deployed_mesh,
    idle,
    postmaster,
    process_cpu,
    threads_cpu,
)
from bench.load import ProviderClock, at_rate, conversations
from bench.results import summarise

USERS = 50


def collapsed_counts(path: Path) -> tuple[Counter[str], Counter[str], int]:
    """(self samples, total samples, all samples) per frame of a py-spy raw file."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        samples += count
        own[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count
    return own, total, samples


def report(path: Path, top: int) -> str:
    own, total, samples = collapsed_counts(path)
    if not samples:
        return "  (no samples)"
    lines = [f"  {samples} samples"]
    for title, counts in (("self", own), ("total", total)):
        lines.append(f"  top {title}:")
        lines += [f"    {100 * n / samples:5.1f}%  {frame}" for frame, n in counts.most_common(top)]
    return "\n".join(lines)


async def _drive(
    deployed: Deployed, rate: float, seconds: float, out: Path
) -> tuple[dict[str, float], int, str]:
    async with bot_chat(deployed, users=USERS, prefix="mesh") as chat:
        await conversations(chat, ProviderClock(), count=USERS, turns_each=2, prefix="mesh")
        await idle(deployed.servers_cpu)
        spies = _start_spies(deployed, seconds, out)
        before = deployed.cpu()
        threads_before = {name: threads_cpu(deployed.pids[name]) for name in SERVICES}
        clients_before = await postgres_cpu_by_client(deployed.postgres_dir)
        step = await at_rate(
            chat, ProviderClock(), per_second=rate, seconds=seconds, users=USERS, prefix="mesh"
        )
        await idle(deployed.servers_cpu)
        after = deployed.cpu()
        threads_after = {name: threads_cpu(deployed.pids[name]) for name in SERVICES}
        clients_after = await postgres_cpu_by_client(deployed.postgres_dir)
        for spy in spies:
            spy.wait(timeout=60)
    turns = len(step.timings) + step.errors
    per_turn = {name: 1000 * (after[name] - before[name]) / max(turns, 1) for name in before}
    for service in SERVICES:
        for thread, used in threads_after[service].items():
            spent = used - threads_before[service].get(thread, 0.0)
            if spent > 0:
                per_turn[f"{service}/{thread}"] = 1000 * spent / max(turns, 1)
    for client, used in clients_after.items():
        spent = used - clients_before.get(client, 0.0)
        per_turn[f"postgres for {client}"] = 1000 * spent / max(turns, 1)
    latency = summarise("", [t.whole_ms for t in step.timings] or [0.0])
    summary = (
        f"{turns} turns at {rate:g}/s: p50 {latency.p50:.0f} ms, p99 {latency.p99:.0f} ms, "
        f"errors {step.errors}"
    )
    return per_turn, turns, summary


def _start_spies(deployed: Deployed, seconds: float, out: Path) -> list[subprocess.Popen[bytes]]:
    """py-spy recording each service for `seconds` into `out`/<service>.txt."""
    return [
        subprocess.Popen(  # noqa: S603 - the venv's py-spy on our own children
            [
                _py_spy(),
                "record",
                "--pid",
                str(deployed.pids[name]),
                "--duration",
                str(round(seconds)),
                "--format",
                "raw",
                "--nonblocking",
                "--function",
                "--output",
                str(out / f"{name}.txt"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name in SERVICES
    ]


async def postgres_cpu_by_client(data_dir: Path) -> dict[str, float]:
    """CPU seconds of Postgres's processes: client backends by their application_name, the
    others by their kind (autovacuum, walwriter, ...), the postmaster with the children it
    has reaped ("exited": autovacuum workers, closed connections)."""
    connection = await asyncpg.connect(host=str(data_dir), user="postgres", database="postgres")
    try:
        rows = await connection.fetch(
            "select pid, coalesce(nullif(application_name, ''), backend_type) as name "
            "from pg_stat_activity where pid <> pg_backend_pid()"
        )
        sessions = await connection.fetchval("select sum(sessions) from pg_stat_database")
    finally:
        await connection.close()
    server = postmaster(data_dir)
    mine = process_cpu(server)
    seconds: dict[str, float] = {
        "postmaster": mine,
        "exited": process_cpu(server, with_children=True, live_children=False) - mine,
        "sessions opened (count, not seconds)": float(sessions or 0),
    }
    named = set()
    for row in rows:
        with contextlib.suppress(OSError):
            seconds[row["name"]] = seconds.get(row["name"], 0.0) + process_cpu(row["pid"])
            named.add(row["pid"])
    for child in children(server):
        if child not in named:
            with contextlib.suppress(OSError):
                seconds["other"] = seconds.get("other", 0.0) + process_cpu(child)
    return seconds


def _py_spy() -> str:
    return str(Path(sys.executable).parent / "py-spy")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.rate_profile")
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="tzprofile-"))
    out.mkdir(parents=True, exist_ok=True)
    with deployed_mesh() as deployed:
        per_turn, _, summary = asyncio.run(_drive(deployed, args.rate, args.seconds, out))
    print(summary, f"(load average {' '.join(f'{x:.1f}' for x in os.getloadavg())})")
    processes = {k: v for k, v in per_turn.items() if "/" not in k and " for " not in k}
    print(
        "CPU ms per turn: "
        + ", ".join(f"{name} {ms:.1f}" for name, ms in processes.items())
        + f"; all but the driver {sum(v for k, v in processes.items() if k != 'driver'):.1f}"
    )
    print(
        "  of which: "
        + ", ".join(f"{name} {ms:.1f}" for name, ms in per_turn.items() if name not in processes)
    )
    for name in SERVICES:
        print(f"\n{name} ({out / f'{name}.txt'}):")
        print(report(out / f"{name}.txt", args.top))


if __name__ == "__main__":
    main()
