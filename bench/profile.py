"""`python -m bench.profile [--side mesh|floor] [--turns N] [--conversations C]`.

Profiles turns with pyinstrument (the whole in-process mesh runs in this process, so one
profile covers gateway, inference, memory and keyvault) and prints the call tree.
"""

from __future__ import annotations

import argparse
import asyncio

from pyinstrument import Profiler

from bench.env import FLOOR, MESH, bench_env
from bench.load import conversations


async def _run(side: str, turns: int, count: int) -> Profiler:
    async with bench_env(count) as env:
        chat = env.grpc if side == MESH else env.floor
        await conversations(chat, env.clock, count=count, turns_each=2, prefix=side)
        profiler = Profiler(async_mode="disabled", interval=0.0005)
        profiler.start()
        await conversations(chat, env.clock, count=count, turns_each=turns, prefix=side)
        profiler.stop()
    return profiler


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile")
    parser.add_argument("--side", choices=(MESH, FLOOR), default=MESH)
    parser.add_argument("--turns", type=int, default=100, help="turns per conversation")
    parser.add_argument("--conversations", type=int, default=1)
    parser.add_argument("--all", action="store_true", help="show library frames too")
    args = parser.parse_args()
    profiler = asyncio.run(_run(args.side, args.turns, args.conversations))
    print(profiler.output_text(unicode=True, color=False, show_all=args.all))


if __name__ == "__main__":
    main()
