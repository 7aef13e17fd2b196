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
    `read_key`), each file's line found by `file_readings`; None when they could not be told
    apart safely."""
    found = file_readings(readings, attachments, reads)
    if found is None:
        return None
    still = {read_key(url) for url in shown}
    return "\n".join(f.text for f in found if read_key(f.attachment.url) in still)


@dataclass(frozen=True)
class FileReading:
    """The line inference added for one of the message's files: its reading, or the note of
    it left unread for want of a key for `unread_by` ('' for a reading)."""

    attachment: Attachment
    text: str
    unread_by: str = ""


def file_readings(
    readings: str, attachments: Sequence[Attachment], reads: Mapping[str, str]
) -> list[FileReading] | None:
    """`readings` (what inference added, `read_from_files`) told apart by file, parsed by
    position as inference wrote them: each file in order, its reading made again
    (`reading_of`, from the file's description or what was read of it, `reads`) skipped whole;
    for a file without one, the line at its own place when it is that file's note of a file
    left unread (`unread_note`) or its empty reading (a silent voice message's
    "[Voice message: ]"). A reading holding another file's note is skipped with it, never
    taken for one. None when the lines found do not make `readings` (not told apart)."""
    found: list[FileReading] = []
    at = 0
    for index, attachment in enumerate(attachments):
        text = reading_of(index, attachment, reads)
        line = FileReading(attachment, text) if text else _noted_at(readings, at, index, attachment)
        if line is not None:
            found.append(line)
            at += len(line.text) + 1
    return found if "\n".join(f.text for f in found) == readings else None


def reading_of(index: int, attachment: Attachment, reads: Mapping[str, str]) -> str:
    """The line inference added for the message's `index`th file ('' for none known: an
    image a model with vision saw, a file left unread (`unread_note`), or one read as
    nothing: `file_readings` finds those at their place), as tzurot.inference.attachments
    writes it."""
    text = attachment.description or reads.get(read_key(attachment.url), "")
    return _reading_line(index, attachment, text) if text else ""


def _reading_line(index: int, attachment: Attachment, text: str) -> str:
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


def _noted_at(readings: str, at: int, index: int, attachment: Attachment) -> FileReading | None:
    """The `index`th file's line when `readings` has, whole as its line at `at`, its
    `unread_note` (naming the provider) or its empty reading; None otherwise."""
    end = readings.find("\n", at)
    line = readings[at:] if end < 0 else readings[at:end]
    if line == _reading_line(index, attachment, ""):
        return FileReading(attachment, line)
    what, doing = _unread_parts(index, attachment)
    head = UNREAD_NOTE.split("{provider}", 1)[0].format(what=what, doing=doing)
    if not line.startswith(head):
        return None
    provider = line[len(head) :].split(" ", 1)[0]
    if provider and line == unread_note(index, attachment, provider):
        return FileReading(attachment, line, provider)
    return None


def _label(index: int, attachment: Attachment) -> str:
    return attachment.filename or f"attachment {index + 1}"
