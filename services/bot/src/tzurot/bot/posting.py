"""Showing an answer as it streams: post, edit at a rate Discord allows, then finalise.

The posted messages always mirror `split_message(text)`: piece i is message i. While chunks
arrive the pieces are synced at most every `interval` seconds; `finish` syncs the final text
and returns the message ids, in order, for `ConfirmDelivery`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from tzurot.bot.splitting import split_message

Send = Callable[[str], Awaitable[int]]
Edit = Callable[[int, str], Awaitable[None]]
Delete = Callable[[int], Awaitable[None]]


class StreamedAnswer:
    def __init__(
        self,
        send: Send,
        edit: Edit,
        delete: Delete,
        *,
        interval: float,
        prefix: str = "",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._send, self._edit, self._delete = send, edit, delete
        self._interval, self._prefix, self._clock = interval, prefix, clock
        self._posted: list[tuple[int, str]] = []
        self._last_sync: float | None = None
        self.edits = 0

    @property
    def message_ids(self) -> list[int]:
        return [message_id for message_id, _ in self._posted]

    async def update(self, text: str) -> None:
        """The text so far; synced only when the last sync is `interval` old."""
        now = self._clock()
        if self._last_sync is not None and now - self._last_sync < self._interval:
            return
        if text.strip():
            self._last_sync = now
            await self._sync(text)

    async def finish(self, text: str) -> list[int]:
        await self._sync(text)
        return self.message_ids

    async def _sync(self, text: str) -> None:
        pieces = split_message(self._prefix + text) if text.strip() else []
        for index, piece in enumerate(pieces):
            if index < len(self._posted):
                message_id, shown = self._posted[index]
                if shown != piece:
                    await self._edit(message_id, piece)
                    self.edits += 1
                    self._posted[index] = (message_id, piece)
            else:
                self._posted.append((await self._send(piece), piece))
        while len(self._posted) > len(pieces):
            message_id, _ = self._posted.pop()
            await self._delete(message_id)
