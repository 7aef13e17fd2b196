"""The messages a user's message points at: its reply chain and Discord message links.

Walked breadth-first from the user's message: depth 1 is the message it replies to and the
messages it links; each of those adds its own at depth 2, up to `max_depth`, at most
`max_count` in all, each message once. A link to a channel the user cannot read is skipped.

The reasoning message under an answer (tzurot.bot.reasoning: posted by a webhook, laid out as
a spoiler under its marked header; or by one of ours before the mark, under the header of
before) is no context: a reply to it addresses the answer's personality
as a reply to the answer does (tzurot.bot.addressees), but its text never reaches the prompt,
nor are the links in it followed. The answer itself is the conversation's history.

A forward (tzurot.bot.forwards) shows its snapshot, never its source read again by id. The
user's own forward is their turn's text (`forward_turn`), not a message referred to: it is kept
in history like any turn. A forward the chain or links reach is quoted as the snapshot shows the
source (its text, files and time; "a message <forwarder> forwarded", the source's author being
unknown), and leads nowhere further.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Awaitable, Callable

import discord
from google.protobuf.timestamp_pb2 import Timestamp

from tzurot.bot.attachments import to_attachment
from tzurot.bot.forwards import (
    FORWARD_TURN,
    forwarded_by,
    is_forward_message,
    quoted,
    snapshot_of,
)
from tzurot.bot.reasoning import shows_our_reasoning, shows_reasoning
from tzurot.v1 import common_pb2 as common

MESSAGE_LINK = re.compile(
    r"https?://(?:(?:ptb|canary)\.)?discord(?:app)?\.com/channels/(\d+|@me)/(\d+)/(\d+)"
)
REPLY_QUOTE_PREFIX = "-# ↪"

Resolver = Callable[[int, int], Awaitable[discord.Message | None]]
Ours = Callable[[discord.Message], bool]
"""Whether one of our webhooks (or our application) posted a message."""


def reply_quote(message: discord.Message) -> str:
    """Webhooks cannot reply natively: a small quoted line with a jump link instead."""
    snapshot = snapshot_of(message)
    text = snapshot.content if snapshot is not None else message.content
    snippet = " ".join(text.split())
    if len(snippet) > 60:
        snippet = snippet[:59] + "…"
    snippet = _escaped(snippet)
    if is_forward_message(message):
        snippet = " ".join(["(forwarded)", snippet]).strip()
    snippet = snippet or "(attachment)"
    # A display name is the user's to choose: a stray ``` or ** in it would open a block
    # that the answer's own fences then close (and the splitter cut around).
    name = _escaped(" ".join(message.author.display_name.split()))
    return f"{REPLY_QUOTE_PREFIX} **{name}** {snippet} · {message.jump_url}\n"


def _escaped(text: str) -> str:
    return discord.utils.escape_mentions(discord.utils.escape_markdown(text))


def strip_reply_quote(content: str) -> str:
    """An answer's content without the quoted line we put on top of it."""
    lines = content.split("\n")
    if lines and lines[0].startswith(REPLY_QUOTE_PREFIX):
        lines = lines[1:]
    return "\n".join(lines)


def forward_turn(forward: discord.Message) -> str:
    """What the user says by the forward `forward`: `FORWARD_TURN`, then the text its
    snapshot shows (without our quote line: a forwarded answer), quoted line by line
    (`forwards.quoted`: not their own words). Its files are read as theirs (request_build)."""
    snapshot = snapshot_of(forward)
    text = strip_reply_quote(snapshot.content).strip() if snapshot is not None else ""
    return f"{FORWARD_TURN}\n{quoted(text)}" if text else FORWARD_TURN


def turn_text(message: discord.Message) -> str:
    """What the user says by `message`: its content, or what a forward shows (`forward_turn`)."""
    return forward_turn(message) if is_forward_message(message) else message.content


def with_forward(text: str, forward: discord.Message | None) -> str:
    """A comment's text followed by the forward it was sent with (`forwards.ForwardComments`)."""
    if forward is None:
        return text
    return "\n".join(part for part in (text, forward_turn(forward)) if part)


def is_reasoning(message: discord.Message, ours: Ours | None = None) -> bool:
    """Whether `message` is the reasoning shown under an answer: posted by a webhook (a
    user's own message never is one) and laid out as the bot lays a reasoning out, its
    header's mark included (which no answer's text carries: tzurot.bot.reasoning); or, when
    `ours` says one of our webhooks posted it, laid out as a bot of before laid one out,
    before the mark was (`shows_our_reasoning`)."""
    if message.webhook_id is None:
        return False
    if shows_reasoning(message.content):
        return True
    return ours is not None and ours(message) and shows_our_reasoning(message.content, message.id)


def linked_ids(content: str) -> list[tuple[int, int]]:
    """(channel id, message id) for each Discord message link in `content`."""
    return [(int(m.group(2)), int(m.group(3))) for m in MESSAGE_LINK.finditer(content)]


def as_reference(message: discord.Message, depth: int) -> common.ReferencedMessage:
    """`message` as the model reads it among the messages referred to; a forward as its
    snapshot shows its source (`_forwarded`)."""
    if is_forward_message(message):
        return _forwarded(message, depth)
    created = Timestamp()
    created.FromDatetime(message.created_at)
    return common.ReferencedMessage(
        message_id=str(message.id),
        author_id=str(message.author.id),
        author_name=message.author.display_name,
        content=strip_reply_quote(message.content),
        created_at=created,
        attachments=[to_attachment(a) for a in message.attachments],
        depth=depth,
    )


def _forwarded(forward: discord.Message, depth: int) -> common.ReferencedMessage:
    """The source of `forward` as its snapshot shows it: the source's id (what it is a copy
    of), no author id (the snapshot has none) and the forwarder named as such; its text
    without our quote line (a forwarded answer), its files and when it was written. A forward
    that came without a snapshot shows nothing (its source is not read again)."""
    snapshot = snapshot_of(forward)
    created = Timestamp()
    created.FromDatetime(snapshot.created_at if snapshot is not None else forward.created_at)
    ref = forward.reference
    source_id = ref.message_id if ref is not None and ref.message_id is not None else forward.id
    return common.ReferencedMessage(
        message_id=str(source_id),
        author_id="",
        author_name=forwarded_by(forward),
        content=strip_reply_quote(snapshot.content) if snapshot is not None else "",
        created_at=created,
        attachments=[to_attachment(a) for a in snapshot.attachments] if snapshot else [],
        depth=depth,
    )


async def collect_references(
    message: discord.Message,
    *,
    max_depth: int,
    max_count: int,
    resolve: Resolver,
    ours: Ours | None = None,
) -> list[common.ReferencedMessage]:
    """The reply chain and linked messages of `message`, breadth first, deduplicated.

    `resolve(channel_id, message_id)` returns the message if the user may read it, else None.
    `ours`: whether one of our webhooks posted a message (a reasoning of a bot of before is
    told by it: `is_reasoning`).
    """
    out: list[common.ReferencedMessage] = []  # a forward's own snapshot is its turn's text
    seen = {message.id}
    queue: deque[tuple[discord.Message, int]] = deque([(message, 0)])
    while queue and len(out) < max_count:
        current, depth = queue.popleft()
        if depth >= max_depth:
            continue
        for target in await _pointers(current, resolve):
            if target.id in seen or len(out) >= max_count:
                continue
            seen.add(target.id)
            if is_reasoning(target, ours):  # its personality is addressed, its text kept out
                continue
            out.append(as_reference(target, depth + 1))
            queue.append((target, depth + 1))
    return out


async def _pointers(message: discord.Message, resolve: Resolver) -> list[discord.Message]:
    """The messages `message` replies to and links; a forward's reference names its source
    as it was (its snapshot, which `as_reference` quotes), so it is never read again."""
    found: list[discord.Message] = []
    ref = message.reference
    if ref is not None and ref.message_id is not None and not is_forward_message(message):
        resolved = ref.resolved if isinstance(ref.resolved, discord.Message) else None
        target = resolved or await resolve(ref.channel_id, ref.message_id)
        if target is not None:
            found.append(target)
    for channel_id, message_id in linked_ids(message.content):
        target = await resolve(channel_id, message_id)
        if target is not None:
            found.append(target)
    return found
