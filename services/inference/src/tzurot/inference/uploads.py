"""Whether the client handed a request's body to its socket whole: what a failed upload's
bill depends on.

httpcore hides a write error in the middle of a body (a connection reset while uploading) and
reads the response instead, so the SDK raises a read error (or the error status the server
sent before resetting), as for a connection dropped once the whole file was sent. Its trace
extension says which it was: `watching_upload` sets a watch for the calls made inside it, and
`trace_uploads` (a request hook of the shared client) hands each such request's trace to it.
A request made outside any watch is left alone. A watch may be told (`on_sent`) the moment
a body went out whole: what the provider may bill from then on (transcription.py says so to
the gateway while the call runs).

What this sees is the client's writing, not what the peer received: the body counts as sent
once its last byte is in the kernel's send buffer (which grows to a few MiB) or asyncio's. A
body that fits there (most voice notes) is sent whole at once, and a reset after it is not
seen as cut short, however little of it the peer read. Only a larger body shows a stall or
a reset while the client is still writing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import httpx2


class UploadWatch:
    """What the last request sent inside the watch wrote of its body; `on_sent` is called
    each time one is handed over whole (each attempt)."""

    def __init__(self, on_sent: Callable[[], None] | None = None) -> None:
        self.started = False
        self.sent = False
        self._on_sent = on_sent

    @property
    def cut_short(self) -> bool:
        """Its body began to go to the socket and was not handed over whole (the write
        stalled, or the connection broke while the client was writing)."""
        return self.started and not self.sent

    async def trace(self, event: str, info: dict[str, Any]) -> None:  # httpcore's signature
        if event.endswith(".send_request_headers.started"):  # a new attempt
            self.started = self.sent = False
        elif event.endswith(".send_request_body.started"):
            self.started = True
        elif event.endswith(".send_request_body.complete"):
            self.sent = True
            if self._on_sent is not None:
                self._on_sent()


_WATCH: ContextVar[UploadWatch | None] = ContextVar("tzurot_upload_watch", default=None)


@contextmanager
def watching_upload(on_sent: Callable[[], None] | None = None) -> Iterator[UploadWatch]:
    """A watch over the requests this task sends inside the block (`on_sent`: called as each
    one's body is handed over whole)."""
    watch = UploadWatch(on_sent)
    token = _WATCH.set(watch)
    try:
        yield watch
    finally:
        _WATCH.reset(token)


async def trace_uploads(request: httpx2.Request) -> None:
    """A request hook: a request sent inside `watching_upload` reports its body to it."""
    watch = _WATCH.get()
    if watch is not None:
        request.extensions = {**request.extensions, "trace": watch.trace}


def install(client: httpx2.AsyncClient) -> None:
    """Adds `trace_uploads` to `client`'s request hooks (once)."""
    hooks = client.event_hooks
    if trace_uploads not in hooks["request"]:
        client.event_hooks = {**hooks, "request": [*hooks["request"], trace_uploads]}
