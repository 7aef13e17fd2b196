"""Whether a request's body went out whole: what a failed upload's bill depends on.

httpcore hides a write error in the middle of a body (a connection reset while uploading) and
reads the response instead, so the SDK raises a read error, as for a connection dropped once
the whole file was sent. Its trace extension says which it was: `watching_upload` sets a
watch for the calls made inside it, and `trace_uploads` (a request hook of the shared client)
hands each such request's trace to it. A request made outside any watch is left alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import httpx2


class UploadWatch:
    """What the last request sent inside the watch wrote of its body."""

    def __init__(self) -> None:
        self.started = False
        self.sent = False

    @property
    def cut_short(self) -> bool:
        """Its body began to go out and did not end (stalled, or the connection broke)."""
        return self.started and not self.sent

    async def trace(self, event: str, info: dict[str, Any]) -> None:  # httpcore's signature
        if event.endswith(".send_request_headers.started"):  # a new attempt
            self.started = self.sent = False
        elif event.endswith(".send_request_body.started"):
            self.started = True
        elif event.endswith(".send_request_body.complete"):
            self.sent = True


_WATCH: ContextVar[UploadWatch | None] = ContextVar("tzurot_upload_watch", default=None)


@contextmanager
def watching_upload() -> Iterator[UploadWatch]:
    """A watch over the requests this task sends inside the block."""
    watch = UploadWatch()
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
