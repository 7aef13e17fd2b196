"""Figure 2: sustained messages per second with turn p99 under 100 ms, the mesh as deployed.

**The mesh as deployed** (`bench.deployed`): `tzurot up` runs gateway, inference, memory and
keyvault as processes of their own (as `make run` and the Kubernetes manifests do), the
instant fake provider runs in another, and this process is the load driver: it calls
gateway's Generate and ConfirmDelivery over mTLS with the bot's certificate, as the bot
does. Issue 16's goal (≥ 50/s) is read on this side.

**The floor** is the same domain objects in one process without gRPC (`bench.floor`,
long-term memory included), with the driver on the same event loop: it cannot be split
into processes without adding a transport, so it is capped by one core (plus Postgres on
the other) where the deployed mesh can use both. `--in-process` also sweeps the mesh with
every service and the driver in this one process (the figure as it was before issue 16's
rate work), which shows what the process split is worth.

Each sweep is open loop (`load.at_rate`: a new turn every 1/rate seconds whatever the
latency, over 50 users and channels; a turn late to start counts its lag in its latency).
Rates step up until p99 passes 100 ms, a turn fails, or the driver cannot keep the rate
(`sweep`). Each step runs a warm-up (not measured) and then the measured window; after it
the processes are let go idle (memory's formation worker catches up on what the step left),
so each step starts from the same state, and the CPU each process used over the step,
catch-up included, is divided by the step's turns: CPU per turn per process, from /proc.

`python -m bench.throughput [--quick] [--rates 10 20 …] [--seconds S] [--in-process]
[--no-floor]` runs it alone.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from bench.deployed import SERVERS, bot_chat, deployed_mesh, idle, postmaster, process_cpu
from bench.env import FLOOR, MESH, bench_env
from bench.load import Chat, ProviderClock, at_rate, conversations
from bench.results import Figure, goal, summarise

P99_LIMIT_MS = 100.0
USERS = 50
GOAL_PER_S = 50
QUICK = ([10, 20, 25, 30, 35, 40, 45, 50, 60, 80], 10.0, 1.0)
FULL = ([10, 20, 25, 30, 35, 40, 45, 50, 60, 70, 80, 100, 130], 10.0, 2.0)
"""(rates, measured seconds per step, warm-up seconds per step). At least 100 turns a step:
of 30 turns (a 3 s step at 10/s) the p99 was the slowest turn, one stall's figure. Steps
of 5/s from 20 to 50, where this machine's knee lies (its last step to pass read 20 or 30
at steps of 10, by the hour)."""
DEPLOYED = "mesh as deployed (a process per service)"
IN_PROCESS = "mesh in one process"
FLOOR_SIDE = "floor (one process, no gRPC)"


@dataclass(frozen=True)
class Step:
    """One rate of a sweep: the measured turns' latencies and what the processes spent."""

    target_per_s: float
    whole_ms: list[float]
    offered_per_s: float
    errors: int
    cpu_ms_per_turn: Mapping[str, float] = field(default_factory=dict)
    """CPU per turn of each process over the step (warm-up and catch-up included)."""
    load: float = 0.0
    """The machine's 1-minute load average at the step's end."""

    @property
    def p50(self) -> float:
        return summarise("", self.whole_ms).p50 if self.whole_ms else float("inf")

    @property
    def p99(self) -> float:
        return summarise("", self.whole_ms).p99 if self.whole_ms else float("inf")

    @property
    def passed(self) -> bool:
        """p99 under the limit, no turn failed, and the driver kept the rate."""
        return (
            self.p99 < P99_LIMIT_MS
            and not self.errors
            and self.offered_per_s >= 0.95 * self.target_per_s
        )

    def describe(self) -> str:
        cpu = sum(self.cpu_ms_per_turn.values())
        return (
            f"{self.target_per_s:g}/s:n={len(self.whole_ms)},p50={self.p50:.0f}ms,"
            f"p99={self.p99:.0f}ms,offered={self.offered_per_s:.0f}/s,err={self.errors},"
            f"cpu={cpu:.0f}ms/turn,load={self.load:.1f}"
        )


@dataclass(frozen=True)
class Sweep:
    steps: list[Step]

    @property
    def best(self) -> Step | None:
        """The highest rate that passed (steps stop at the first that does not)."""
        passed = [step for step in self.steps if step.passed]
        return max(passed, key=lambda s: s.target_per_s) if passed else None

    @property
    def rate(self) -> float:
        return self.best.target_per_s if self.best else 0.0


async def sweep(rates: Sequence[float], step: Callable[[float], Awaitable[Step]]) -> Sweep:
    """Runs `step` at each rate in ascending order until one does not pass."""
    steps: list[Step] = []
    for rate in sorted(rates):
        steps.append(await step(rate))
        if not steps[-1].passed:
            break
    return Sweep(steps)


CpuReader = Callable[[], dict[str, float]]


async def measured_step(
    chat: Chat,
    cpu: CpuReader,
    *,
    rate: float,
    seconds: float,
    warmup: float,
    prefix: str,
    servers: Callable[[], float],
) -> Step:
    """One open-loop step at `rate`, then idle until `servers` (CPU seconds of the
    processes that serve) is quiet; CPU per turn from `cpu` before and after."""
    before = cpu()
    result = await at_rate(
        chat,
        ProviderClock(),
        per_second=rate,
        seconds=seconds,
        users=USERS,
        prefix=prefix,
        warmup_seconds=warmup,
    )
    await idle(servers)
    after = cpu()
    turns = round(rate * warmup) + max(1, round(rate * seconds))
    step = Step(
        target_per_s=rate,
        whole_ms=[t.whole_ms for t in result.timings],
        offered_per_s=result.offered_per_s,
        errors=result.errors,
        cpu_ms_per_turn={k: 1000 * (after[k] - before[k]) / turns for k in before},
        load=os.getloadavg()[0],
    )
    print(f"fig2 {prefix} {step.describe()}", flush=True)
    return step


async def deployed_sweep(rates: Sequence[float], seconds: float, warmup: float) -> Sweep:
    with deployed_mesh() as deployed:
        async with bot_chat(deployed, users=USERS, prefix=MESH) as chat:
            await conversations(chat, ProviderClock(), count=USERS, turns_each=2, prefix=MESH)
            await idle(deployed.servers_cpu)
            return await sweep(
                rates,
                lambda rate: measured_step(
                    chat,
                    deployed.cpu,
                    rate=rate,
                    seconds=seconds,
                    warmup=warmup,
                    prefix=MESH,
                    servers=deployed.servers_cpu,
                ),
            )


async def in_process_sweeps(
    rates: Sequence[float], seconds: float, warmup: float, *, mesh: bool
) -> dict[str, Sweep]:
    """The floor (and with `mesh`, the in-process mesh) in this process with the driver."""
    sweeps = {}
    async with bench_env(USERS) as env:
        pg = postmaster(env.postgres_dir)

        def cpu() -> dict[str, float]:
            return {
                "this process": time.process_time(),
                "postgres": process_cpu(pg, with_children=True),
            }

        def servers() -> float:
            return sum(cpu().values())

        sides: list[tuple[str, str, Chat]] = [(FLOOR_SIDE, FLOOR, env.floor)]
        if mesh:
            sides.insert(0, (IN_PROCESS, MESH, env.grpc))
        for name, prefix, chat in sides:
            await conversations(chat, env.clock, count=USERS, turns_each=2, prefix=prefix)
            await idle(servers)
            sweeps[name] = await sweep(
                rates,
                lambda rate, chat=chat, prefix=prefix: measured_step(  # type: ignore[misc]
                    chat,
                    cpu,
                    rate=rate,
                    seconds=seconds,
                    warmup=warmup,
                    prefix=prefix,
                    servers=servers,
                ),
            )
    return sweeps


def figure(side: str, result: Sweep) -> Figure:
    """The side's best step (its latencies), its rate, every step, and the CPU per turn of
    each process at the best step (at the first step when none passed)."""
    shown = result.best or (result.steps[0] if result.steps else None)
    timings = result.best.whole_ms if result.best else [0.0]
    summary = summarise(f"fig2 sustained rate, {side}", timings)
    cpu = shown.cpu_ms_per_turn if shown else {}
    return Figure(
        **{
            **summary.__dict__,
            "extra": {
                "msgs_per_s": result.rate,
                "cpu_ms_per_turn": _cpu_text(cpu),
                "load": round(shown.load, 1) if shown else None,
                "steps": " ".join(step.describe() for step in result.steps),
            },
        }
    )


def _cpu_text(cpu: Mapping[str, float]) -> str:
    ordered = [name for name in (*SERVERS, "driver") if name in cpu] + [
        name for name in cpu if name not in SERVERS and name != "driver"
    ]
    parts = [f"{name} {cpu[name]:.1f}" for name in ordered]
    return f"{'; '.join(parts)}; total {sum(cpu.values()):.1f}"


def rate_goal(deployed: Figure, floor: Figure | None) -> Figure:
    rate = float(deployed.extra["msgs_per_s"])
    return goal(
        "sustained rate, mesh as deployed (a process per service)",
        rate,
        "msg/s",
        f">= {GOAL_PER_S}/s with turn p99 < {P99_LIMIT_MS:.0f} ms",
        rate >= GOAL_PER_S,
        floor_msgs_per_s=floor.extra["msgs_per_s"] if floor else None,
        cpu_ms_per_turn=deployed.extra["cpu_ms_per_turn"],
        load=deployed.extra["load"],
    )


def measure(
    rates: Sequence[float], seconds: float, warmup: float, *, floor: bool, in_process: bool
) -> list[Figure]:
    figures = [figure(DEPLOYED, asyncio.run(deployed_sweep(rates, seconds, warmup)))]
    if floor or in_process:
        sweeps = asyncio.run(in_process_sweeps(rates, seconds, warmup, mesh=in_process))
        figures += [figure(side, result) for side, result in sweeps.items()]
    floor_figure = next((f for f in figures if FLOOR_SIDE in f.name), None)
    return [*figures, rate_goal(figures[0], floor_figure)]


def run(quick: bool) -> list[Figure]:
    rates, seconds, warmup = QUICK if quick else FULL
    return measure(rates, seconds, warmup, floor=True, in_process=False)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.throughput")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rates", type=float, nargs="+")
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--in-process", action="store_true", help="also the one-process mesh")
    parser.add_argument("--no-floor", action="store_true")
    args = parser.parse_args()
    rates, seconds, warmup = QUICK if args.quick else FULL
    figures = measure(
        args.rates or rates,
        args.seconds or seconds,
        warmup,
        floor=not args.no_floor,
        in_process=args.in_process,
    )
    for each in figures:
        if "msgs_per_s" in each.extra:
            print(
                f"{each.name}: {each.extra['msgs_per_s']:g} msg/s; p50 {each.p50:.1f} ms; "
                f"CPU ms per turn: {each.extra['cpu_ms_per_turn']} (load {each.extra['load']})"
            )


if __name__ == "__main__":
    main()
