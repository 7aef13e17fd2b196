"""Discord's forwards: a message with no content of its own that shows a snapshot of another.

discord-api-docs resources/message.mdx, "Forwards": the snapshot is a copy of the source taken
when it was forwarded, immutable (a later edit of the source does not reach it), without the
source's author; one snapshot per forward. The source read again by id may say something else
now, or be out of the reader's sight: what the forward shows is its snapshot, never the source.

A forward addresses nobody (`addressing.is_forward`): the names and mentions in its snapshot are
not the forwarder's words, and a forwarded answer is no reply to it. Where a personality is
activated it is a turn for it (`addressees`): the user's text is `FORWARD_TURN` followed by the
snapshot's text quoted line by line (`references.forward_turn`), so that history, the memory
query, lore and fact extraction read it as any turn and the model tells it from the user's
own words; its files are the user's, read as any they attach (`request_build`). A forward
showing nothing to read (no text, no file; as every snapshot is to a bot without the
MESSAGE_CONTENT intent) is answered by nobody. Discord's client offers no edit of a forward:
an update event of one (a pin, an embed) changes nothing in history.

A comment typed with a forward in Discord's client is a message of its own (the client sends
two, the forward first: discord-api-docs issue 7574). `ForwardComments` joins them: the author's
next message in the channel that addresses a personality takes the forward into its own turn
(text and files) when Discord's ids say it was sent after the forward and within
`COMMENT_WINDOW_SECONDS` of it (`sent_with`), and it is read while the forward still waits.
Every forward showing something waits `COMMENT_HOLD_SECONDS` for that comment before anyone
is asked who answers it (no group round is planned for a forward its comment answers for).
Such a message claims the forward as soon as it is read (`claim`, before its own gateway
call): the forward waits on while a claim is open, up to `CLAIM_CAP_SECONDS` in all, until
the message takes it (it addresses someone) or lets it go (`release`: it addresses nobody,
or failed). Taken, the two get one answer, else the forward is answered itself (where a
personality is activated) and no later message takes it. A message sent before the forward
never takes it, nor does a reply to the forward. PluralKit's repost of a comment (a webhook
message its record names the original of) stands for that original: it takes the forward the
original took, or is judged by the original's id; a repost replies by an embed, not a
reference (`replied_to` reads both).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import discord

from tzurot.bot.addressing import is_forward
from tzurot.bot.proxied import reply_embed_target

K = TypeVar("K")
V = TypeVar("V")

FORWARD_TURN = "[forwarded a message]"
"""The note opening a forward's text in the user's turn (in brackets, like an attachment's)."""
COMMENT_WINDOW_SECONDS = 2.0
"""How long after a forward (by Discord's ids' times) the author's next message addressing a
personality takes it."""
COMMENT_HOLD_SECONDS = 1.5
"""How long a forward waits for the comment sent with it, before anyone is asked to answer it."""
CLAIM_CAP_SECONDS = 10.0
"""How long in all a forward waits while a possible comment claims it (its gateway call slow),
before it is answered itself."""
FORWARDS_KEPT = 1_000
"""Forwards awaiting a comment (one per channel and author), and comments that took one."""


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


def quoted(text: str) -> str:
    """`text` as a block quote, line by line (a blank line as a bare '>'): no line of it can
    pass for the user's own. At most twice its length and one (lines of one character)."""
    lines = text.splitlines() or [""]  # every line break Python knows: \r, U+2028 too
    return "\n".join(f"> {line}" if line.strip() else ">" for line in lines)


def shown_attachments(message: discord.Message) -> list[discord.Attachment]:
    """The files `message` shows: its own, and a forward's snapshot's."""
    snapshot = snapshot_of(message)
    return [*message.attachments, *(snapshot.attachments if snapshot is not None else [])]


def forwarded_by(message: discord.Message) -> str:
    """Who the forwarded text is by, as far as known: the snapshot has no author, only the
    forward has one (who forwarded it)."""
    return f"a message {message.author.display_name} forwarded"


def replied_to(message: discord.Message) -> int | None:
    """The id of the message `message` replies to: its reference's, or for a webhook message
    (PluralKit's repost, which has no reference) its reply embed's; None for no reply."""
    if message.reference is not None:
        return message.reference.message_id
    if message.webhook_id is not None and (found := reply_embed_target(message)):
        return found[1]
    return None


def sent_with(forward: discord.Message, message_id: int, window: float) -> bool:
    """Whether the message `message_id` was sent after `forward` and within `window` seconds
    of it, by Discord's ids (their times and order), not by when the bot read them."""
    if message_id <= forward.id:
        return False
    gap = discord.utils.snowflake_time(message_id) - discord.utils.snowflake_time(forward.id)
    return gap.total_seconds() <= window


@dataclass
class _Waiting:
    forward: discord.Message
    at: float
    claims: set[int] = field(default_factory=set)  # the messages that may take it, being read
    taken: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Event = field(default_factory=asyncio.Event)  # taken, or a claim let go


class ForwardComments:
    """Each author's latest forward per channel, until a comment takes it (once), its hold
    ends or `window` seconds pass; and which comment took which forward (for its edits, and
    for PluralKit's repost of it). In memory, at most `capacity` of each: a restart forgets
    them (a 🔄 after one finds the forward by its id, asked with the comment's)."""

    def __init__(
        self,
        *,
        window: float = COMMENT_WINDOW_SECONDS,
        hold: float = COMMENT_HOLD_SECONDS,
        cap: float = CLAIM_CAP_SECONDS,
        capacity: int = FORWARDS_KEPT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._window, self._hold, self._capacity, self._clock = window, hold, capacity, clock
        self._cap = max(cap, hold)
        self._claims: dict[int, _Waiting] = {}  # by the claiming message's id, while read
        self._waiting: OrderedDict[tuple[int, str], _Waiting] = OrderedDict()
        self._taken: OrderedDict[int, discord.Message] = OrderedDict()  # by comment id
        self._taken_ids: OrderedDict[int, None] = OrderedDict()  # the forwards taken

    def posted(self, message: discord.Message, user_id: str) -> None:
        """Notes `message` when it is a forward showing something (sent by `user_id`)."""
        if not is_forward_message(message) or shows_nothing(message):
            return
        _keep(
            self._waiting,
            (message.channel.id, user_id),
            _Waiting(message, self._clock()),
            self._capacity,
        )

    async def commented(self, message: discord.Message, user_id: str) -> bool:
        """For a forward, before anyone is asked who answers it: waits up to `hold` seconds
        for a comment to take it, and on (up to `cap` in all) while a message claims it (True:
        that comment answers for both; at once if one took it already). False at once for any
        other message; after the wait the forward is left to be answered itself, and no later
        comment takes it."""
        key = (message.channel.id, user_id)
        waiting = self._waiting.get(key)
        if waiting is None or waiting.forward.id != message.id:
            return message.id in self._taken_ids
        loop = asyncio.get_running_loop()
        hold_ends, cap_ends = loop.time() + self._hold, loop.time() + self._cap
        while not waiting.taken.is_set():
            ends = cap_ends if waiting.claims else hold_ends
            if loop.time() >= ends:
                break
            waiting.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiting.changed.wait(), ends - loop.time())
        if waiting.taken.is_set():
            return True
        if self._waiting.get(key) is waiting:
            del self._waiting[key]
        return False

    def claim(self, message: discord.Message, user_id: str, *, original: int = 0) -> None:
        """As soon as `message` (from `user_id`) is read, before anything is awaited: if it may
        be the comment of that author's forward waiting in the channel (no forward itself, sent
        after it and within `window`, no reply to it (`replied_to`); a repost judged by its
        `original`), the forward waits for it to `take` it or `release` it. A dict look-up: no
        other message is delayed."""
        waiting = self._waiting.get((message.channel.id, user_id))
        if waiting is None or is_forward_message(message) or waiting.taken.is_set():
            return
        if replied_to(message) == waiting.forward.id:
            return
        if sent_with(waiting.forward, original or message.id, self._window):
            waiting.claims.add(message.id)
            self._claims[message.id] = waiting

    def release(self, message: discord.Message) -> None:
        """`message` is done being read (it took its forward, addresses nobody, or failed): its
        claim ends, and a forward no other message claims is answered itself once its hold is
        over. Nothing for a message that claimed nothing."""
        waiting = self._claims.pop(message.id, None)
        if waiting is not None:
            waiting.claims.discard(message.id)
            waiting.changed.set()

    def take(
        self, message: discord.Message, user_id: str, *, original: int = 0
    ) -> discord.Message | None:
        """The forward `message` (addressing a personality, from `user_id`) was sent with:
        that author's latest in the channel, still waiting, that `message` was sent after and
        within `window` seconds of (`sent_with`), once; None for a forward (no comment), a
        message sent before it or a reply to that very forward (`replied_to`: its reference
        shows it, or PluralKit's reply embed on its repost).
        `original`: the message PluralKit reposted as `message` (its record names it), which
        is not answered: the repost takes the forward that original took, and is otherwise
        judged as sent when the original was."""
        if original:
            forward = self._taken.pop(original, None)
            if forward is not None:  # only this repost: the original's id names it
                _keep(self._taken, message.id, forward, self._capacity)
                return forward
        sent = original or message.id
        key = (message.channel.id, user_id)
        waiting = self._waiting.get(key)
        if waiting is None or is_forward_message(message) or sent <= waiting.forward.id:
            return None  # (a message sent before the forward leaves it to its own comment)
        claimed = message.id in waiting.claims  # claimed in time: its gateway call was slow
        late = not claimed and self._clock() - waiting.at > self._window
        if late or not sent_with(waiting.forward, sent, self._window):
            if not waiting.claims:  # else a message still being read may be its comment
                del self._waiting[key]
            return None
        if replied_to(message) == waiting.forward.id:
            return None
        del self._waiting[key]
        waiting.taken.set()
        waiting.changed.set()
        _keep(self._taken, message.id, waiting.forward, self._capacity)
        _keep(self._taken_ids, waiting.forward.id, None, self._capacity)
        return waiting.forward

    def taken_by(self, message_id: int) -> discord.Message | None:
        """The forward the comment `message_id` took, while remembered."""
        return self._taken.get(message_id)


def _keep(kept: OrderedDict[K, V], key: K, value: V, capacity: int) -> None:
    """Remembers `value` as the newest, forgetting the oldest beyond `capacity`."""
    kept[key] = value
    kept.move_to_end(key)
    while len(kept) > capacity:
        kept.popitem(last=False)
