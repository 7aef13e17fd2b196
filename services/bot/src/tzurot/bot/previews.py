"""Telling the gateway which messages show an answer while it streams (NoteAnswerPreview).

If this bot dies before ConfirmDelivery, the gateway has the restarted bot finish those
messages (tzurot.bot.unfinished) instead of leaving half an answer unexplained. The notes go
in the background, one after another (so the last one sent is the last one kept), and never
hold up the answer; a failed note only loses that rescue.
"""

from __future__ import annotations

import asyncio

from tzurot.bot.gateway_client import GatewayClient


class PreviewNotes:
    """The preview of one answer."""

    def __init__(
        self,
        gateway: GatewayClient,
        pending: set[asyncio.Task[None]],
        *,
        enabled: bool = True,
        reply_header: str = "",
    ) -> None:
        """`pending` holds the notes being sent (strong references, as asyncio wants);
        `enabled` False sends none; `reply_header`: the line the answer's first message
        starts with, noted with the messages (a restarted bot keeps it even when that
        message was deleted meanwhile)."""
        self._gateway = gateway
        self._pending = pending
        self._enabled = enabled
        self._header = reply_header
        self._ids: list[int] = []
        self._last: asyncio.Task[None] | None = None

    def shown(self, job_id: str, message_id: int) -> None:
        self._ids.append(message_id)
        self._note(job_id)

    def gone(self, job_id: str, message_id: int) -> None:
        if message_id in self._ids:
            self._ids.remove(message_id)
            self._note(job_id)

    def closed(self, job_id: str) -> None:
        """An error is shown instead of the answer: nothing for a restarted bot to finish."""
        if self._ids:
            self._ids = []
            self._note(job_id)

    def _note(self, job_id: str) -> None:
        if not job_id or not self._enabled:
            return
        ids, previous = list(self._ids), self._last

        async def note() -> None:
            if previous is not None:
                await asyncio.gather(previous, return_exceptions=True)
            await self._gateway.note_preview(job_id, ids, self._header)

        task = asyncio.create_task(note())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        self._last = task
