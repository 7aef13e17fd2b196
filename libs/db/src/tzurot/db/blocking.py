"""Run a coroutine to completion from synchronous code, inside or outside an event loop.

Alembic commands and the local-database helpers are synchronous, yet callers such as
`tzurot up` invoke them from a running loop where `asyncio.run` is refused; there the
coroutine runs on its own loop in a worker thread while the caller blocks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def run_blocking(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Returns `asyncio.run(make())`, in a worker thread when this thread runs a loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tzurot-db") as pool:
        return pool.submit(lambda: asyncio.run(make())).result()
