"""`python -m bench.log_cpu [--turns N] [--rounds R] [--pieces]`: a log line's CPU inside turns.

Sums this thread's CPU (`time.thread_time`) of every structlog call the services make during
turns of one conversation through the in-process mesh (the bound logger's `info(...)` and its
siblings: binding the lazy proxy, the processors, rendering and the write to stderr, which
`bench.env` points at /dev/null), after 10 turns to warm up; prints µs a written line, lines a
turn and ms a turn per round, and the process's CPU a turn beside it. Calls a level filter drops
(the access line of health checks at INFO) are counted apart. Stdlib records (grpc, asyncio…)
written through the same pipeline are timed apart (`Logger.callHandlers`).

`--pieces` also times each processor and the write (adds its own overhead: read the pieces
against each other, not against the total of a run without it).
Loop timings understate what a piece costs inside turns (PERFORMANCE.md, 7 Dec 2026 12:30):
compare before and after in the same minutes (the before from a copy of the old modules put
first on PYTHONPATH).
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

import structlog

from bench.turn_cpu import turn_parser, warmed_conversation
from tzurot.runtime import logging as tz_logging

_LEVELS = ("debug", "info", "warning", "warn", "error", "exception", "critical", "fatal", "msg")
_spent: dict[str, float] = {"cpu": 0.0, "dropped_cpu": 0.0, "stdlib_cpu": 0.0}
_counts: Counter[str] = Counter()
_pieces: defaultdict[str, float] = defaultdict(float)
_depth = [0]


def _timed_call(function: Callable[..., Any], level: str) -> Callable[..., Any]:
    """`function` (a bound logger's level method) adding its thread CPU to `_spent`."""
    written = level not in ("debug", "msg")  # INFO and above pass the bench's INFO filter

    def timed(*args: Any, **kwargs: Any) -> Any:
        if _depth[0]:  # exception() calls error(): count the outer call only
            return function(*args, **kwargs)
        _depth[0] += 1
        started = time.thread_time()
        try:
            return function(*args, **kwargs)
        finally:
            spent = time.thread_time() - started
            _depth[0] -= 1
            if written:
                _spent["cpu"] += spent
                _counts["lines"] += 1
            else:
                _spent["dropped_cpu"] += spent
                _counts["dropped"] += 1

    return timed


def _instrument() -> None:
    """Times every level method of the configured bound logger class, the lazy proxy's bind
    (each `log.info` on a module-level logger binds one), and stdlib records' handlers."""
    bound_class = structlog.get_config()["wrapper_class"]
    for level in _LEVELS:
        if hasattr(bound_class, level):
            setattr(bound_class, level, _timed_call(getattr(bound_class, level), level))
    proxy = structlog._config.BoundLoggerLazyProxy
    getattr_ = proxy.__getattr__

    def timed_getattr(self: Any, name: str) -> Any:
        started = time.thread_time()
        try:
            return getattr_(self, name)
        finally:
            _spent["bind_cpu"] = _spent.get("bind_cpu", 0.0) + time.thread_time() - started

    proxy.__getattr__ = timed_getattr  # type: ignore[method-assign]
    call_handlers = logging.Logger.callHandlers

    def timed_handlers(self: logging.Logger, record: logging.LogRecord) -> None:
        started = time.thread_time()
        try:
            call_handlers(self, record)
        finally:
            _spent["stdlib_cpu"] += time.thread_time() - started
            _counts["stdlib"] += 1

    logging.Logger.callHandlers = timed_handlers  # type: ignore[method-assign]


def _instrument_pieces() -> None:
    """Times each configured processor and the stderr write, by name."""
    config = structlog.get_config()
    processors = config["processors"]

    def piece(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                _pieces[name] += time.thread_time() - started

        return timed

    named = []
    for processor in processors:
        name = getattr(processor, "__qualname__", None) or type(processor).__name__
        named.append(piece(name, processor))
    processors[:] = named
    writer = tz_logging._StderrLogger
    write = piece("write", writer.msg)
    for level in _LEVELS:
        setattr(writer, level, write)


async def _run(turns: int, rounds: int, pieces: bool) -> None:
    per_line, per_turn = [], []

    def instrument() -> None:  # once the mesh has configured its logging
        _instrument()
        if pieces:
            _instrument_pieces()

    async with warmed_conversation(10, ready=instrument) as run_turns:
        for _ in range(rounds):
            for key in _spent:
                _spent[key] = 0.0
            _counts.clear()
            _pieces.clear()
            process_ms = await run_turns(turns)
            lines = _counts["lines"]
            whole = _spent["cpu"] + _spent.get("bind_cpu", 0.0)
            us = whole * 1e6 / max(1, lines)
            ms = (whole + _spent["dropped_cpu"] + _spent["stdlib_cpu"]) * 1000 / turns
            per_line.append(us)
            per_turn.append(ms)
            print(
                f"log {us:6.1f} µs/line  {lines / turns:4.1f} lines/turn  "
                f"(bind {_spent.get('bind_cpu', 0.0) * 1e6 / max(1, lines):5.1f} µs/line; "
                f"filtered out {_counts['dropped'] / turns:4.1f}/turn "
                f"{_spent['dropped_cpu'] * 1e6 / max(1, _counts['dropped']):4.1f} µs; "
                f"stdlib {_counts['stdlib'] / turns:4.1f}/turn "
                f"{_spent['stdlib_cpu'] * 1e6 / max(1, _counts['stdlib']):5.1f} µs)  "
                f"all logging {ms:5.2f} ms/turn  (process {process_ms:5.1f} ms/turn)",
                flush=True,
            )
            if pieces:
                print(
                    "  pieces µs/line: "
                    + ", ".join(
                        f"{name} {spent * 1e6 / max(1, lines):.1f}"
                        for name, spent in _pieces.items()
                    ),
                    flush=True,
                )
    print(
        f"median {statistics.median(per_line):6.1f} µs/line  "
        f"{statistics.median(per_turn):5.2f} ms/turn of logging"
    )


def main() -> None:
    parser = turn_parser("python -m bench.log_cpu")
    parser.add_argument("--pieces", action="store_true", help="time each processor too")
    args = parser.parse_args()
    asyncio.run(_run(args.turns, args.rounds, args.pieces))


if __name__ == "__main__":
    main()
