"""A provider call run beside its reply, with what it may be billed said while it runs.

A reply cut while a helper call is at work (its client cancelled, the gateway's deadline,
inference stopping) can report nothing more, so the call tells, as each attempt's request
is handed to the provider whole (uploads.py), what the provider may bill for it, and takes
that back when the attempt is refused or asked again (nothing billed). `running` runs the
call as a task of its own and yields those notes as they come (every one, also one told as
the call ends), then the call's outcome: the reply says them at once (HelperCallPending),
however long the provider works, and the outcome replaces them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from tzurot.inference.domain import PaidCall

T = TypeVar("T")

Tell = Callable[[PaidCall | None], None]
"""What a call is given to say what it may bill now (None: nothing, taken back)."""


@dataclass(frozen=True)
class Billable:
    """Said while the call runs: `estimate` is what it may bill should the reply be cut now
    (a request the provider had whole); None: taken back (that attempt was refused, or is
    asked again)."""

    estimate: PaidCall | None


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """The call's result."""

    value: T


async def running(
    call: Callable[[Tell], Awaitable[T]],
) -> AsyncGenerator[Billable | Outcome[T], None]:
    """Runs `call`, yielding each Billable it tells, in order, then its Outcome; its error is
    raised. One told as the call ends is yielded too: its outcome goes out only after more
    awaits (this one's end, the reply's way out), and a reply cut among them has only that
    to say what was billed; the outcome replaces it. Closing this ends the call."""
    notes: asyncio.Queue[Billable | None] = asyncio.Queue()
    work = asyncio.ensure_future(call(lambda estimate: notes.put_nowait(Billable(estimate))))
    work.add_done_callback(lambda _: notes.put_nowait(None))
    try:
        while (note := await notes.get()) is not None:
            yield note
        yield Outcome(work.result())
    finally:
        if not work.done():
            work.cancel()
        await asyncio.gather(work, return_exceptions=True)
