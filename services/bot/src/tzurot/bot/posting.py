"""Showing an answer as it streams: post, edit at a rate Discord allows, then finalise.

The posted messages always mirror `split_message(text)`, any reasoning's mark taken out
(tzurot.bot.reasoning.unmarked: no answer is taken for a reasoning): piece i is message i.
While chunks arrive the pieces are synced at most every `interval()` seconds (the webhook's
cadence); an intermediate sync Discord rate limits (429) is skipped and reported to
`on_limited`, and the final sync waits out `retry_after` and tries again, so the final text
always lands. `finish` returns the message ids, in order, for `ConfirmDelivery`;
`message_ids` is what was posted so far (what was delivered, when Discord refuses a later
request).

`show_status` adds a short line under what the last message shows (the answer cut short by a
restart, being asked for again): it is no piece of the text, so the next sync, whatever text
it brings (the answer taken up again, a replayed one, an error), edits it away, even a text
the bot thinks is shown already (the edit adding the line may have reached Discord unheard).
A sync that fails while a line may still show takes it away before the failure is raised: the
message shows its piece of the text (when the messages before it show theirs; else what it
showed before the line), so `finish` never leaves it, and a final edit lost once is made so.

A 429 the stream sees (discord.py waits out most itself, sleeping `retry_after` and trying
again, up to 5 times; it hands over a 429 without Discord's `Via` header at once) holds its
next request until `retry_after` after the refusal: every sync, status line and final edit.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable

import aiohttp
import discord
import structlog

from tzurot.bot.reasoning import unmarked
from tzurot.bot.splitting import DISCORD_LIMIT, split_message

log = structlog.get_logger(__name__)

_FENCE_CLOSE = "\n```"
"""Closes a code block a half answer ends inside, before a status line under it."""
Send = Callable[[str], Awaitable[int]]
Edit = Callable[[int, str], Awaitable[None]]
Delete = Callable[[int], Awaitable[None]]
FINAL_ATTEMPTS = 5
LONGEST_WAIT = 60.0
"""Seconds a 429's `retry_after` may hold the stream. Longer (a Cloudflare ban, which
discord.py hands over at once) and the request is refused now, not slept on for an hour:
the refusal path tells the user, as for any refused final edit."""


def retry_after(exc: discord.HTTPException) -> float:
    """Discord's `Retry-After` (seconds) of a 429."""
    raw = exc.response.headers.get("Retry-After") if exc.response is not None else None
    try:
        return max(0.0, float(raw)) if raw else 1.0
    except ValueError:
        return 1.0


Failure = (discord.HTTPException, aiohttp.ClientError, TimeoutError)
"""What a request to Discord may end in: refused, or unheard (Discord may have made it)."""


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
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_limited: Callable[[float], None] | None = None,
        posted: list[tuple[int, str]] | None = None,
    ) -> None:
        """`posted`: messages already showing (part of) the answer, as (id, text), which
        the next sync edits (an answer finished after its bot restarted)."""
        self._send, self._edit, self._delete = send, edit, delete
        self._interval = interval if callable(interval) else (lambda: float(interval))
        self._prefix, self._clock, self._sleep = prefix, clock, sleep
        self._on_limited = on_limited
        self._posted: list[tuple[int, str]] = list(posted or [])
        self._last_sync: float | None = None
        self._held_until = -math.inf  # a 429's retry_after, from the refusal
        self._status: dict[int, str] = {}  # may show a status line: id -> its text before
        self.edits = 0

    @property
    def message_ids(self) -> list[int]:
        return [message_id for message_id, _ in self._posted]

    async def update(self, text: str) -> None:
        """The text so far; synced only when the last sync is `interval()` old and no 429
        holds the stream. A 429 skips it (the next sync carries the text); another failure
        is raised, the status line taken away first."""
        now = self._clock()
        if now < self._held_until:
            return
        if self._last_sync is not None and now - self._last_sync < self._interval():
            return
        if text.strip():
            self._last_sync = now
            try:
                await self._sync(text)
            except discord.HTTPException as exc:
                if exc.status != 429:
                    await self._take_status_away(text)
                    raise
                self._hold(exc)
            except (aiohttp.ClientError, TimeoutError):
                await self._take_status_away(text)
                raise

    async def show_status(self, line: str) -> bool:
        """Shows `line` under the last message posted (its text cut to make room), once the
        edit interval since the last sync, and any 429's `retry_after`, have passed; whether
        it shows. Nothing posted yet: nothing to say it under. A 429 skips it, as an
        intermediate sync is skipped; another failure is raised."""
        if not self._posted:
            return False
        ready = self._held_until
        if self._last_sync is not None:
            ready = max(ready, self._last_sync + self._interval())
        await self._wait_until(ready)
        message_id, shown = self._posted[-1]
        bare = shown.removesuffix(f"\n{line}").removesuffix(_FENCE_CLOSE)  # shown already
        kept = bare[: DISCORD_LIMIT - len(line) - len(_FENCE_CLOSE) - 1]
        if kept.count("```") % 2:  # inside a code block: closed, or the line shows as code
            kept += _FENCE_CLOSE
        text = f"{kept}\n{line}"
        if text == shown:
            return True
        self._last_sync = self._clock()
        new = message_id not in self._status
        self._status.setdefault(message_id, shown)  # from now on, whatever Discord answers
        try:
            await self._edit(message_id, text)
        except discord.HTTPException as exc:
            if new and exc.status < 500:  # refused: Discord did not make it
                del self._status[message_id]
            if exc.status != 429:
                raise
            self._hold(exc)
            return False
        self.edits += 1
        self._posted[-1] = (message_id, text)
        return True

    async def finish(self, text: str) -> list[int]:
        """Makes the messages show `text`, a 429 waited out (`FINAL_ATTEMPTS` times); the
        ids. A failure is raised, unless taking the status line away (the final edit of its
        message made again) leaves the messages showing `text` after all."""
        try:
            await self._waiting_out_limits(lambda: self._sync(text))
        except Failure:
            await self._take_status_away(text)
            if self._status or [shown for _, shown in self._posted] != self._pieces(text):
                raise
        return self.message_ids

    def _hold(self, exc: discord.HTTPException) -> None:
        """A 429: no request of this stream until its `retry_after`, counted from now."""
        wait = min(retry_after(exc), LONGEST_WAIT)
        self._held_until = max(self._held_until, self._clock() + wait)
        if self._on_limited is not None:
            self._on_limited(wait)

    async def _wait_until(self, moment: float) -> None:
        delay = moment - self._clock()
        if delay > 0:
            await self._sleep(delay)

    async def _waiting_out_limits(self, request: Callable[[], Awaitable[None]]) -> None:
        """`request`, once any hold is over, again after each 429 (`FINAL_ATTEMPTS` at most)."""
        for attempt in range(1, FINAL_ATTEMPTS + 1):
            await self._wait_until(self._held_until)
            try:
                await request()
                return
            except discord.HTTPException as exc:
                if exc.status == 429:
                    self._hold(exc)  # the last too: what comes next waits it out
                if exc.status != 429 or attempt == FINAL_ATTEMPTS:
                    raise
                if retry_after(exc) > LONGEST_WAIT:
                    raise

    async def _take_status_away(self, text: str) -> None:
        """After a failed sync of `text`: each message that may show a status line is made
        to show its piece of `text` when the messages before it show theirs, else what it
        showed before the line. What Discord refuses is logged: the line stays."""
        pieces = self._pieces(text)
        for message_id, before in list(self._status.items()):
            index = self.message_ids.index(message_id)
            in_step = index < len(pieces) and all(
                shown == piece
                for (_, shown), piece in zip(self._posted[:index], pieces[:index], strict=True)
            )
            await self._edit_line_away(index, pieces[index] if in_step else before)

    async def _edit_line_away(self, index: int, text: str) -> None:
        try:
            await self._waiting_out_limits(lambda: self._edit_to(index, text))
        except discord.HTTPException as exc:
            log.info("bot.status_line_left", status=exc.status, code=exc.code)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("bot.status_line_left", error=type(exc).__name__)

    async def _edit_to(self, index: int, piece: str) -> None:
        message_id, _ = self._posted[index]
        await self._edit(message_id, piece)
        self.edits += 1
        self._posted[index] = (message_id, piece)
        self._status.pop(message_id, None)

    def _pieces(self, text: str) -> list[str]:
        # Never a reasoning's mark: no message of an answer is taken for its reasoning.
        return split_message(unmarked(self._prefix + text)) if text.strip() else []

    async def _sync(self, text: str) -> None:
        pieces = self._pieces(text)
        for index, piece in enumerate(pieces):
            if index < len(self._posted):
                message_id, shown = self._posted[index]
                if shown != piece or message_id in self._status:
                    await self._edit_to(index, piece)
            else:
                self._posted.append((await self._send(piece), piece))
        while len(self._posted) > len(pieces):
            message_id, _ = self._posted[-1]
            await self._delete(message_id)
            self._posted.pop()
            self._status.pop(message_id, None)
