"""Finishing an answer whose bot died while streaming it (the gateway's `unfinished` event).

The preview messages the dead bot left (half an answer) are edited into the whole answer, in
2000-character pieces like any answer, keeping its reply header; or, when the gateway could
not produce the answer again, into the personality's failure notice; or, when it withholds
the answer (`failed_message`: the user asked for their data to be deleted, or the personality
was deleted), into why, in the personality's voice, as the bot shows the refusal of a message
of theirs. A preview deleted
meanwhile is posted anew. The ids returned go back with the acknowledgement, which delivers
the job (its turn reaches history) when there was an answer. A 🔄's answer also deletes the
answer it replaces, which its dead bot had left until the new one was posted (the
acknowledgement takes that exchange out of history).

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
    previews = [int(i) for i in unfinished.preview_message_ids if i.isdigit()]
    prefix = ""
    # Only the previews still there carry the answer (one deleted meanwhile, a moderator's,
    # is passed over); the first of them keeps its reply header; none left: the answer is
    # posted anew. One the bot may not read (no Read Message History) is passed over too:
    # Discord checks that permission before the message exists, so it may be gone, and an
    # edit of a gone one would fail the whole hand-over.
    kept: list[int] = []
    for message_id in previews:
        try:
            shown = await channel.fetch_message(message_id)
        except (discord.NotFound, discord.Forbidden):
            continue
        if not kept and shown.content.startswith(REPLY_QUOTE_PREFIX):
            prefix = shown.content.split("\n", 1)[0] + "\n"
        kept.append(message_id)
    previews = kept
    if withheld(unfinished) and not previews:  # nothing left to explain, nothing posted
        log.info("bot.unfinished_gone", job_id=unfinished.job_id)
        return []
    # (Withheld, the text is the refusal, which fits the first preview: nothing is sent.)
    mentions = discord.AllowedMentions.none()

    async def send(text: str) -> int:
        sent = await webhooks.send(
            channel,
            text,
            username=personality.display_name,
            avatar_url=personality.avatar_url or None,
            mentions=mentions,
            suppress_embeds=personality.suppress_embeds,
        )
        return sent.id

    async def edit(message_id: int, text: str) -> None:
        await webhooks.edit(channel, message_id, text, mentions=mentions)

    async def delete(message_id: int) -> None:
        with contextlib.suppress(discord.NotFound):  # deleted meanwhile: gone all the same
            await webhooks.delete(channel, message_id)

    stream = StreamedAnswer(
        send, edit, delete, interval=0.0, prefix=prefix, posted=[(i, "") for i in previews]
    )
    text = unfinished.content or failure_notice(
        personality, unfinished.failed_reason, unfinished.failed_message
    )
    ids = await stream.finish(text)
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
