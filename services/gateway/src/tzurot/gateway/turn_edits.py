"""A user's edit of a message a personality answered, as its turn in history takes it.

The user's turn is stored as the prompt saw it (delivery_flow, job_context): the request's
content (what the bot sent: the typed text, a forward the message took, notes of files not
read), then, one a line, what inference read of the message's files: an image's description,
a voice message's transcript (inference joins them so into `ReplyFinished.user_content`,
kept on the job's row). An edit changes only the text: the bot sends the edited message's
request content, which takes the old request content's place; what was read of the files
stays, as the files were not read again. The job's row tells the two apart, not the turn.
"""

from __future__ import annotations


def read_from_files(request_content: str, user_content: str | None) -> str:
    """What inference added to `request_content` for the prompt (`user_content`): the
    readings of the message's files; '' when it added nothing (or, never expected, when
    `user_content` does not begin with the request's content as a line of its own)."""
    if not user_content or user_content == request_content:
        return ""
    if not request_content:
        return user_content
    head = request_content + "\n"
    return user_content[len(head) :] if user_content.startswith(head) else ""


def edited_turn_content(edited: str, request_content: str, user_content: str | None) -> str:
    """The user's turn after an edit: the edited request content, then what was read of the
    message's files, joined as inference joined them (an empty part left out)."""
    parts = (edited, read_from_files(request_content, user_content))
    return "\n".join(part for part in parts if part)
