"""Discord's formatting in a message, as pairs of markers: emphasis with '_' and with '*'
(tzurot.runtime.emphasis, the reading the gateway finds mentions by), strikethrough ("~~x~~")
and spoilers ("||x||"). Each mark is read on its own, over its runs, in one pass, as
simple-markdown's rules read it; the bounds of one kind do not end another inside it (as for
the gateway's '_'). Marks in an e-mail address, a link or Discord's code are no markers
(`tzurot.runtime.mention_starts.prose`).

- Strikethrough, /^~~(?=\\S)((?:\\\\[\\s\\S]|~(?!~)|[^\\s~\\\\]|\\s(?!~~))+?)~~/: a run of two or
  more opens it before a character that is no space (a longer run with its last three, the
  last '~' its text) and the next run of two or more closes it with its first two, the rest
  of that run opening again, unless a space comes before that run: then it fails, and that
  run may open one.
- Spoiler, Discord's /^\\|\\|([\\s\\S]+?)\\|\\|/: a run of two or more opens it (its first two,
  unless a backslash escapes the first) and the next run of two or more closes it with its
  first two, escaped or not (the rule reads no escape), the rest opening again; "|||||" is a
  spoiler of one '|'.

The bot takes the markers that held only a mention out with it (tzurot.bot.addressing);
tested against those rules on random messages (tests/unit/runtime/test_formatting.py)."""

from __future__ import annotations

import re

from tzurot.runtime.emphasis import Emphasis, Pair, escaped, space_before_at
from tzurot.runtime.mention_starts import prose

MARKS = "_*~|"
"""The marks of Discord's formatting read here."""
_TILDES = re.compile(r"~~+")
_BARS = re.compile(r"\|\|+")


def formatting_pairs(message: str) -> list[Pair]:
    """Every closed span of formatting in `message`, each kind read on its own."""
    read = prose(message)
    pairs: list[Pair] = []
    for mark in "_*":
        if mark in read:
            pairs += Emphasis(message, mark, read=read).pairs
    if "~~" in read:
        pairs += _strikethrough(read, message)
    if "||" in read:
        pairs += _spoilers(read)
    return pairs


def _strikethrough(read: str, message: str) -> list[Pair]:
    """The strikethrough in `read` (`message` with what holds no markers blanked)."""
    pairs: list[Pair] = []
    opener: tuple[int, int] | None = None
    for run in _TILDES.finditer(read):
        start, end = run.span()
        start += escaped(read, start)
        if opener is not None and end - start >= 2:
            if space_before_at(message, start):
                opener = None  # "\s(?!~~)": the text may hold no space before "~~"
            else:
                pairs.append(Pair(opener, (start, start + 2)))
                opener = None
                start += 2
        if opener is None and (
            end - start >= 3 or (end - start == 2 and not _space_at(message, end))
        ):
            at = max(start, end - 3)
            opener = (at, at + 2)
    return pairs


def _spoilers(read: str) -> list[Pair]:
    """The spoilers in `read` (a message with what holds no markers blanked)."""
    pairs: list[Pair] = []
    opener: tuple[int, int] | None = None
    for run in _BARS.finditer(read):
        start, end = run.span()
        if opener is not None:
            pairs.append(Pair(opener, (start, start + 2)))
            opener = None
            start += 2
        else:
            start += escaped(read, start)
        while end - start >= 5:  # a spoiler of one '|'
            pairs.append(Pair((start, start + 2), (start + 3, start + 5)))
            start += 5
        if end - start >= 2:
            opener = (start, start + 2)
    return pairs


def _space_at(text: str, pos: int) -> bool:
    """Whether `pos` is past the end of `text` or at a space."""
    return pos >= len(text) or text[pos].isspace()
