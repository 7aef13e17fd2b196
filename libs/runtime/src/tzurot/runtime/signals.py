"""Signals belong to the main thread: threads started for gRPC never take them.

CPython runs a signal's handler on the main thread, but the kernel gives a process's signal
to any thread that does not block it. One taken by a thread gRPC started (its first channel
starts eight) sets CPython's flag without interrupting the main thread: a main thread blocked
in a read (`input()` at the CLI's prompt) or in the event loop's poll does not see Ctrl-C
until something else wakes it. A thread inherits the signal mask of the thread that starts
it, so blocking the interrupts while gRPC starts its threads leaves them to the main thread.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

INTERRUPTS = frozenset({signal.SIGINT, signal.SIGTERM})


@contextmanager
def threads_without_interrupts() -> Iterator[None]:
    """Threads started in the body block SIGINT and SIGTERM; the calling thread's mask is put
    back afterwards (an interrupt that came meanwhile is delivered then, not lost)."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, INTERRUPTS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
