"""What the benches timing a piece's CPU inside real turns share (`bench.gateway_cpu`,
`bench.direct_cpu`, `bench.convert_cpu`, `bench.log_cpu`, `bench.sdk_cpu`): one conversation
through the in-process mesh, warmed up, then rounds of turns; an awaitable that counts the
thread CPU of each resumption of another; and their command line (`--turns`, `--rounds`).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Generator
from contextlib import asynccontextmanager
from typing import Any

from bench.env import MESH, bench_env
from bench.load import conversations


class ThreadCpu:
    """Awaits `inner`, adding this thread's CPU of each of its resumptions to `spent[key]`
    (what it awaits inside counts; the time it waits does not)."""

    def __init__(self, inner: Awaitable[Any], spent: dict[str, float], key: str) -> None:
        self._inner, self._spent, self._key = inner, spent, key

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
                self._spent[self._key] += time.thread_time() - started
            try:
                value, error = (yield yielded), None
            except BaseException as exc:  # thrown in by the loop (cancellation): pass it on
                value, error = None, exc


RunTurns = Callable[[int], Awaitable[float]]
"""Runs that many more turns of the conversation; returns the process's CPU a turn, in ms."""


@asynccontextmanager
async def warmed_conversation(
    warm_up_turns: int, *, ready: Callable[[], object] | None = None
) -> AsyncIterator[RunTurns]:
    """The in-process mesh (one user) after `warm_up_turns` turns of one conversation;
    `ready` is called once the mesh is up, before the warm-up (instrumenting what the mesh
    configures as it starts, e.g. its logging)."""
    async with bench_env(1) as env:
        if ready is not None:
            ready()

        async def run_turns(turns: int) -> float:
            started = time.process_time()
            await conversations(env.grpc, env.clock, count=1, turns_each=turns, prefix=MESH)
            return (time.process_time() - started) * 1000 / turns

        await run_turns(warm_up_turns)
        yield run_turns


def turn_parser(prog: str, *, turns: int = 40, rounds: int = 3) -> argparse.ArgumentParser:
    """The command line of a bench timing a piece inside turns: `--turns N` a round,
    `--rounds R`."""
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--turns", type=int, default=turns)
    parser.add_argument("--rounds", type=int, default=rounds)
    return parser


def run_rounds(
    prog: str,
    run: Callable[[int, int], Coroutine[Any, Any, object]],
    *,
    turns: int = 40,
    rounds: int = 3,
) -> None:
    """A bench's `main`: parses `turn_parser`'s command line and runs `run(turns, rounds)`."""
    args = turn_parser(prog, turns=turns, rounds=rounds).parse_args()
    asyncio.run(run(args.turns, args.rounds))
