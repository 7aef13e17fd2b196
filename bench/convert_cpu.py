"""`python -m bench.convert_cpu [--turns N] [--rounds R]`: the CPU of a turn's history
conversions and input checks, inside real turns.

Sums this thread's CPU (`time.thread_time`) inside each call of: memory's rows → turns
(`store.stored_turns`), memory's reply context → protobuf (`convert.reply_context`),
inference's protobuf → reply context (`convert.reply_context`), memory's `check_id` and the
edge's `check_storable`; over turns of one conversation through the in-process mesh, after
10 turns to warm up. Prints µs a turn of each, calls a turn, and the process's CPU a turn.
Loop timings understate what a piece costs inside turns (PERFORMANCE.md, 7 Dec 2026 12:30):
compare before and after in the same minutes.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.turn_cpu import run_rounds, warmed_conversation
from tzurot.inference import convert as inference_convert
from tzurot.memory import convert as memory_convert
from tzurot.memory import store as memory_store
from tzurot.memory import validation
from tzurot.runtime import interceptors

_PIECES = {
    "memory rows->domain": (memory_store, "stored_turns"),
    "memory domain->proto": (memory_convert, "reply_context"),
    "inference proto->domain": (inference_convert, "reply_context"),
    "memory check_id": (validation, "check_id"),
    "check_storable": (interceptors, "check_storable"),
}
_cpu = dict.fromkeys(_PIECES, 0.0)
_calls = dict.fromkeys(_PIECES, 0)


def _timed(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.thread_time()
        try:
            return function(*args, **kwargs)
        finally:
            _cpu[name] += time.thread_time() - started
            _calls[name] += 1

    return timed


def _instrument() -> None:
    for name, (module, attribute) in _PIECES.items():
        original = getattr(module, attribute)
        timed = _timed(name, original)
        # Every module that imported it by name (check_id: validation, service, longterm…).
        for loaded in list(sys.modules.values()):
            if getattr(loaded, "__name__", "").startswith("tzurot.") and (
                getattr(loaded, attribute, None) is original
            ):
                setattr(loaded, attribute, timed)


async def _run(turns: int, rounds: int) -> None:
    _instrument()
    per_turn: dict[str, list[float]] = {name: [] for name in _PIECES}
    async with warmed_conversation(10) as run_turns:
        for _ in range(rounds):
            for name in _PIECES:
                _cpu[name], _calls[name] = 0.0, 0
            process_ms = await run_turns(turns)
            parts = []
            for name in _PIECES:
                us = _cpu[name] * 1e6 / turns
                per_turn[name].append(us)
                parts.append(f"{name} {us:6.1f} µs ({_calls[name] / turns:.1f} calls)")
            print("  ".join(parts) + f"  process {process_ms:5.1f} ms/turn", flush=True)
    print(
        "median µs/turn: "
        + "  ".join(f"{n} {statistics.median(v):6.1f}" for n, v in per_turn.items())
    )


def main() -> None:
    run_rounds("python -m bench.convert_cpu", _run)


if __name__ == "__main__":
    main()
