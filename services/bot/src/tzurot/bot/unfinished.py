"""Finishing an answer whose bot died while streaming it (the gateway's `unfinished` event).

The preview messages the dead bot left (half an answer) are edited into the whole answer, in
2000-character pieces like any answer, keeping its reply header, with the footer the dead bot
would have shown under it (`UnfinishedAnswer.footer`: the model, the files left unread for
want of a key; answer_notes.with_notes); or, when the gateway could not produce the answer
again, into the personality's failure notice; or, when it withholds the answer
(`failed_message`: the user asked for their data to be deleted, or the personality was
deleted), into why, in the personality's voice, as the bot shows the refusal of a message of
theirs. The ids returned go back with the acknowledgement, which delivers the job (its turn
reaches history) when there was an answer. A 🔄's answer also deletes the answer it replaces,
which its dead bot had left until the new one was posted (the acknowledgement takes that
exchange out of history).

A preview deleted meanwhile (Discord's Unknown Message, 10008), before the bot reads it or
between its read and its edit, is passed over: the pieces go into the previews still there, in
order, and what is left over is posted anew. So is one no webhook of ours can edit any more:
the channel's read shows it was posted by a webhook other than the channel's of now (the
dead bot's, deleted by an admin since; logged), or its webhook is gone with none other there.
Deleting it would need Manage Messages, which the bot may not have: it stays. One the bot may
not read in the channel (no Read Message History) is read through the channel's webhook,
which posted it and needs no permission for that; with no webhook of ours there, none is made
to read it (it could read nothing), and the preview is passed over. Any other refusal (the
channel gone) ends the hand-over. The reply header is the one the dead bot noted with the
preview (`UnfinishedAnswer.reply_header`), so it is kept even when the preview that carried it
was deleted before the bot read it; from an older gateway, which does not send it, it is the
one the first preview read carries.

A withheld answer may come without its personality: a deleted one (or one being deleted),
among them the user's private personalities, deleted with her data. Its previews are edited
all the same (through the channel's webhook, which needs no name), into why in no
personality's voice; nothing is posted anew, since nothing may speak as a deleted
personality: the refusal is cut to the previews left (its voice shortened, the reason kept),
and no webhook is made for it (none is needed to post nothing).

The previews noted may end with what the answer showed beyond its text: the messages of its
files that did not fit on its last message (no text, attachments only), then its reasoning's
message (tzurot.bot.reasoning.shows_our_reasoning: by its header's mark, or one of a bot of
before the mark, by its layout and its time), in that order, after its text's. They are no
piece of the text. The dead bot posted them, and attached files to a message of its text,
only once its text was finished: an answer handed over whole (`content`) that shows any of
them keeps its messages exactly as they are, its text's included (they show the content with
the notes under it, the model's footer or the "cut off" line, which the content handed over
lacks: edited into the bare content, the text could need a message fewer, the one carrying
the first files). So does one without them whose text's messages show the whole content,
with no line under it but those notes (`_shown_finished`; one of its messages deleted meanwhile
passed over, never its last: a half answer whose last message is gone looks the same, and is
finished as one). Nothing is edited, posted or deleted then (a text's message deleted
meanwhile is not posted again); all go back with the acknowledgement, the text's messages
first (they are the delivered answer: a 🔄 or a delete takes them all). One withheld, or cut
off, has them deleted, and the files taken off its text's messages, once its notice shows:
what Discord refuses there is logged, and never keeps the notice from showing. A status line
a preview shows (the dead bot's "picking the answer up again", or a skill's) is no part of
what the answer becomes: it is edited away with the rest of a half answer (an answer kept as
shown shows none: its notes are the only lines under it).

Every message posted here is noted with the answer's preview (NoteAnswerPreview, as the live
bot notes its own), awaited before the acknowledgement: a hand-over cut short (this bot
stopped, its acknowledgement lost) comes back with it, and is edited, not posted again. A
bot stopping lets the hand-over it is at finish within its grace period (events.EventListener
`stop_taking`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp
import discord
import structlog

from tzurot.bot.answer_notes import as_shown, with_notes
from tzurot.bot.gateway_client import GatewayClient, NoteBudget
from tzurot.bot.posting import Delete, Edit, Send, StreamedAnswer
from tzurot.bot.reasoning import shows_our_reasoning, unmarked
from tzurot.bot.references import REPLY_QUOTE_PREFIX
from tzurot.bot.splitting import DISCORD_LIMIT, split_message
from tzurot.bot.webhooks import (
    UNKNOWN_MESSAGE,
    UNKNOWN_WEBHOOK,
    WebhookLimitReached,
    WebhookPool,
    delete_messages,
)
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

log = structlog.get_logger(__name__)

DEFAULT_ERROR_MESSAGE = "I couldn't answer that."
_DISCORD_FAILURES = (discord.HTTPException, aiohttp.ClientError, TimeoutError)
_CUT_STEP = 100  # characters of the voice cut at a time once it is within a message's length
HANDOVER_NOTE_BUDGET_SECONDS = 3.0
"""How long a hand-over spends noting the pieces it posts (NoteAnswerPreview): the time inside
its notes, all of them and every attempt included (not the posting between them, however slowly
Discord takes the pieces). Awaited between pieces, so a failing gateway cannot stall the
hand-over for the live bot's minute, nor take all of a stop's grace (5 s by default; a stopping
bot caps each note, the one in flight included, at half its grace, `NoteBudget.end_by`). After a
note fails, each later one is tried once while the budget lasts: a note carries every id, so the
next that lands repairs the one lost. Pieces posted after the last note that landed lose their
idempotency: a later hand-over may post them again (logged: bot.preview_not_noted)."""


def failure_notice(personality: common.Personality, reason: str, message: str = "") -> str:
    """What the preview becomes when no answer could be produced after the restart, or
    (`message`, the gateway's words) when it is withheld."""
    if message:  # withheld: why, as the refusal of a message is shown (errors.error_reply)
        return f"{_voice(personality)}{_reason_line(message)}"
    why = f" ({reason})" if reason else ""
    return (
        f"{_voice(personality)}\n-# This answer was cut off when the bot restarted{why}; try again."
    )


def fitted_refusal(
    personality: common.Personality, message: str, *, prefix: str, messages: int
) -> str:
    """The withheld answer's notice (failure_notice with the gateway's `message`) cut to show,
    after the reply header `prefix`, in at most `messages` messages (at least 1): a long voice
    (an error message may have 2000 characters) is shortened, ending "…"; the "-#" reason line
    is kept whole (cut only if it alone could not fit, which the gateway's words never are)."""
    voice, reason = _voice(personality), _reason_line(message)
    keep = len(voice)
    while True:
        text = (voice if keep == len(voice) else voice[:keep].rstrip() + "…") + reason
        if len(split_message(prefix + text)) <= messages:
            return text
        if keep == 0:
            return reason.strip()[: max(1, DISCORD_LIMIT - len(prefix))]
        # Cut what overflows the messages' length, then by steps: the splitter cuts at
        # boundaries, so messages can hold less than 2000 characters each.
        overflow = len(prefix + text) - messages * DISCORD_LIMIT
        keep = max(0, keep - max(overflow, _CUT_STEP))


def _voice(personality: common.Personality) -> str:
    # Written by the personality's owner: its mentions are shown, never pinged or parsed.
    return discord.utils.escape_mentions(personality.error_message.strip()) or (
        DEFAULT_ERROR_MESSAGE
    )


def _reason_line(message: str) -> str:
    return f"\n-# {discord.utils.escape_mentions(message)}"


def withheld(unfinished: gw.UnfinishedAnswer) -> bool:
    """The answer is withheld (its user's data or its personality being deleted): the
    preview says why."""
    return bool(unfinished.failed_message) and not unfinished.content


async def finish_unfinished(
    webhooks: WebhookPool,
    channel: discord.abc.Messageable,
    unfinished: gw.UnfinishedAnswer,
    *,
    gateway: GatewayClient | None = None,
    notes: NoteBudget | None = None,
) -> list[int]:
    """Edits the preview into the answer (or a failure notice); the message ids it shows.
    A withheld answer (its user's data or its personality being deleted) only has the
    previews still there edited into why, and nothing is posted: its personality may be on
    its way out (a replica's catalog can still name it for seconds), and a preview deleted
    meanwhile leaves no half answer to explain. Nor is a webhook made for it: edits go
    through the channel's webhook found, and with none the previews are passed over (a
    webhook made then could edit none of them), so WebhookLimitReached cannot arise. What
    the answer showed beyond its text (its files' messages, its reasoning) is kept with an
    answer, its ids last, its text's messages then kept as they are; and deleted otherwise.
    Each message posted here is noted with the answer's preview through `gateway`, awaited,
    before the next step (and so before the acknowledgement): a hand-over cut short (the bot
    stopped, the acknowledgement lost) comes back with it, and the next bot edits it instead
    of posting it again. The notes share one budget (`notes`, HANDOVER_NOTE_BUDGET_SECONDS
    unless given), a single attempt each after one failed."""
    notes = NoteBudget(HANDOVER_NOTE_BUDGET_SECONDS) if notes is None else notes
    personality = unfinished.personality
    found = await _previews_shown(
        webhooks, channel, [int(i) for i in unfinished.preview_message_ids if i.isdigit()]
    )
    prefix, previews = found.prefix, found.text
    if unfinished.reply_header.startswith(REPLY_QUOTE_PREFIX):
        # The header it was shown with, noted with the preview: kept even when the first
        # preview, which carried it, was deleted before it was read here.
        prefix = unfinished.reply_header.split("\n", 1)[0] + "\n"
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
        # Never through a webhook made now (webhooks.edit makes one when none is cached): it
        # could edit nothing the dead bot posted.
        if await webhooks.find(channel) is None:
            _log_foreign(message_id, None)
            raise _PassedOver(message_id)
        try:
            await webhooks.edit(channel, message_id, text, mentions=mentions)
        except discord.NotFound as exc:
            if not _passed_over(exc, message_id):
                raise
            raise _PassedOver(message_id) from exc
        shown[message_id] = text

    async def delete(message_id: int) -> None:
        if await webhooks.find(channel) is None:
            _log_foreign(message_id, None)  # it stays: no webhook can delete it
            return
        try:
            await webhooks.delete(channel, message_id)
        except discord.NotFound as exc:
            if not _passed_over(exc, message_id):  # gone meanwhile: gone all the same
                raise

    async def noted(text_ids: list[int]) -> None:
        # As the live bot notes what it posts (PreviewNotes), but awaited: the event the
        # gateway sends again is built from this list. Its text first, what it showed beyond
        # its text last, as the dead bot noted them.
        if gateway is not None and unfinished.job_id:
            await gateway.note_preview(
                unfinished.job_id,
                [*text_ids, *found.beyond],
                prefix,
                budget=notes,
            )

    if unfinished.content and (
        found.beyond
        or found.with_files
        or _shown_finished(
            unfinished.content,
            prefix,
            found.texts,
            messages=len(unfinished.preview_message_ids) - len(found.beyond),
            footer=unfinished.footer,
        )
    ):
        # Its files and its reasoning were posted only once its text was finished (the
        # stream finished, then the files attached, then the reasoning posted): its text's
        # messages show the whole answer already, with the notes under it (the model's
        # footer, the "cut off" line) that the content handed over lacks. Kept as they are:
        # edited into the bare content, the text could need a message fewer, the one
        # carrying the first files; and nothing is posted under its files or reasoning.
        ids = found.text
    else:
        ids = await _show_text(
            unfinished, previews, prefix, (send, edit, delete), shown, noted=noted
        )
    if not unfinished.content:  # nothing of it is kept: nor its files, nor its reasoning
        # Once the notice shows: failing to take them away never leaves the half answer
        # without it.
        await _drop_beyond_text(webhooks, channel, found, delete, showing=ids)
        if withheld(unfinished) and not ids:
            return []
    answer = [*ids, *found.beyond] if unfinished.content else ids
    if unfinished.content and answer:
        # The answer it replaces, left by the dead bot until this one was posted.
        replaced = [int(m) for m in unfinished.replaced_message_ids if m.isdigit()]
        await delete_messages(webhooks, channel, replaced)
    log.info(
        "bot.unfinished_finished",
        job_id=unfinished.job_id,
        answered=bool(unfinished.content),
        messages=len(answer),
    )
    return answer


async def _show_text(
    unfinished: gw.UnfinishedAnswer,
    previews: list[int],
    prefix: str,
    requests: tuple[Send, Edit, Delete],
    shown: dict[int, str],
    *,
    noted: Callable[[list[int]], Awaitable[None]],
) -> list[int]:
    """Edits the text's `previews` (and posts what they cannot hold, unless withheld) into the
    answer handed over, or its notice; the ids showing it (none: a withheld answer whose
    previews are all gone). `shown`: what each message shows once edited or posted; `noted`
    has the text's messages noted, each time one is posted (awaited)."""
    personality, refused = unfinished.personality, withheld(unfinished)
    send, edit, delete = requests
    streams: list[StreamedAnswer] = []  # the one finishing now, last

    async def send_noted(piece: str) -> int:
        message_id = await send(piece)
        await noted([*streams[-1].message_ids, message_id])
        return message_id

    text = (
        # With the line its dead bot would have shown under it (the model, the files left
        # unread for want of a key), as a live answer's (answer_notes.with_notes).
        with_notes(unfinished.content, finish_reason="stop", footer=unfinished.footer)
        if unfinished.content
        else failure_notice(personality, unfinished.failed_reason, unfinished.failed_message)
    )
    while True:
        if refused:
            if not previews:  # nothing left to explain, nothing posted
                log.info("bot.unfinished_gone", job_id=unfinished.job_id)
                return []
            # Nothing is sent: the refusal is cut to the previews left.
            text = fitted_refusal(
                personality, unfinished.failed_message, prefix=prefix, messages=len(previews)
            )
        posted = [(i, shown.get(i, "")) for i in previews]
        stream = StreamedAnswer(
            send_noted, edit, delete, interval=0.0, prefix=prefix, posted=posted
        )
        streams.append(stream)
        try:
            return await stream.finish(text)
        except _PassedOver as gone:
            # Deleted since the bot read it (or no longer ours to edit): passed over as if
            # gone then (the pieces after it move up; the header, read already, goes on the
            # first message still there).
            previews = [i for i in stream.message_ids if i != gone.message_id]


class _PassedOver(Exception):
    """A preview deleted between the bot's read and its edit (Discord's 10008), or that no
    webhook of the channel's can edit any more."""

    def __init__(self, message_id: int) -> None:
        super().__init__(message_id)
        self.message_id = message_id


@dataclass(frozen=True)
class _Previews:
    """The previews still there and ours to edit, as read: the reply header the first of its
    text's carries (empty if none); those of its text, in order; those of what it showed
    beyond its text (`_text_previews`); and those of its text that carry files."""

    prefix: str
    text: list[int]
    beyond: list[int]
    with_files: list[int]
    texts: list[str]  # what those of its text show, in order


async def _previews_shown(
    webhooks: WebhookPool, channel: discord.abc.Messageable, message_ids: list[int]
) -> _Previews:
    """The previews still there and ours to edit, in order (one deleted meanwhile, a
    moderator's, is passed over, and so is one no webhook of ours can edit)."""
    read: list[discord.Message] = []
    for message_id in message_ids:
        shown = await _read_preview(webhooks, channel, message_id)
        if shown is not None:
            read.append(shown)
    text = _text_previews(read)
    first = read[0].content if text else ""
    return _Previews(
        prefix=first.split("\n", 1)[0] + "\n" if first.startswith(REPLY_QUOTE_PREFIX) else "",
        text=[m.id for m in read[:text]],
        beyond=[m.id for m in read[text:]],
        with_files=[m.id for m in read[:text] if m.attachments],
        texts=[m.content for m in read[:text]],
    )


def _shown_finished(
    content: str, prefix: str, texts: list[str], *, messages: int, footer: str = ""
) -> bool:
    """Whether the text's previews still there (`texts`, in order) show the whole `content`
    as the dead bot finished it: the pieces of the content after the reply header `prefix`,
    with the notes `with_notes` puts under it (the cut-off line, the footer; no other line),
    each in a message of its own; one a moderator deleted passed over, but never the last (a
    half answer whose last message was deleted shows the same). `messages`: how many
    messages of its text were noted (it cannot show more pieces). With a `footer` handed over
    the dead bot finished it under a footer line: the content shown with none (its last
    preview had the whole text, the bot died before its final edit) is not finished. The line
    it shows need not be the one handed over (rebuilt from the row, it may lack a reading the
    gateway failed to record, or carry the model for a model_footer turned on since): the
    dead bot's own is kept."""
    if not texts:
        return False
    last_line = texts[-1].rsplit("\n", 1)[-1]
    bare = {with_notes(content, finish_reason=r, footer="") for r in ("stop", "length")}
    for shown in as_shown(content, last_line):
        if footer and shown in bare:
            continue
        pieces = split_message(unmarked(prefix + shown))
        if len(pieces) > messages or pieces[-1] != texts[-1]:
            continue
        rest = iter(pieces)
        if all(any(text == piece for piece in rest) for text in texts):  # in order
            return True
    return False


async def _drop_beyond_text(
    webhooks: WebhookPool,
    channel: discord.abc.Messageable,
    previews: _Previews,
    delete: Callable[[int], Awaitable[None]],
    *,
    showing: list[int],
) -> None:
    """An answer not handed over whole (withheld, or cut off) keeps nothing it showed beyond
    its text: its files' messages and its reasoning are deleted (`delete`), and the files
    attached to a message of its text still `showing` its notice are taken off (only through
    the channel's webhook found: never one made now). What Discord refuses, or Discord out
    of reach, is logged (the part stays): the notice shows already."""
    for message_id in previews.beyond:
        try:
            await delete(message_id)
        except _DISCORD_FAILURES as exc:
            log.info("bot.unfinished_part_left", message_id=message_id, error=type(exc).__name__)
    carrying = [m for m in previews.with_files if m in showing]
    for message_id in carrying:
        try:
            if await webhooks.find(channel) is None:
                return
            await webhooks.attach(channel, message_id, [])  # no attachments left
        except discord.NotFound as exc:
            if not _passed_over(exc, message_id):  # gone meanwhile: nothing left to take
                log.info("bot.unfinished_files_left", message_id=message_id, code=exc.code)
        except (*_DISCORD_FAILURES, WebhookLimitReached) as exc:
            log.info("bot.unfinished_files_left", message_id=message_id, error=type(exc).__name__)


def _text_previews(read: list[discord.Message]) -> int:
    """How many of the previews `read` show the answer's text: all but those at their end
    that show what the answer showed beyond it, posted after its text in this order: the
    messages of its files (attachments, no text: a piece of text is never empty), then its
    reasoning's message."""
    end = len(read)
    if end and shows_our_reasoning(read[end - 1].content, read[end - 1].id):
        end -= 1
    while end and not read[end - 1].content.strip() and read[end - 1].attachments:
        end -= 1
    return end


async def _read_preview(
    webhooks: WebhookPool, channel: discord.abc.Messageable, message_id: int
) -> discord.Message | None:
    """The preview as it shows now; None when it is gone (10008), or not ours to edit: posted
    by a webhook other than the channel's of now (logged). Without Read Message History the
    channel answers 403 before it looks for the message: the channel's webhook, which posted
    it, reads it instead (it needs no permission; 10008 for a message gone, or another
    webhook's, which it could not edit either; None when the channel has no webhook of ours,
    none being made to read)."""
    try:
        shown = await channel.fetch_message(message_id)
    except discord.NotFound as exc:
        if exc.code != UNKNOWN_MESSAGE:
            raise
        return None
    except discord.Forbidden:
        shown = None
    if shown is None:
        return await _read_through_webhook(webhooks, channel, message_id)
    if not await webhooks.serves(channel, shown.webhook_id):
        _log_foreign(message_id, shown.webhook_id)
        return None
    return shown


async def _read_through_webhook(
    webhooks: WebhookPool, channel: discord.abc.Messageable, message_id: int
) -> discord.Message | None:
    try:
        return await webhooks.fetch(channel, message_id)
    except discord.NotFound as exc:
        if exc.code != UNKNOWN_MESSAGE:
            raise
        return None


def _passed_over(exc: discord.NotFound, message_id: int) -> bool:
    """Whether Discord's 404 to an edit or a delete of a preview passes it over: it is gone
    (10008), or its webhook is with none other there (10015, after the pool looked again)."""
    if exc.code == UNKNOWN_WEBHOOK:
        _log_foreign(message_id, None)
    return exc.code in (UNKNOWN_MESSAGE, UNKNOWN_WEBHOOK)


def _log_foreign(message_id: int, webhook_id: int | None) -> None:
    """A preview no webhook of ours can edit (`webhook_id`, the one that posted it, if
    known): it stays as the dead bot left it."""
    log.info("bot.unfinished_preview_foreign", message_id=message_id, webhook_id=webhook_id)
