"""An answer cut short by a restart in the mesh, asked for again: the wait before each ask,
and the line its half answer shows meanwhile (`Poster._stream` asks)."""

from __future__ import annotations

import random

import aiohttp
import discord
import structlog

from tzurot.bot.posting import StreamedAnswer
from tzurot.runtime.errors import TzurotError

# Named as before the split from answering.py: its events keep the logger they had.
log = structlog.get_logger("tzurot.bot.answering")

RESTART_BACKOFF_SECONDS = 1.0
"""The wait before a generation cut short by a restart is asked for again, doubled each time
(the gateway's replacement needs a moment to serve), at most `MAX_RESTART_BACKOFF_SECONDS`."""
MAX_RESTART_BACKOFF_SECONDS = 8.0
RECOVERING_LINE = "-# ⏳ Interrupted by a restart; picking the answer up again…"
"""Shown under a half answer while it is asked for again (`StreamedAnswer.show_status`):
gone with the next edit of the answer, never in the final message."""


def restart_backoff(retry: int) -> float:
    """The wait before the `retry`th ask (1, 2, 4… s), less a random part of up to half:
    the answers a stopping gateway cut short together are not all asked for at once."""
    base = min(RESTART_BACKOFF_SECONDS * 2.0 ** (retry - 1), MAX_RESTART_BACKOFF_SECONDS)
    return base * random.uniform(0.5, 1.0)  # noqa: S311 - spreading load, not a secret


async def _show_recovering(stream: StreamedAnswer) -> None:
    """`RECOVERING_LINE` under the half answer shown, if any. What Discord refuses, or
    Discord out of reach, is logged: the ask goes on, and its sync or its error says more."""
    try:
        await stream.show_status(RECOVERING_LINE)
    except discord.HTTPException as exc:
        log.info("bot.recovering_not_shown", status=exc.status, code=exc.code)
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning("bot.discord_unreachable", error=type(exc).__name__)


class _CutShort(Exception):
    """The gateway ended the generation because a service of the mesh went away (`error`),
    and nothing of it was refused by Discord: it may be asked for again."""

    def __init__(self, error: TzurotError) -> None:
        super().__init__(error.message)
        self.error = error
