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

from tzurot.runtime.formatting import MARKS, formatting_pairs
from tzurot.runtime.mention_starts import MentionStarts
from tzurot.v1 import common_pb2 as common

_DISCORD_MENTION = re.compile(r"<@[!&]?\d+>")
"""How Discord writes a mention of a user (`<@id>`, `<@!id>`) or a role (`<@&id>`)."""
_MARK_RUN = re.compile(rf"([{re.escape(MARKS)}])\1*")
"""A run of one of Discord's formatting marks: italics, underline, bold, strikethrough,
spoiler."""
_BLANKS = re.compile(r"[ \t]+")


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
    nor Discord's formatting that held only mentions and spaces ("**_@Sage_** hi",
    "_@Sage @Lilith_ hi" and "__ @Sage__ hi" are "hi"); where the formatting holds more, no
    space is left inside it ("_waves at @Sage_" is "_waves at_", "_@Sage waves_" is
    "_waves_"). Which marks are formatting, and which pair, is read as Discord reads them
    (`tzurot.runtime.formatting`: the gateway's reading of '_', which found the mentions), so
    marks of other formatting stay, and stay apart: "*hi*@Sage*bye*" is two italics, "*hi*
    *bye*", not "*hibye*"; marks of formatting holding the mention and more stay together:
    "*pats **you** @Sage*" is "*pats **you***", the italics whole."""
    spaces = _Spaces(content)
    marks = _Formatting(content, spaces) if any(mark in content for mark in MARKS) else None
    removed: list[tuple[int, int]] = []
    for item in sorted(addressed, key=lambda a: a.offset):
        span = item.offset, item.offset + len(item.matched_text)
        while True:
            floor = removed[-1][1] if removed else 0
            if marks is not None:
                span = marks.unwrapped(span, floor)
            # Mentions only spaces apart are taken out together ("_@Sage @Lilith_").
            if not removed or spaces.before(span[0], floor) > floor:
                break
            span = removed.pop()[0], span[1]
        removed.append(span)
    out, cursor = [], 0
    for start, end in removed:
        out.append(content[cursor:start])
        # Marks of other formatting on both sides stay apart: "*hi*" and "*bye*", not
        # "*hi**bye*".
        glued = start > 0 and end < len(content) and content[start - 1] == content[end]
        apart = glued and marks is not None and marks.apart(start - 1, end)
        out.append(" " if apart else "")
        cursor = end
    out.append(content[cursor:])
    text = re.sub(r"[ \t]{2,}", " ", "".join(out)).strip()
    return text.lstrip(",:;").strip()


class _Spaces:
    """The runs of spaces and tabs in a message, by where each begins and where it ends: a
    span is moved over the spaces around it in one step, however often it is."""

    __slots__ = ("_begins", "_ends")

    def __init__(self, content: str) -> None:
        self._ends: dict[int, int] = {}
        self._begins: dict[int, int] = {}
        for run in _BLANKS.finditer(content):
            self._ends[run.start()] = run.end()
            self._begins[run.end()] = run.start()

    def before(self, pos: int, floor: int) -> int:
        """Where the spaces ending at `pos` (a mention's or a mark's edge) begin, not before
        `floor`."""
        return max(floor, self._begins.get(pos, pos))

    def after(self, pos: int) -> int:
        """Where the spaces beginning at `pos` (a mention's or a mark's edge) end."""
        return self._ends.get(pos, pos)


class _Formatting:
    """A message's formatting (`formatting_pairs`), by the runs of marks holding each pair's
    markers: a run's marks are alike, so a pair taken out takes its width from the side of
    each run facing its text, where an inner pair's markers are."""

    __slots__ = ("_content", "_ends", "_pairs", "_run", "_spaces", "_taking_part")

    def __init__(self, content: str, spaces: _Spaces) -> None:
        self._content = content
        self._spaces = spaces
        self._run: dict[int, int] = {}
        """Where the run of marks holding each mark begins."""
        self._ends: dict[int, int] = {}
        """Where each run ends, by where it begins."""
        for run in _MARK_RUN.finditer(content):
            self._ends[run.start()] = run.end()
            self._run.update(dict.fromkeys(range(run.start(), run.end()), run.start()))
        self._pairs: dict[tuple[int, int], list[int]] = {}
        """The width of each pair not taken out, by the runs of its opener and its closer."""
        self._taking_part: dict[int, dict[tuple[int, int], None]] = {}
        """The runs of the pairs each run holds markers of, each once: at most a few (a long
        run of '|' holds many spoilers of one '|', all within it)."""
        for pair in formatting_pairs(content):
            runs = self._run[pair.opener[0]], self._run[pair.closer[0]]
            self._pairs.setdefault(runs, []).append(pair.opener[1] - pair.opener[0])
            for at in runs:
                self._taking_part.setdefault(at, {})[runs] = None

    def unwrapped(self, span: tuple[int, int], floor: int) -> tuple[int, int]:
        """`span` (mentions) with the pairs around it that hold only it and spaces; then, in
        formatting holding more, the spaces between it and the text. Nothing before `floor`.
        Each step takes a pair out, so each character is looked at a bounded number of
        times."""
        content = self._content
        start, end = span
        while True:
            left, right = self._spaced(start, end, floor)
            if left == floor or right == len(content) or content[left - 1] != content[right]:
                break
            opener, closer = self._run.get(left - 1, -1), self._run.get(right, -1)
            widths = self._pairs.get((opener, closer))
            if not widths or left - widths[-1] < max(opener, floor):
                break
            width = widths.pop()
            start, end = left - width, right + width
        left, right = self._spaced(start, end, floor)
        opens = left > floor and self._opens_after(left - 1, right)
        if opens or self._closes_before(right, left):
            return left, right
        return start, end

    def apart(self, left: int, right: int) -> bool:
        """Whether the marks at `left` and `right`, met once what lies between them is taken
        out, are kept apart by a space. Not where either opens or closes formatting holding
        what was taken out and more whose markers touch no space on its text's side ('*'
        italics, strikethrough): a space would end it ("*pats **you** *"), the marks run
        together keep it ("*pats **you***")."""
        return (
            self._content[right] in MARKS
            and not self._opens_after(left, right, tight=True)
            and not self._closes_before(right, left + 1, tight=True)
        )

    def _spaced(self, start: int, end: int, floor: int) -> tuple[int, int]:
        """`start` and `end` moved over the spaces and tabs around them."""
        return self._spaces.before(start, floor), self._spaces.after(end)

    def _opens_after(self, at: int, pos: int, *, tight: bool = False) -> bool:
        """Whether the run of marks at `at` opens formatting closing at `pos` or after (only
        formatting touching no space, when `tight`)."""
        run = self._run.get(at)
        return run is not None and any(
            self._pairs[runs]
            and runs[0] == run
            and self._ends[runs[1]] > pos
            and (not tight or self._tight(runs))
            for runs in self._taking_part.get(run, ())
        )

    def _closes_before(self, at: int, pos: int, *, tight: bool = False) -> bool:
        """Whether the run of marks at `at` closes formatting opened before `pos` (only
        formatting touching no space, when `tight`)."""
        run = self._run.get(at)
        return run is not None and any(
            self._pairs[runs]
            and runs[1] == run
            and runs[0] < pos
            and (not tight or self._tight(runs))
            for runs in self._taking_part.get(run, ())
        )

    def _tight(self, runs: tuple[int, int]) -> bool:
        """Whether the pairs of `runs` hold formatting whose markers touch no space on its
        text's side: '*' italics (simple-markdown's em rule) and strikethrough."""
        mark = self._content[runs[0]]
        return mark == "~" or (mark == "*" and 1 in self._pairs[runs])


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
