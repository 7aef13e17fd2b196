"""`python -m bench.gateway_cpu [--turns N] [--rounds R]`: gateway's own CPU per turn.

Sums this thread's CPU (`time.thread_time`) while `Gateway.generate` and
`Gateway.confirm_delivery` run, one resumption of their coroutines at a time (what they
await inside counts: SQLAlchemy and the driver; the gRPC servicer's conversions and other
services' tasks do not), over turns of one conversation through the in-process mesh.
Load moves it far less than wall time; compare before and after in the same minute.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
from collections.abc import AsyncIterator, Awaitable
from typing import Any

from bench.turn_cpu import ThreadCpu, warmed_conversation
from tzurot.gateway.service import Gateway

_spent = {"generate": 0.0, "confirm": 0.0}


def _timed(inner: Awaitable[Any], key: str) -> ThreadCpu:
    """Awaits `inner`, adding the CPU of each of its resumptions to `_spent[key]`."""
    return ThreadCpu(inner, _spent, key)


class _TimedStream:
    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def __aiter__(self) -> _TimedStream:
        return self

    def __anext__(self) -> Awaitable[Any]:
        return _timed(self._stream.__anext__(), "generate")

    def aclose(self) -> Awaitable[Any]:
        return _timed(self._stream.aclose(), "generate")

    def athrow(self, *args: Any) -> Awaitable[Any]:
        return _timed(self._stream.athrow(*args), "generate")


def _instrument() -> None:
    generate, confirm = Gateway.generate, Gateway.confirm_delivery

    def timed_generate(self: Gateway, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        return _TimedStream(generate(self, *args, **kwargs))

    async def timed_confirm(self: Gateway, *args: Any, **kwargs: Any) -> Any:
        return await _timed(confirm(self, *args, **kwargs), "confirm")

    Gateway.generate = timed_generate  # type: ignore[assignment,method-assign]
    Gateway.confirm_delivery = timed_confirm  # type: ignore[assignment,method-assign]


async def _run(turns: int, rounds: int) -> None:
    _instrument()
    async with warmed_conversation(5) as run_turns:
        totals = []
        for _ in range(rounds):
            _spent.update(generate=0.0, confirm=0.0)
            await run_turns(turns)
            generate_ms = _spent["generate"] * 1000 / turns
            confirm_ms = _spent["confirm"] * 1000 / turns
            totals.append(generate_ms + confirm_ms)
            print(
                f"Generate {generate_ms:5.2f} ms/turn  ConfirmDelivery {confirm_ms:5.2f} ms/turn"
                f"  total {generate_ms + confirm_ms:5.2f}",
                flush=True,
            )
    print(f"median total {statistics.median(totals):5.2f} ms/turn")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.gateway_cpu")
    parser.add_argument("--turns", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(_run(args.turns, args.rounds))


if __name__ == "__main__":
    main()
