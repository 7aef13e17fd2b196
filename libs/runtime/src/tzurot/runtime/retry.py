"""Retrying an idempotent call across a restart of the service it goes to.

gRPC's native retry policy gives up after ~3 s of backoff; a service restarting under
`tzurot up` or a rolling deploy takes longer. `retry_idempotent` retries UNAVAILABLE (and a
timed-out attempt) with growing pauses within a time budget. Use it only for calls that are
idempotent, such as ConfirmDelivery: a retried one must not do its work twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc

T = TypeVar("T")
RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


async def retry_idempotent(
    call: Callable[[], Awaitable[T]],
    *,
    what: str,
    budget_seconds: float = 30.0,
    first_pause: float = 0.2,
    max_pause: float = 3.0,
) -> T:
    """`call()` until it succeeds, fails for good, or `budget_seconds` have passed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + budget_seconds
    pause = first_pause
    attempt = 1
    while True:
        try:
            return await call()
        except grpc.aio.AioRpcError as exc:
            if exc.code() not in RETRYABLE or loop.time() + pause > deadline:
                raise
            # structlog (and the rich it imports) only when there is something to say: the
            # CLI imports this module on every `tzurot chat -m`, whose start it would double.
            import structlog  # noqa: PLC0415 - lazy: see the comment above

            structlog.get_logger("tzurot.retry").warning(
                "retry", what=what, attempt=attempt, code=exc.code().name
            )
        await asyncio.sleep(pause)
        pause = min(pause * 2, max_pause)
        attempt += 1
