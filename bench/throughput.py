"""Figure 2: sustained messages per second through the mesh with turn p99 under 100 ms.

Open loop (`load.at_rate`: a new turn every 1/rate seconds whatever the latency, over 50
users and channels; a turn late to start counts its lag in its latency), stepping the rate
up until p99 passes 100 ms, a turn fails, or the driver cannot keep the rate. Each step
runs a warm-up (not measured) and then the measured window; between steps the process is
let go idle (memory's formation worker drains what the step left), so each step starts
from the same state. The floor (the same domain objects in-process, long-term memory
included) is stepped the same way. Goal (issue 16): the mesh ≥ 50/s.

`python -m bench.throughput [--quick] [--rates 10 20 …] [--seconds S]` runs it alone.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from bench.env import FLOOR, MESH, bench_env
from bench.load import Chat, ProviderClock, RateStep, at_rate, conversations
from bench.results import Figure, goal, summarise

P99_LIMIT_MS = 100.0
USERS = 50
GOAL_PER_S = 50
QUICK = ([10, 20, 30, 40, 50, 60, 80], 3.0, 1.0)
FULL = ([10, 20, 30, 40, 50, 60, 70, 80, 100, 130], 8.0, 2.0)
"""(rates, measured seconds per step, warm-up seconds per step)."""


def run(quick: bool) -> list[Figure]:
    rates, seconds, warmup = QUICK if quick else FULL
    return asyncio.run(_run(rates, seconds, warmup))


async def _run(rates: list[int], seconds: float, warmup: float) -> list[Figure]:
    figures = []
    async with bench_env(USERS) as env:
        for side, chat in ((MESH, env.grpc), (FLOOR, env.floor)):
            await conversations(chat, env.clock, count=USERS, turns_each=2, prefix=side)
            await idle()
            figures.append(
                await _sweep(side, chat, env.clock, rates=rates, seconds=seconds, warmup=warmup)
            )
    return [*figures, rate_goal(*figures)]


async def idle(limit_seconds: float = 60.0) -> None:
    """Waits until this process uses under 10 % of a core for half a second (background
    work such as formation done), or `limit_seconds`."""
    deadline = time.monotonic() + limit_seconds
    while time.monotonic() < deadline:
        cpu = time.process_time()
        await asyncio.sleep(0.5)
        if time.process_time() - cpu < 0.05:
            return


def passed(step: RateStep, p99: float) -> bool:
    return p99 < P99_LIMIT_MS and not step.errors and step.offered_per_s >= 0.95 * step.target_per_s


async def _sweep(
    side: str,
    chat: Chat,
    clock: ProviderClock,
    *,
    rates: list[int],
    seconds: float,
    warmup: float,
) -> Figure:
    best: RateStep | None = None
    steps: list[str] = []
    for target in rates:
        step = await at_rate(
            chat,
            clock,
            per_second=target,
            seconds=seconds,
            users=USERS,
            prefix=side,
            warmup_seconds=warmup,
        )
        p99 = summarise("", [t.whole_ms for t in step.timings]).p99 if step.timings else 1e9
        p50 = summarise("", [t.whole_ms for t in step.timings]).p50 if step.timings else 1e9
        steps.append(
            f"{target}/s:n={len(step.timings)},p50={p50:.0f}ms,p99={p99:.0f}ms,"
            f"offered={step.offered_per_s:.0f}/s,err={step.errors}"
        )
        print(f"fig2 {side} {steps[-1]}", flush=True)
        if not passed(step, p99):
            break
        best = step
        await idle()
    timings = best.timings if best else []
    figure = summarise(f"fig2 sustained rate, {side}", [t.whole_ms for t in timings] or [0.0])
    rate = float(best.target_per_s) if best else 0.0
    return Figure(**{**figure.__dict__, "extra": {"msgs_per_s": rate, "steps": " ".join(steps)}})


def rate_goal(mesh: Figure, floor: Figure) -> Figure:
    rate = float(mesh.extra["msgs_per_s"])
    return goal(
        "sustained rate, mesh",
        rate,
        "msg/s",
        f">= {GOAL_PER_S}/s with turn p99 < {P99_LIMIT_MS:.0f} ms",
        rate >= GOAL_PER_S,
        floor_msgs_per_s=floor.extra["msgs_per_s"],
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.throughput")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rates", type=int, nargs="+")
    parser.add_argument("--seconds", type=float)
    args = parser.parse_args()
    rates, seconds, warmup = QUICK if args.quick else FULL
    figures = asyncio.run(_run(args.rates or rates, args.seconds or seconds, warmup))
    for figure in figures[:2]:
        print(figure.name, figure.extra["msgs_per_s"], "msg/s; p50", f"{figure.p50:.1f} ms")


if __name__ == "__main__":
    main()
