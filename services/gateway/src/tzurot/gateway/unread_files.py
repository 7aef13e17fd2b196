"""The files of a message inference left unread for want of a key, said under the answer.

On an answer that takes no key (a keyless provider's), a helper model that would describe an
image or transcribe a voice message is paid by nobody but the user: without her key for its
provider, inference leaves the file unread and adds its note to the message
(`turn_edits.unread_note`, as `ReplyFinished.user_content` has it, for history). The prompt
says so to the model; the user is told too, under the answer (`GenerationFinished.footer`),
whatever her model_footer setting: "image not read: add a key for openrouter with /wallet set
openrouter".

Only notes inference added count. The request's content (what the client sent, the user's
own text) is stripped whole first (`turn_edits.read_from_files`), so a note she typed is
none. What is left is parsed by position, as inference wrote it (`turn_edits.file_readings`, as
an edit's turn is): each file in order, its reading (a description, a transcript: known from
the file or from what was read of it on the job, `reads`) skipped whole, and a note (or an
empty reading, "[Voice message: ]") accepted only where the file's own reading would be,
naming that file. A reading that holds a note's text (another
file's transcript, a description of a screenshot) is skipped with it, never taken for one.
Readings that do not make up what inference added are logged (the job's id only) and give no
footer: the gateway or the bot changed the content on its way, a contract drift.

The same parse serves the live answer (`ReplyFinished`: its files with their readings) and
one handed out again from the job's row (a replay, a restarted bot's `unfinished`: the row's
`user_content`, its files, whose descriptions the row drops, and `Job.attachment_reads`).
An answer generated again after its bot died mid-answer (unfinished.py, `retry_job`) is sent
without the message's files, which its row did not keep yet: it has no unread part.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import structlog

from tzurot.gateway.domain import Attachment
from tzurot.gateway.turn_edits import file_readings, read_from_files

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class UnreadFile:
    """A file inference left unread: an image (else a voice message), and whose key reads it."""

    image: bool
    provider: str


def unread_files(
    request_content: str,
    user_content: str | None,
    attachments: Sequence[Attachment],
    reads: Mapping[str, str] | None = None,
    *,
    job_id: str,
) -> list[UnreadFile]:
    """The message's files inference left unread for want of a key, in the message's order:
    those whose note is, at its own place, in what inference added to `request_content`
    (`user_content`). `attachments`: the files inference saw, in order; `reads`: what was
    read of them (`Job.attachment_reads`), for files without their description (a job row's).
    None found when the readings do not make up what was added (logged with `job_id`)."""
    readings = read_from_files(request_content, user_content)
    if readings is None:
        log.warning("unread_files.readings_unmatched", job_id=job_id)
        return []
    if not readings:
        return []
    found = file_readings(readings, attachments, reads or {})
    if found is None:
        log.warning("unread_files.readings_not_per_file", job_id=job_id)
        return []
    return [UnreadFile(_is_image(f.attachment), f.unread_by) for f in found if f.unread_by]


def unread_lines(files: Sequence[UnreadFile]) -> list[str]:
    """What to tell the user of `files`: a line per provider whose key would read them, e.g.
    "2 images and voice message not read: add a key for openai with /wallet set openai"."""
    providers = list(dict.fromkeys(file.provider for file in files))
    lines = []
    for provider in providers:
        images = sum(1 for f in files if f.provider == provider and f.image)
        voices = sum(1 for f in files if f.provider == provider and not f.image)
        kinds = [
            _counted(count, noun)
            for count, noun in ((images, "image"), (voices, "voice message"))
            if count
        ]
        lines.append(
            f"{' and '.join(kinds)} not read: add a key for {provider} with /wallet set {provider}"
        )
    return lines


def _counted(count: int, noun: str) -> str:
    return noun if count == 1 else f"{count} {noun}s"


def _is_image(attachment: Attachment) -> bool:
    return attachment.content_type.split(";", 1)[0].strip().lower().startswith("image/")
