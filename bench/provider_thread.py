"""The fake provider on its own thread and event loop, so a figure can leave its CPU out.

The services' CPU per turn is what `bench.cpu` reports; the fake provider (aiohttp parsing
each request, building and writing the SSE answer) stands in for OpenRouter and is not one
of them. On its own thread its CPU is read from that thread's clock and taken off.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from tzurot.testing.fake_provider import FakeProvider


@dataclass
class ProviderThread:
    provider: FakeProvider
    thread: threading.Thread

    def cpu_seconds(self) -> float:
        """CPU time the provider's thread has used so far."""
        assert self.thread.ident is not None
        return time.clock_gettime(time.pthread_getcpuclockid(self.thread.ident))


@contextmanager
def provider_thread(provider: FakeProvider) -> Iterator[ProviderThread]:
    """Starts `provider` on a new thread with its own event loop; stops it on exit."""
    loop = asyncio.new_event_loop()
    started = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(provider.start())
        started.set()
        loop.run_forever()
        loop.run_until_complete(provider.stop())
        loop.close()

    thread = threading.Thread(target=run, name="fake-provider", daemon=True)
    thread.start()
    if not started.wait(30):
        raise RuntimeError("the fake provider did not start")
    try:
        yield ProviderThread(provider, thread)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
