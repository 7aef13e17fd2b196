"""Whether an answer can be delivered in a channel, checked before anything is paid for, and
what to tell the user when Discord refuses a post.

Personalities post through a webhook: the channel must be able to hold one (text, voice, stage
chats, threads and forum posts; not a forum itself, not a category or a DM), and the bot needs
View Channel, Manage Webhooks and Send Messages (Send Messages in Threads in a thread) there. A
403 from Discord, or a channel Discord no longer knows (10003: deleted), is remembered per
channel for a while, so no generation is started for a channel the bot cannot post in.

Locked and archived threads (discord-api-docs topics/threads.mdx): in a locked thread, users and
bot users without Manage Threads "won't be able to create or update messages"; the bot asks for
no Manage Threads, so a locked thread is closed to it (`locked_thread`): nothing is generated
there, and nothing can be told there either. In an archived thread nobody edits a message
(50083), and a message sent there unarchives it: an answer whose thread a moderator closes while
it streams stops where it was, and no notice reopens the thread (answer_endings.py
`AnswerEndings._refused`, `ThreadArchived`).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import discord

from tzurot.bot.webhooks import UNKNOWN_MESSAGE, webhook_channel

MISSING_ACCESS, MISSING_PERMISSIONS = 50001, 50013
UNKNOWN_CHANNEL, INVALID_FORM = 10003, 50035
THREAD_ARCHIVED, THREAD_LOCKED = 50083, 160005
CLOSED_THREAD_CODES = frozenset({THREAD_ARCHIVED, THREAD_LOCKED})
"""Discord's refusals in a thread a moderator closed (archived) or locked."""
LOCKED_THREAD = (
    "This thread is locked: only moderators (**Manage Threads**) can post in it, so I can't "
    "answer here."
)


class ThreadArchived(discord.HTTPException):
    """The bot's own refusal (not Discord's) of a new message in a thread Discord's gateway
    said is archived now (THREAD_UPDATE): Discord would take the message and unarchive the
    thread a moderator just closed. It
    carries Discord's code for an archived thread (50083), so it is handled as Discord's
    refusal of an edit there is (no HTTP status: nothing was asked)."""

    def __init__(self, thread_id: int) -> None:
        discord.DiscordException.__init__(self, f"thread {thread_id} is archived")
        self.response = None  # type: ignore[assignment]  # no request was made
        self.status, self.code = 0, THREAD_ARCHIVED
        self.text, self._errors = "Thread is archived", None


def locked_thread(channel: object) -> bool:
    """Whether `channel` is a thread locked to the bot: locked, and the bot lacks Manage
    Threads there (its permissions not cached yet: taken as lacking). discord.py's
    `Thread.locked` is set for a thread closed and locked too."""
    if not isinstance(channel, discord.Thread) or not channel.locked:
        return False
    me = channel.guild.me
    return me is None or not channel.permissions_for(me).manage_threads


def archived_thread(channel: object) -> bool:
    """Whether `channel` is a thread archived now (as Discord's THREAD_UPDATE left the object
    the bot holds; discord.py updates it in place)."""
    return isinstance(channel, discord.Thread) and channel.archived


def channel_key(channel: object) -> int:
    """The channel's id (0 for an object without one): the key of per-channel state."""
    return int(getattr(channel, "id", 0))


def delivery_problem(channel: object) -> str | None:
    """Why answers cannot be posted in `channel` (a short sentence for the user), or None.
    A locked thread's (`LOCKED_THREAD`) cannot be told there: Discord refuses the bot's own
    message too."""
    try:
        parent, thread = webhook_channel(channel)
    except TypeError:
        return "Personalities cannot post in this kind of channel (no webhooks here)."
    if locked_thread(channel):
        return LOCKED_THREAD
    me = parent.guild.me
    if me is None:
        return None  # not cached yet: let Discord decide
    perms = (thread or parent).permissions_for(me)
    missing = []
    if not perms.view_channel:
        missing.append("View Channel")
    if not parent.permissions_for(me).manage_webhooks:
        missing.append("Manage Webhooks")
    if thread is not None and not perms.send_messages_in_threads:
        missing.append("Send Messages in Threads")
    if thread is None and not perms.send_messages:
        missing.append("Send Messages")
    if missing:
        return (
            "I can't post answers here: I need the "
            + ", ".join(f"**{m}**" for m in missing)
            + " permission. A server admin can grant it in the channel settings."
        )
    return None


def refusal_text(exc: discord.HTTPException) -> str:  # noqa: PLR0911  # one early return per refusal reads best
    """What the user reads when Discord refused to post (part of) an answer."""
    if exc.code == UNKNOWN_CHANNEL:  # 404, or 400 for a webhook's thread_id
        return "This channel was deleted while I was answering."
    if exc.status == 403:
        return (
            "Discord refused to let me post here (missing permissions). A server admin can "
            "check my permissions in this channel."
        )
    if exc.status == 404 and exc.code == UNKNOWN_MESSAGE:
        return "The answer's message was deleted while it was being written, so I stopped."
    if exc.status == 404:
        return "This channel's webhook disappeared while I was answering; try again."
    if exc.status == 429:
        return "Discord is rate limiting this channel; the answer was cut short. Try again soon."
    if exc.status == 400:
        return "Discord refused the answer's message as invalid, so it was not posted in full."
    return "Discord could not take the answer right now; try again shortly."


class ForbiddenChannels:
    """Channels where Discord answered 403 (or Unknown Channel), remembered for `ttl` s."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl, self._clock = ttl, clock
        self._until: dict[int, float] = {}

    def remember(self, channel_id: int) -> None:
        self._until[channel_id] = self._clock() + self._ttl

    def forget(self, channel_id: int) -> None:
        self._until.pop(channel_id, None)

    def __contains__(self, channel_id: object) -> bool:
        until = self._until.get(channel_id)  # type: ignore[call-overload]
        if until is None:
            return False
        if self._clock() >= until:
            del self._until[channel_id]  # type: ignore[arg-type]
            return False
        return True
