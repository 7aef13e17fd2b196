"""Discord's forwards: a message with no content of its own that shows a snapshot of another.

discord-api-docs resources/message.mdx, "Forwards": the snapshot is a copy of the source taken
when it was forwarded, immutable (a later edit of the source does not reach it), without the
source's author; one snapshot per forward. The source read again by id may say something else
now, or be out of the reader's sight: what the forward shows is its snapshot, never the source.

A forward addresses nobody (`addressing.is_forward`): the names and mentions in its snapshot are
not the forwarder's words, and a forwarded answer is no reply to it. Where a personality is
activated it is a turn for it (`addressees`): the user's text says it is a forward
(`FORWARD_TURN`, as a note in brackets, like an attachment's), the snapshot is the message it
refers to (`references.as_reference`) and its files are the user's, read as any they attach
(`request_build`). A forward showing nothing to read (no text, no file; as every snapshot is
to a bot without the MESSAGE_CONTENT intent) is answered by nobody.
"""

from __future__ import annotations

import discord

from tzurot.bot.addressing import is_forward

FORWARD_TURN = "[forwarded a message]"
"""The user's turn for a forward: what they said is that they forwarded what it refers to."""


def is_forward_message(message: discord.Message) -> bool:
    """Whether `message` is a forward (its reference is a forward's, not a reply's)."""
    ref = message.reference
    return ref is not None and is_forward(ref)


def snapshot_of(message: discord.Message) -> discord.MessageSnapshot | None:
    """What the forward `message` shows (Discord sends one snapshot); None for a message that
    is no forward, or a forward that came without one."""
    if not is_forward_message(message):
        return None
    return next(iter(message.message_snapshots), None)


def shows_nothing(message: discord.Message) -> bool:
    """A forward with nothing to read: its snapshot has no text and no file (or is missing).
    Any other message: False."""
    if not is_forward_message(message):
        return False
    snapshot = snapshot_of(message)
    return snapshot is None or (not snapshot.content.strip() and not snapshot.attachments)


def turn_text(message: discord.Message) -> str:
    """What the user says by `message`: its content, or `FORWARD_TURN` for a forward."""
    return FORWARD_TURN if is_forward_message(message) else message.content


def shown_attachments(message: discord.Message) -> list[discord.Attachment]:
    """The files `message` shows: its own, and a forward's snapshot's."""
    snapshot = snapshot_of(message)
    return [*message.attachments, *(snapshot.attachments if snapshot is not None else [])]


def forwarded_by(message: discord.Message) -> str:
    """Who the forwarded text is by, as far as known: the snapshot has no author, only the
    forward has one (who forwarded it)."""
    return f"a message {message.author.display_name} forwarded"
