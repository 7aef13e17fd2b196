"""Figure 2: sustained messages per second through the mesh with turn p99 under 100 ms.

Open loop (a new turn every 1/rate seconds whatever the latency, over 50 users and
channels), stepping the rate up until p99 passes 100 ms, turns fail, or the mesh cannot
keep the rate; the floor is stepped the same way for comparison. Goal: ≥ 100/s.
"""

from __future__ import annotations

import asyncio

from bench.env import FLOOR, MESH, bench_env
from bench.load import Chat, ProviderClock, RateStep, at_rate, conversations
from bench.results import Figure, summarise

P99_LIMIT_MS = 100.0
USERS = 50


def run(quick: bool) -> list[Figure]:
    rates, seconds = ([10, 20, 40], 2.0) if quick else ([10, 20, 30, 40, 60, 80, 100, 130], 8.0)
    return asyncio.run(_run(rates, seconds))


async def _run(rates: list[int], seconds: float) -> list[Figure]:
    figures = []
    async with bench_env(USERS) as env:
        for side, chat in ((MESH, env.grpc), (FLOOR, env.floor)):
            await conversations(chat, env.clock, count=USERS, turns_each=1, prefix=side)
            figures.append(await _sweep(side, chat, env.clock, rates, seconds))
    return figures


async def _sweep(
    side: str, chat: Chat, clock: ProviderClock, rates: list[int], seconds: float
) -> Figure:
    best: RateStep | None = None
    steps: list[str] = []
    for rate in rates:
        step = await at_rate(
            chat, clock, per_second=rate, seconds=seconds, users=USERS, prefix=side
        )
        p99 = summarise("", [t.whole_ms for t in step.timings]).p99 if step.timings else 1e9
        steps.append(f"{rate}/s:p99={p99:.0f}ms,got={step.achieved_per_s:.0f}/s,err={step.errors}")
        if p99 > P99_LIMIT_MS or step.errors or step.achieved_per_s < 0.9 * rate:
            break
        best = step
    timings = best.timings if best else []
    figure = summarise(f"fig2 sustained rate, {side}", [t.whole_ms for t in timings] or [0.0])
    return Figure(
        **{
            **figure.__dict__,
            "extra": {
                "msgs_per_s": round(best.achieved_per_s, 1) if best else 0,
                "goal": ">= 100/s with p99 < 100 ms" if side == MESH else "",
                "steps": " ".join(steps),
            },
        }
    )
