"""What the bot does with whom a message addresses: the mentions the gateway found
(ResolveMentions, which alone knows the names, aliases and their rules) taken out of the text
the model reads, and whom a reply addresses.

A reply to one of our answers addresses the personality the answer was posted as, only while
the gateway still finds it for the replying user (`reply_addressee`). A forward is no reply:
it shows a message somewhere else, addressing nobody (`is_forward`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import discord

from tzurot.runtime.mention_starts import MentionStarts
from tzurot.v1 import common_pb2 as common

_DISCORD_MENTION = re.compile(r"<@[!&]?\d+>")
"""How Discord writes a mention of a user (`<@id>`, `<@!id>`) or a role (`<@&id>`)."""
_MARKS = "_*~|"
"""Discord's formatting marks: italics, underline, bold, strikethrough, spoiler."""
_OPENING = _MARKS + "([{"
"""What may come right before formatting that opens: its marks, an opening bracket."""


@dataclass(frozen=True)
class Addressed:
    personality: common.Personality
    matched_text: str
    offset: int


@dataclass(frozen=True)
class PostedAs:
    """Whom one of our webhook messages was posted as: the personality's id when the bot
    knows it (this process posted it, or the job that posted it names it; "" for a message
    without a job, a greeting) and the name to ask the gateway for now."""

    personality_id: str
    name: str


def strip_mentions(content: str, addressed: Sequence[Addressed]) -> str:
    """The content without the mention texts (so the model reads "hi", not "@Lilith hi"),
    nor Discord's formatting marks that held only mentions and spaces ("**_@Sage_** hi",
    "_@Sage @Lilith_ hi" and "__ @Sage__ hi" are "hi"); where the formatting holds more, no
    space is left inside it ("_waves at @Sage_" is "_waves at_", "_@Sage waves_" is
    "_waves_")."""
    removed: list[tuple[int, int]] = []
    for item in sorted(addressed, key=lambda a: a.offset):
        floor = removed[-1][1] if removed else 0
        span = _unwrapped(content, item.offset, item.offset + len(item.matched_text), floor)
        # Mentions only spaces apart are unwrapped together ("_@Sage @Lilith_"), where that
        # takes marks or spaces around them: else the spaces between them stay.
        while removed and not content[removed[-1][1] : span[0]].strip(" \t"):
            first = removed[-1][0]
            floor = removed[-2][1] if len(removed) > 1 else 0
            together = _unwrapped(content, first, span[1], floor)
            if together == (first, span[1]):
                break
            removed.pop()
            span = together
        removed.append(span)
    out, cursor = [], 0
    for start, end in removed:
        out.append(content[cursor:start])
        cursor = end
    out.append(content[cursor:])
    text = re.sub(r"[ \t]{2,}", " ", "".join(out)).strip()
    return text.lstrip(",:;").strip()


def _unwrapped(content: str, start: int, end: int, floor: int) -> tuple[int, int]:
    """The mentions at content[start:end] with the marks around them that held only them
    and spaces (`_paired`), and the spaces between them and the marks that open or close
    formatting holding more (no letter or digit on their far side); nothing before
    `floor`. Each character is looked at a bounded number of times."""
    start, end = _paired(content, start, end, floor)
    if end < len(content) and (mark := content[end]) in _MARKS:
        after = end
        while after < len(content) and content[after] == mark:
            after += 1
        if after == len(content) or not content[after].isalnum():
            while start > floor and content[start - 1] in " \t":
                start -= 1
            return start, end
    if start > floor and (mark := content[start - 1]) in _MARKS:
        before = start - 1
        while before > 0 and content[before - 1] == mark:
            before -= 1
        if before == 0 or not content[before - 1].isalnum():
            while end < len(content) and content[end] in " \t":
                end += 1
    return start, end


def _paired(content: str, start: int, end: int, floor: int) -> tuple[int, int]:
    """content[start:end] with the runs of one mark on each side that pair around it. Runs
    of one length touching it pair as they are; spaces between, or runs of two lengths, only
    where the runs look like an opener and a closer (after a space, a mark, an opening
    bracket or nothing; before no letter nor digit), so "*hi* @Sage *bye*" and "*!* @Sage*"
    keep theirs. Of runs of two lengths, as many as the shorter has ("__@Sage_" is "_" and
    italic "@Sage")."""
    while True:
        left, right = start, end
        while left > floor and content[left - 1] in " \t":
            left -= 1
        while right < len(content) and content[right] in " \t":
            right += 1
        if left == floor or right == len(content):
            return start, end
        mark = content[left - 1]
        if mark not in _MARKS or content[right] != mark:
            return start, end
        before, after = left - 1, right + 1
        while before > floor and content[before - 1] == mark:
            before -= 1
        while after < len(content) and content[after] == mark:
            after += 1
        plain = left == start and right == end and left - before == after - right
        if not plain and not (
            (before == floor or content[before - 1] in _OPENING or content[before - 1].isspace())
            and (after == len(content) or not content[after].isalnum())
        ):
            return start, end
        width = min(left - before, after - right)
        start, end = left - width, right + width
        if left - before != after - right:
            return start, end  # the rest of the longer run is no pair's


def reply_addressee(posted: PostedAs, now: common.Personality | None) -> common.Personality | None:
    """Whom a reply to a message posted as `posted` addresses: that personality as the gateway
    finds `posted.name` for the replying user now (`now`). Nobody when the gateway finds none
    (deleted, being deleted, or someone else's private one: the gateway answers all three
    alike, and so does the reply) or when the name now means another personality (a new one
    on a freed slug, an alias): a reply never reaches a personality its message was not posted
    as, and nothing is posted under the name of one that is gone. The message is then
    addressed as if it replied to nothing (the channel's activation, if any)."""
    if now is None:
        return None
    if posted.personality_id and now.id != posted.personality_id:
        return None
    return now


def is_forward(reference: discord.MessageReference) -> bool:
    """Whether a message's reference is a forward's (Discord's "Forward", which shows the
    message in another channel or DM), not a reply's: forwarding an answer addresses nobody."""
    return reference.type is discord.MessageReferenceType.forward


def may_mention(content: str) -> bool:
    """Whether `content` has an '@' that may start a personality's mention, told without the
    names: where the gateway starts reading a name (tzurot.gateway.mentions), a word may
    follow the '@' (not a space, nor the end). Not an '@' of Discord's own mentions (a user
    `<@id>`, `<@!id>`, a role `<@&id>`), nor one the gateway reads no name after: in an
    e-mail address (ada@example.com), a link (https://mastodon.social/@sage,
    youtube.com/@sage), Discord's code (`@Sage hi`) or its ping of everybody (`@everyone`,
    `@here`: lowercase, a whole word; "@Everyone's Friend" may be a personality), by the
    rules the gateway uses (tzurot.runtime.mention_starts, one copy for both). Any
    other '@' counts, right after a word or not ("ねえ@Lilith", "__@Lilith__" in Discord's
    underline). Only for the gateway-away notice: a message is told the gateway is
    restarting only when it may have meant a personality, never for a human pinging
    another."""
    text = _DISCORD_MENTION.sub(" ", content) if "<@" in content else content
    starts = MentionStarts(text)
    start = text.find("@")
    while start != -1:
        if text[start + 1 : start + 2].strip() and starts.may_start(start):
            return True
        start = text.find("@", start + 1)
    return False
