"""Showing an answer as it streams: post, edit at a rate Discord allows, then finalise.

The posted messages always mirror `split_message(text)`: piece i is message i. While chunks
arrive the pieces are synced at most every `interval()` seconds (the webhook's cadence); an
intermediate sync Discord rate limits (429) is skipped and reported to `on_limited`, and the
final sync waits out `retry_after` and tries again, so the final text always lands. `finish`
returns the message ids, in order, for `ConfirmDelivery`; `message_ids` is what was posted so
far (what was delivered, when Discord refuses a later request).

`show_status` adds a short line under what the last message shows (the answer cut short by a
restart, being asked for again): it is no piece of the text, so the next sync, whatever text
it brings (the answer taken up again, a replayed one, an error), edits it away, and `finish`
never leaves it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import discord

from tzurot.bot.splitting import DISCORD_LIMIT, split_message

_FENCE_CLOSE = "\n```"
"""Closes a code block a half answer ends inside, before a status line under it."""
Send = Callable[[str], Awaitable[int]]
Edit = Callable[[int, str], Awaitable[None]]
Delete = Callable[[int], Awaitable[None]]
FINAL_ATTEMPTS = 5


def retry_after(exc: discord.HTTPException) -> float:
    """Discord's `Retry-After` (seconds) of a 429."""
    raw = exc.response.headers.get("Retry-After") if exc.response is not None else None
    try:
        return max(0.0, float(raw)) if raw else 1.0
    except ValueError:
        return 1.0


class StreamedAnswer:
    def __init__(
        self,
        send: Send,
        edit: Edit,
        delete: Delete,
        *,
        interval: float | Callable[[], float],
        prefix: str = "",
        clock: Callable[[], float] = time.monotonic,
        on_limited: Callable[[float], None] | None = None,
        posted: list[tuple[int, str]] | None = None,
    ) -> None:
        """`posted`: messages already showing (part of) the answer, as (id, text), which
        the next sync edits (an answer finished after its bot restarted)."""
        self._send, self._edit, self._delete = send, edit, delete
        self._interval = interval if callable(interval) else (lambda: float(interval))
        self._prefix, self._clock = prefix, clock
        self._on_limited = on_limited
        self._posted: list[tuple[int, str]] = list(posted or [])
        self._last_sync: float | None = None
        self.edits = 0

    @property
    def message_ids(self) -> list[int]:
        return [message_id for message_id, _ in self._posted]

    async def update(self, text: str) -> None:
        """The text so far; synced only when the last sync is `interval()` old."""
        now = self._clock()
        if self._last_sync is not None and now - self._last_sync < self._interval():
            return
        if text.strip():
            self._last_sync = now
            try:
                await self._sync(text)
            except discord.HTTPException as exc:
                if exc.status != 429:
                    raise
                wait = retry_after(exc)
                self._last_sync = now + wait  # skip this one; the next sync carries the text
                if self._on_limited is not None:
                    self._on_limited(wait)

    async def show_status(self, line: str) -> bool:
        """Shows `line` under the last message posted (its text cut to make room), once the
        edit interval since the last sync has passed; whether it shows. Nothing posted yet:
        nothing to say it under. A rate limit (429) skips it, as an intermediate sync is
        skipped; another refusal is raised."""
        if not self._posted:
            return False
        if self._last_sync is not None:
            await asyncio.sleep(max(0.0, self._last_sync + self._interval() - self._clock()))
        message_id, shown = self._posted[-1]
        bare = shown.removesuffix(f"\n{line}").removesuffix(_FENCE_CLOSE)  # shown already
        kept = bare[: DISCORD_LIMIT - len(line) - len(_FENCE_CLOSE) - 1]
        if kept.count("```") % 2:  # inside a code block: closed, or the line shows as code
            kept += _FENCE_CLOSE
        text = f"{kept}\n{line}"
        if text == shown:
            return True
        self._last_sync = self._clock()
        try:
            await self._edit(message_id, text)
        except discord.HTTPException as exc:
            if exc.status != 429:
                raise
            if self._on_limited is not None:
                self._on_limited(retry_after(exc))
            return False
        self.edits += 1
        self._posted[-1] = (message_id, text)
        return True

    async def finish(self, text: str) -> list[int]:
        for attempt in range(1, FINAL_ATTEMPTS + 1):
            try:
                await self._sync(text)
                break
            except discord.HTTPException as exc:
                if exc.status != 429 or attempt == FINAL_ATTEMPTS:
                    raise
                wait = retry_after(exc)
                if self._on_limited is not None:
                    self._on_limited(wait)
                await asyncio.sleep(wait)
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
            message_id, _ = self._posted[-1]
            await self._delete(message_id)
            self._posted.pop()
