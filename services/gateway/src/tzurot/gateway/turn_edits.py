"""A user's edit of a message a personality answered, as its turns in history take it.

The user's turn is stored as the prompt saw it (delivery_flow, job_context): the request's
content (what the bot sent: the typed text, a forward the message took, notes of files not
read), then, one a line, what inference read of the message's files: an image's description,
a voice message's transcript, or the note of one it left unread for want of a key
(`unread_note`; inference joins them so into `ReplyFinished.user_content`,
kept on the job's row). An edit changes only the text: the bot sends the edited message's
request content, which takes the old request content's place; what was read of the files
stays, as the files were not read again, except a reading of a file the edit took off the
message (`MessageEdit.files`). The job's row tells the two apart, not the turn.

An edit that leaves a turn nothing to say (its text removed, its files seen by a model with
vision, so nothing read of them) does not keep the removed text: the turn names the files
still shown (`files_named`), e.g. `[Image cat.png]`.

A message several exchanges share (several personalities addressed, a group round) has a
user turn in each, each composed from its own job: what each one's inference read is its own.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import structlog

from tzurot.gateway.attachment_reads import read_key
from tzurot.gateway.domain import Attachment, Job, JobContext

log = structlog.get_logger(__name__)

UNREAD_NOTE = (
    "[{what}: not read; {doing} needed an API key for {provider} (/wallet set {provider})]"
)
"""The note of a file inference left unread (tzurot.inference.readings `NoKeyFor.unread`:
the same text; a contract test holds the two together)."""


@dataclass(frozen=True)
class MessageEdit:
    """What the bot sends of an edited message (`EditMessageRequest`)."""

    content: str
    """The edited request content (every personality that answered was sent the same)."""
    files: Collection[str] | None = None
    """The URLs of the files the message still shows; None when the bot did not list them."""


def edited_turn(edit: MessageEdit, job: Job, context: JobContext) -> str:
    """The user's turn of `job`'s exchange after `edit`: the edited request content, then
    what was read of the files still shown, joined as inference joined them (an empty part
    left out). Readings that cannot be found are logged (ids only) and none is kept;
    readings that cannot be told apart by file are logged and all are kept."""
    readings = read_from_files(job.request_content, context.user_content)
    if readings is None:
        log.warning("turn_edit.readings_unmatched", job_id=job.id)
        readings = ""
    elif edit.files is not None and readings:
        kept = readings_of_files_shown(
            readings, context.attachments, dict(job.attachment_reads), edit.files
        )
        if kept is None:
            log.warning("turn_edit.readings_not_per_file", job_id=job.id)
        else:
            readings = kept
    parts = (edit.content, readings)
    turn = "\n".join(part for part in parts if part)
    return turn if turn.strip() else files_named(context.attachments, edit.files)


def files_named(attachments: Sequence[Attachment], shown: Collection[str] | None) -> str:
    """The job's files still `shown` (URLs; None: all of them), one a line, named as
    inference labels them (`[Image cat.png]`, `[File attachment 2]`); '' for none."""
    still = None if shown is None else {read_key(url) for url in shown}
    named = []
    for index, attachment in enumerate(attachments):
        if still is not None and read_key(attachment.url) not in still:
            continue
        kind = "Image" if _is_image(attachment) else "File"
        named.append(f"[{kind} {_label(index, attachment)}]")
    return "\n".join(named)


def _is_image(attachment: Attachment) -> bool:
    return attachment.content_type.split(";", 1)[0].strip().lower().startswith("image/")


def read_from_files(request_content: str, user_content: str | None) -> str | None:
    """What inference added to `request_content` for the prompt (`user_content`): the
    readings of the message's files; '' when it added nothing; None (never expected) when
    `user_content` does not begin with the request's content as a line of its own."""
    if not user_content or user_content == request_content:
        return ""
    if not request_content:
        return user_content
    head = request_content + "\n"
    return user_content[len(head) :] if user_content.startswith(head) else None


def readings_of_files_shown(
    readings: str,
    attachments: Sequence[Attachment],
    reads: Mapping[str, str],
    shown: Collection[str],
) -> str | None:
    """`readings` without those of the files no longer `shown` (URLs, told apart by
    `read_key`). Each reading is made again as inference made it, from the job's attachments
    (in order) and what was read of each (`reads`), or, for a file it left unread for want of
    a key, its note (`unread_note`, naming the provider `readings` names); None when they do
    not make `readings` (told apart, they could not be split safely)."""
    found: list[tuple[str, str]] = []
    at = 0
    for index, attachment in enumerate(attachments):
        text = reading_of(index, attachment, reads) or _unread_at(readings, at, index, attachment)
        if text:
            found.append((read_key(attachment.url), text))
            at += len(text) + 1
    if "\n".join(text for _, text in found) != readings:
        return None
    still = {read_key(url) for url in shown}
    return "\n".join(text for key, text in found if key in still)


def reading_of(index: int, attachment: Attachment, reads: Mapping[str, str]) -> str:
    """The line inference added for the message's `index`th file ('' for none: an image a
    model with vision saw, or a file left unread: `unread_note`), as
    tzurot.inference.attachments writes it."""
    text = attachment.description or reads.get(read_key(attachment.url), "")
    if not text:
        return ""
    if _is_image(attachment):
        return f"[Image {_label(index, attachment)}: {text}]"
    return f"[Voice message: {text}]"


def unread_note(index: int, attachment: Attachment, provider: str) -> str:
    """The note inference adds for the message's `index`th file when its helper model
    wants a key for `provider` nobody may pay with."""
    what, doing = _unread_parts(index, attachment)
    return UNREAD_NOTE.format(what=what, doing=doing, provider=provider)


def _unread_parts(index: int, attachment: Attachment) -> tuple[str, str]:
    if _is_image(attachment):
        return f"Image {_label(index, attachment)}", "describing it"
    return f"Voice message {_label(index, attachment)}", "transcribing it"


def _unread_at(readings: str, at: int, index: int, attachment: Attachment) -> str:
    """The `index`th file's `unread_note` when `readings` has it whole as its line at `at`,
    else ''."""
    end = readings.find("\n", at)
    line = readings[at:] if end < 0 else readings[at:end]
    what, doing = _unread_parts(index, attachment)
    head = UNREAD_NOTE.split("{provider}", 1)[0].format(what=what, doing=doing)
    if not line.startswith(head):
        return ""
    provider = line[len(head) :].split(" ", 1)[0]
    note = unread_note(index, attachment, provider)
    return note if line == note else ""


def _label(index: int, attachment: Attachment) -> str:
    return attachment.filename or f"attachment {index + 1}"
