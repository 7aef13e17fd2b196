"""Reading an uploaded document (a card, a lorebook, a shapes.inc backup) and writing a
lorebook export, one at a time in the process, on a worker thread; a voice clone, whose
samples (up to 25 of 10 MiB) are read and sent on, takes the same slot (`document_slot`), and
gives it back as soon as they are sent.

Each costs many times the document's size while it runs (a 2 MB lorebook of tiny extension
values some 60 MB, a 64 MB shapes.inc history hundreds), and the gateway's memory limit is
512 MiB: two or three at once, from any users, could get it killed, and every reply in flight
with it. So they queue for one slot (`MAX_AT_ONCE`); each waits only for the ones before it,
seconds at most, and the event loop serves everything else meanwhile.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import ParamSpec, TypeVar

MAX_AT_ONCE = 1

_P = ParamSpec("_P")
_T = TypeVar("_T")
_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)
"""The slot of each event loop (one in the gateway; a test's own loop gets its own)."""


def _slot() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    slot = _slots.get(loop)
    if slot is None:
        slot = _slots[loop] = asyncio.Semaphore(MAX_AT_ONCE)
    return slot


async def run_document_work(work: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """`work(*args, **kwargs)` on a worker thread once the process's slot is free."""
    async with _slot():
        return await asyncio.to_thread(work, *args, **kwargs)


class HeldSlot:
    """The slot, held by a `document_slot` block until it ends or `release` gives it back."""

    def __init__(self, slot: asyncio.Semaphore) -> None:
        self._slot: asyncio.Semaphore | None = slot

    def release(self) -> None:
        """Gives the slot back before the block ends (the large thing held is freed); once."""
        if self._slot is not None:
            slot, self._slot = self._slot, None
            slot.release()


@asynccontextmanager
async def document_slot() -> AsyncIterator[HeldSlot]:
    """The process's slot, held over async work as large as a document's (a voice clone's
    samples, from reading them to the clone's answer). Wait for it holding nothing scarce (a
    pool connection: the queue would starve the pool). Not reentrant: never call
    run_document_work inside it."""
    slot = _slot()
    await slot.acquire()
    held = HeldSlot(slot)
    try:
        yield held
    finally:
        held.release()
