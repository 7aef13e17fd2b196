"""What an answer shows beyond its text, taken away with an answer withheld when its delivery
is confirmed (its personality, or its user's data, deleted meanwhile: errors.answer_deleted).

Its text's messages say why instead (answer_endings.py `_withhold`); the rest of it goes: the
messages of its files that did not fit on its last message, its reasoning's message, and the
files attached to a message of it that is left showing why. Nothing of a withheld answer is
kept, so nothing of it stays shown either. What Discord refuses, or Discord out of reach, is
logged: the withheld answer is told already.
"""

from __future__ import annotations

from collections.abc import Sequence

import aiohttp
import discord
import structlog

from tzurot.bot.webhooks import WebhookLimitReached, WebhookPool

log = structlog.get_logger(__name__)


async def take_away(
    webhooks: WebhookPool,
    channel: discord.abc.Messageable,
    messages: Sequence[int],
    *,
    files_on: int | None = None,
) -> None:
    """Deletes `messages` (one deleted already is passed over), then takes the files off
    `files_on` (a message left showing why the answer is withheld), when given."""
    for message_id in messages:
        try:
            await webhooks.delete(channel, message_id)
        except discord.NotFound:
            pass  # deleted already (a moderator): gone all the same
        except (discord.HTTPException, aiohttp.ClientError, TimeoutError) as exc:
            log.info("bot.withheld_part_left", message_id=message_id, error=type(exc).__name__)
    if files_on is None:
        return
    try:
        await webhooks.attach(channel, files_on, [])  # no attachments left
    except discord.NotFound:
        pass
    except (
        discord.HTTPException,
        aiohttp.ClientError,
        TimeoutError,
        WebhookLimitReached,
    ) as exc:
        log.info("bot.withheld_files_left", message_id=files_on, error=type(exc).__name__)
