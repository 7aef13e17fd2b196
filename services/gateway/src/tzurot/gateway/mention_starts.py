"""Where an '@' starts no personality's mention, whatever name follows it (`find_mentions`):
in an e-mail address (ada@sage.org), in a link (https://mastodon.social/@sage,
youtube.com/@sage) and in Discord's code (`@Sage hi`, a code block's `@app.route`), which
Discord itself never reads a mention in. Asked only at an '@' a name follows, so a message
pays for them only where it would mention someone."""

from __future__ import annotations

import bisect
import re
import string

# The twin of the bot's e-mail rule (tzurot.bot.addressing `_in_email`, for its
# gateway-away notice): services do not import each other, so a change here goes there too.
_EMAIL_LOCAL = frozenset(string.ascii_letters + string.digits + "._%+-")
"""A character an e-mail address's local part may end with (ASCII)."""
_EMAIL_DOMAIN = re.compile(r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+\b")
"""An e-mail address's domain, with at least one dot."""
_BARE_LINK = re.compile(r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/")
"""A link written without its scheme begins so: a dotted domain, then its path."""
_OPENING = "(<[\"'"
"""What may come before a link's first character in a sentence: "(youtube.com/@sage)"."""
_BACKTICKS = re.compile(r"`+")


def in_email(text: str, at: int) -> bool:
    """Whether the '@' at `at` is an e-mail address's: an ASCII local part right before it,
    a dotted domain right after it ("ada@sage.org", not "ねえ@Sage" nor "@Sage.")."""
    return bool(at and text[at - 1] in _EMAIL_LOCAL and _EMAIL_DOMAIN.match(text, at + 1))


def in_link(text: str, at: int) -> bool:
    """Whether the '@' at `at` is inside a link: the word it is in (back to a whitespace) has
    a scheme's "://" before it, or begins with a dotted domain and a '/'. "@Lilith/@Sage"
    mentions both."""
    if not at or text[at - 1].isspace():
        return False
    word = text[:at].rsplit(None, 1)[-1]
    return "://" in word or _BARE_LINK.match(word.lstrip(_OPENING)) is not None


def code_spans(text: str) -> list[tuple[int, int]]:
    """Discord's inline code and code blocks in `text`, (start, end) in order: a run of
    backticks up to the next run of as many (`x`, ``x``, ```block```); a run without one is
    literal, and a backtick after a backslash is too (outside code). Linear in the runs."""
    runs = [(m.start(), m.end() - m.start()) for m in _BACKTICKS.finditer(text)]
    if len(runs) < 2:
        return []
    by_length: dict[int, list[int]] = {}
    for index, (_start, length) in enumerate(runs):
        by_length.setdefault(length, []).append(index)
    spans: list[tuple[int, int]] = []
    index = 0
    while index < len(runs):
        start, length = runs[index]
        if start and text[start - 1] == "\\":  # an escaped backtick opens nothing
            start, length = start + 1, length - 1
        same = by_length.get(length, [])
        after = bisect.bisect_right(same, index)
        if length and after < len(same):
            closing = same[after]
            spans.append((start, runs[closing][0] + length))
            index = closing + 1
        else:
            index += 1
    return spans


class MentionStarts:
    """Which '@'s of one message may start a mention. What the message lacks is never
    looked for (a link without a '/', code without a '`'); its code spans are found once,
    when first asked."""

    __slots__ = ("_code_ends", "_code_starts", "_has_code", "_has_slash", "_text")

    def __init__(self, text: str) -> None:
        self._text = text
        self._has_slash = "/" in text
        self._has_code = "`" in text
        self._code_starts: list[int] = []
        self._code_ends: list[int] | None = None

    def may_start(self, at: int) -> bool:
        """Whether the '@' at `at` (in the text as written) may start a mention."""
        text = self._text
        return not (
            in_email(text, at)
            or (self._has_slash and in_link(text, at))
            or (self._has_code and self._in_code(at))
        )

    def _in_code(self, at: int) -> bool:
        if self._code_ends is None:
            spans = code_spans(self._text)
            self._code_starts = [start for start, _end in spans]
            self._code_ends = [end for _start, end in spans]
        index = bisect.bisect_right(self._code_starts, at) - 1
        return index >= 0 and at < self._code_ends[index]
