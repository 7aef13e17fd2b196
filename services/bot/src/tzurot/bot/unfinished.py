"""Finishing an answer whose bot died while streaming it (the gateway's `unfinished` event).

The preview messages the dead bot left (half an answer) are edited into the whole answer, in
2000-character pieces like any answer, keeping its reply header; or, when the gateway could
not produce the answer again, into the personality's failure notice; or, when it withholds
the answer (`failed_message`: the user asked for their data to be deleted, or the personality
was deleted), into why, in the personality's voice, as the bot shows the refusal of a message
of theirs. The ids returned go back with the acknowledgement, which delivers the job (its turn
reaches history) when there was an answer. A 🔄's answer also deletes the answer it replaces,
which its dead bot had left until the new one was posted (the acknowledgement takes that
exchange out of history).

A preview deleted meanwhile, before the bot reads it or between its read and its edit, is
passed over: the pieces go into the previews still there, in order, and what is left over is
posted anew. One the bot may not read in the channel (no Read Message History) is read
through the channel's webhook, which posted it and needs no permission for that. The reply
header is the one the first preview read carries: when the preview that had it was deleted
before the bot read it, it is lost, since the event does not name the message it quoted.

A withheld answer may come without its personality: a deleted one (or one being deleted),
among them the user's private personalities, deleted with her data. Its previews are edited
all the same (through the channel's webhook, which needs no name), into why in no
personality's voice; nothing is posted anew, since nothing may speak as a deleted
personality.
"""

from __future__ import annotations

import contextlib

import discord
import structlog

from tzurot.bot.posting import StreamedAnswer
from tzurot.bot.references import REPLY_QUOTE_PREFIX
from tzurot.bot.webhooks import WebhookPool, delete_messages
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

log = structlog.get_logger(__name__)

DEFAULT_ERROR_MESSAGE = "I couldn't answer that."


def failure_notice(personality: common.Personality, reason: str, message: str = "") -> str:
    """What the preview becomes when no answer could be produced after the restart, or
    (`message`, the gateway's words) when it is withheld."""
    voice = discord.utils.escape_mentions(personality.error_message.strip()) or (
        DEFAULT_ERROR_MESSAGE
    )
    if message:  # withheld: why, as the refusal of a message is shown (errors.error_reply)
        return f"{voice}\n-# {discord.utils.escape_mentions(message)}"
    why = f" ({reason})" if reason else ""
    return f"{voice}\n-# This answer was cut off when the bot restarted{why}; try again."


def withheld(unfinished: gw.UnfinishedAnswer) -> bool:
    """The answer is withheld (its user's data or its personality being deleted): the
    preview says why."""
    return bool(unfinished.failed_message) and not unfinished.content


async def finish_unfinished(
    webhooks: WebhookPool, channel: discord.abc.Messageable, unfinished: gw.UnfinishedAnswer
) -> list[int]:
    """Edits the preview into the answer (or a failure notice); the message ids it shows.
    A withheld answer (its user's data or its personality being deleted) only has the
    previews still there edited into why, and nothing is posted: its personality may be on
    its way out (a replica's catalog can still name it for seconds), and a preview deleted
    meanwhile leaves no half answer to explain."""
    personality = unfinished.personality
    prefix, previews = await _previews_shown(
        webhooks, channel, [int(i) for i in unfinished.preview_message_ids if i.isdigit()]
    )
    mentions = discord.AllowedMentions.none()
    shown: dict[int, str] = {}  # what each message shows once edited or posted here

    async def send(text: str) -> int:
        sent = await webhooks.send(
            channel,
            text,
            username=personality.display_name,
            avatar_url=personality.avatar_url or None,
            mentions=mentions,
            suppress_embeds=personality.suppress_embeds,
        )
        shown[sent.id] = text
        return sent.id

    async def edit(message_id: int, text: str) -> None:
        try:
            await webhooks.edit(channel, message_id, text, mentions=mentions)
        except discord.NotFound as exc:
            raise _PreviewGone(message_id) from exc
        shown[message_id] = text

    async def delete(message_id: int) -> None:
        with contextlib.suppress(discord.NotFound):  # deleted meanwhile: gone all the same
            await webhooks.delete(channel, message_id)

    text = unfinished.content or failure_notice(
        personality, unfinished.failed_reason, unfinished.failed_message
    )
    while True:
        # (Withheld, the text is the refusal, which fits the first preview: nothing is sent.)
        if withheld(unfinished) and not previews:  # nothing left to explain, nothing posted
            log.info("bot.unfinished_gone", job_id=unfinished.job_id)
            return []
        posted = [(i, shown.get(i, "")) for i in previews]
        stream = StreamedAnswer(send, edit, delete, interval=0.0, prefix=prefix, posted=posted)
        try:
            ids = await stream.finish(text)
            break
        except _PreviewGone as gone:
            # Deleted since the bot read it: passed over as if gone then (the pieces after it
            # move up; the header, read already, goes on the first message still there).
            previews = [i for i in stream.message_ids if i != gone.message_id]
    if unfinished.content and ids:
        # The answer it replaces, left by the dead bot until this one was posted.
        replaced = [int(m) for m in unfinished.replaced_message_ids if m.isdigit()]
        await delete_messages(webhooks, channel, replaced)
    log.info(
        "bot.unfinished_finished",
        job_id=unfinished.job_id,
        answered=bool(unfinished.content),
        messages=len(ids),
    )
    return ids


class _PreviewGone(Exception):
    """A preview deleted between the bot's read and its edit (Discord's 404)."""

    def __init__(self, message_id: int) -> None:
        super().__init__(message_id)
        self.message_id = message_id


async def _previews_shown(
    webhooks: WebhookPool, channel: discord.abc.Messageable, message_ids: list[int]
) -> tuple[str, list[int]]:
    """The reply header the first preview still there carries (empty if none), and the
    previews still there, in order (one deleted meanwhile, a moderator's, is passed over)."""
    prefix = ""
    kept: list[int] = []
    for message_id in message_ids:
        shown = await _read_preview(webhooks, channel, message_id)
        if shown is None:
            continue
        if not kept and shown.content.startswith(REPLY_QUOTE_PREFIX):
            prefix = shown.content.split("\n", 1)[0] + "\n"
        kept.append(message_id)
    return prefix, kept


async def _read_preview(
    webhooks: WebhookPool, channel: discord.abc.Messageable, message_id: int
) -> discord.Message | None:
    """The preview as it shows now; None when it is gone. Without Read Message History the
    channel answers 403 before it looks for the message: the channel's webhook, which posted
    it, reads it instead (it needs no permission; 404 for a message gone, or another
    webhook's, which it could not edit either)."""
    try:
        return await channel.fetch_message(message_id)
    except discord.NotFound:
        return None
    except discord.Forbidden:
        pass
    try:
        return await webhooks.fetch(channel, message_id)
    except discord.NotFound:
        return None
