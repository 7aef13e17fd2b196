"""The message a chain reply answers (ScheduledTurn.reply_to_message_id: another
personality's answer in a group channel), fetched so the reply quotes it as any reply quotes
the message it answers (references.reply_quote).

That message is one of our answers: what it shows beyond what the personality said (the
quote line on top, the small lines under it: answer_notes) is left out of the quote. Gone
(deleted meanwhile), unreadable or Discord out of reach: the reply is posted without a quote.
"""

from __future__ import annotations

import aiohttp
import discord
import structlog

from tzurot.bot.references import strip_reply_quote

log = structlog.get_logger(__name__)

_SUBTEXT = "-# "


async def answered_message(
    channel: discord.abc.Messageable, message_id: str
) -> discord.Message | None:
    """The message `message_id` of `channel`, its content what the personality said; None
    without an id, or when it cannot be read."""
    if not message_id.isdigit():
        return None
    try:
        message = await channel.fetch_message(int(message_id))
    except discord.HTTPException as exc:  # deleted (404), unreadable (403)...: no quote
        log.info("bot.chain_quote_unavailable", status=exc.status, code=exc.code)
        return None
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning("bot.discord_unreachable", error=type(exc).__name__)
        return None
    # A message of its own, fetched for this quote (discord.py caches none it fetches).
    message.content = said(message.content)
    return message


def said(content: str) -> str:
    """An answer's text without the quote line above it and the small lines under it."""
    lines = strip_reply_quote(content).split("\n")
    while lines and lines[-1].startswith(_SUBTEXT):
        lines.pop()
    return "\n".join(lines)
