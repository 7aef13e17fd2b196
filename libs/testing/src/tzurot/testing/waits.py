"""Waiting in a test for something to have happened, not for a time to have passed.

A fixed sleep assumes the other task got there meanwhile; on a loaded machine (CI's two cores)
it sometimes did not. `until` polls a condition instead, bounded by a generous deadline that
fails saying what never happened.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

T = TypeVar("T")


@overload
async def until(
    condition: Callable[[], Awaitable[T]], what: str, *, within: float = ..., every: float = ...
) -> T: ...
@overload
async def until(
    condition: Callable[[], T], what: str, *, within: float = ..., every: float = ...
) -> T: ...
async def until(
    condition: Callable[[], Any], what: str, *, within: float = 10.0, every: float = 0.01
) -> Any:
    """`condition()`'s first truthy value (awaited if it is a coroutine), polled every
    `every` seconds; AssertionError naming `what` if there is none within `within` s."""
    deadline = time.monotonic() + within
    while True:
        found = condition()
        if inspect.isawaitable(found):
            found = await found
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened within {within} s: {what}")
        await asyncio.sleep(every)
