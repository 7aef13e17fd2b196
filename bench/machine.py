"""How fast this machine runs Python: a reference figure printed with every bench run, so
figures taken on different machines (or the same machine on a slower day) can be compared."""

from __future__ import annotations

import time

LOOP = 10_000_000


def reference_loop_seconds(repeats: int = 3) -> float:
    """The least CPU time of `repeats` runs of a 10M-addition Python loop."""
    best = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        total = 0
        for i in range(LOOP):
            total += i
        best = min(best, time.process_time() - started)
    return best
