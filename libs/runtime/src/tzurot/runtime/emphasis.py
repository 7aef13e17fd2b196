"""Discord's emphasis in a message, written with '_' (italics "_x_", underline "__x__") or with
'*' (italics "*x*", bold "**x**"): which marks are markers rather than text, and which pair.
The gateway reads '_' so that a name followed by the markers that close its emphasis is still
that name ("_waves at @Sage_" mentions Sage), while a '_' nothing opened is text ("@sage_" is a
handle, not Sage); the bot reads both marks to take out the markers that held only a mention
(tzurot.runtime.formatting). One reading for both, so they agree on what is emphasis.

Discord's parser descends from simple-markdown, whose italics rule is
/^\\b_((?:__|\\\\[\\s\\S]|[^\\\\_])+?)_\\b/ (its leading \\b always holds, as the rule reads the
rest of the message) or
/^\\*(?=\\S)((?:\\*\\*|\\\\[\\s\\S]|\\s+(?:\\\\[\\s\\S]|[^\\s\\*\\\\]|\\*\\*)|[^\\s\\*\\\\])+?)\\*(?!\\*)/,
whose underline rule is /^__((?:\\\\[\\s\\S]|[^\\\\])+?)__(?!_)/ and whose bold rule is the same
with '*', the longer match winning where two apply (italics on a tie). Read over the runs of
one mark in one pass:

- A run of two or more closes an open underline (bold) with its last two marks (whatever
  follows it).
- A run of odd length closes open italics with its last mark, but not '_' before an ASCII
  letter or digit (JavaScript's \\b): "_@Sage_です", "_@Sage_," close, "_@Sage_bot" does not,
  and there the italics fail (their text holds no lone mark); nor a lone '*' after a space
  (inside '*' italics a space is followed by no lone '*'): "*a *b" fails too. An even run is
  text of them (pairs). Italics opened inside an underline close where it closes when the
  marks before its last two are odd ("__a _@Sage___"), but not '*' italics ending in a space
  ("**a *b ***").
- Emphasis opened after the one a run closes, inside it, ends with it, unclosed.
- A run closing nothing opens an underline when it has two or three marks and italics when it
  has one or three (a run of two opens them only where no later run of two or more can close
  its underline; '*' italics only before a character that is no space, so "*** " opens
  italics that can hold its bold but not be held by it: "*** a* b**" is bold). A run of four or more
  opens nothing: Discord reads some of those as emphasis of marks alone ("____" is italic
  "__", and "____@Sage__" underlines "__@Sage").

So "__init__@Sage__" underlines "init", and "@Sage__" is text; "___@Sage___" closes both with
three '_'; "__@sage___" underlines "@sage_"; "*hi*@Sage*bye*" is two italics. A run opens after
a letter too (that leading \\b): "sage_bot_" is "sage" and italic "bot", which Discord shows as
one word, "sagebot". A backslash escapes the mark after it ("\\_"). A mark in an e-mail
address, a link or Discord's code (`tzurot.runtime.mention_starts.prose`) or in a custom emoji
or a command's mention ("<:pepe_laugh:1>") is no marker. Other formatting (the other mark,
strikethrough, spoilers) is not read: its bounds do not end the emphasis inside it. Tested
against simple-markdown's rules on random messages (tests/unit/runtime/test_emphasis.py for
'_', test_formatting.py for both)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

from tzurot.runtime.mention_starts import prose

_RUNS = {"_": re.compile(r"_+"), "*": re.compile(r"\*+")}
_DISCORD_TOKEN = re.compile(r"<(?:a?:\w+:|/[\w -]+:)\d+>")
"""A custom emoji ("<:pepe_laugh:1>", "<a:x:1>") or a command's mention ("</sage_chat:1>"):
Discord shows them whole."""
_LONG = 4
"""A run of this many marks or more opens nothing."""
_WIDTH = {"italics": 1, "underline": 2}


class Pair(NamedTuple):
    """One span of formatting: where its opening markers are, and its closing ones."""

    opener: tuple[int, int]
    closer: tuple[int, int]


class _Run(NamedTuple):
    """A run of one mark, with what its neighbours allow."""

    start: int
    length: int
    lone_fails: bool
    """Its last mark cannot close italics opened before it, which then fail ('_' before an
    ASCII letter or digit, a lone '*' after a space)."""
    inner_fails: bool
    """Italics opened inside an underline cannot close with it ("***" after a space)."""
    shut: bool
    """Italics cannot open at its last mark ('*' before a space or the end)."""


class Emphasis:
    """The markers of one mark ('_' unless told) in one message, read once (see the module
    docstring)."""

    __slots__ = ("_closers", "_markers", "pairs", "read")

    def __init__(self, message: str, mark: str = "_", *, read: str | None = None) -> None:
        self.read = prose(message) if read is None else read
        """The message with its e-mail addresses, links and code blanked by spaces (`prose`,
        offsets kept; given when already made): where markers, and a group's names, are
        read."""
        self._closers: dict[int, int] = {}
        """Where each run's closing markers begin: where the last run they close begins."""
        self._markers: list[tuple[int, int]] = []
        """The markers, (start, end) in any order."""
        self.pairs: list[Pair] = []
        """Each emphasis closed, with its markers: an inner one's next to its text."""
        if mark in self.read:
            read = self.read
            text = _DISCORD_TOKEN.sub(_blank, read) if "<" in read else read
            self._read(_runs(text, message, mark))

    def closes_at(self, pos: int, opened_before: int | None = None) -> bool:
        """Whether closing markers begin at `pos` and run to the end of their run of marks
        (and close only emphasis opened before `opened_before`): a name ending at `pos` ends
        where its emphasis closes. "@night_owl_" is "@night" and italic "owl": the name's own
        '_' opened them, so the name, starting before it, does not end there."""
        opened = self._closers.get(pos)
        return opened is not None and (opened_before is None or opened < opened_before)

    def shown(self) -> tuple[str, Sequence[int]]:
        """`read` without its markers, as Discord shows it ("sage_bot_" is "sagebot", one
        word), and where each of its characters is in `read`."""
        if not self._markers:
            return self.read, range(len(self.read))
        pieces: list[str] = []
        where: list[int] = []
        cursor = 0
        for start, end in sorted(self._markers):
            pieces.append(self.read[cursor:start])
            where += range(cursor, start)
            cursor = end
        pieces.append(self.read[cursor:])
        where += range(cursor, len(self.read))
        return "".join(pieces), where

    def _read(self, runs: list[_Run]) -> None:
        """One pass over the runs of the mark."""
        last_long = max((i for i, run in enumerate(runs) if run.length >= 2), default=-1)
        open_ = _Open()
        closed: dict[int, list[tuple[str, tuple[int, int]]]] = {}
        """For each run that opened emphasis closed later: what, and its closing markers."""
        for index, run in enumerate(runs):
            shut = open_.close(run, underline_closes_later=index < last_long)
            if shut:
                end = run.start + run.length
                at = end - sum(_WIDTH[kind] for kind, _opener in shut)
                self._closers[at] = runs[max(opener for _kind, opener in shut)].start
                self._markers.append((at, end))
                for kind, opener in shut:  # the inner one first
                    closed.setdefault(opener, []).append((kind, (at, at + _WIDTH[kind])))
                    at += _WIDTH[kind]
            elif run.length < _LONG:
                open_.open(index, run, can_close_underline=index < last_long)
        for index, kinds in closed.items():
            start, length = runs[index].start, runs[index].length
            if len(kinds) == 2:
                self._markers.append((start, start + 3))
                at = start
                for kind, closer in sorted(kinds, key=lambda item: -item[1][0]):  # outer first
                    self.pairs.append(Pair((at, at + _WIDTH[kind]), closer))
                    at += _WIDTH[kind]
                continue
            ((kind, closer),) = kinds
            if kind == "underline":
                first, width = start, 2
            else:  # italics: the marks after their marker are pairs, text
                first, width = start + 1 - length % 2, 1
            self._markers.append((first, first + width))
            self.pairs.append(Pair((first, first + width), closer))


class _Open:
    """The emphasis open at a point of the pass: the run that opened the italics, the one
    that opened the underline."""

    __slots__ = ("italics", "outer_only", "underline")

    def __init__(self) -> None:
        self.italics: int | None = None
        self.underline: int | None = None
        self.outer_only = False
        """The italics open can only hold the underline opened with them, not be held by
        it: "*** " opens them with its first '*', and inside its bold a '*' before a space
        opens none."""

    def close(self, run: _Run, *, underline_closes_later: bool) -> list[tuple[str, int]]:
        """What `run` closes ("underline", "italics"), the inner one first, each with the
        run that opened it; nothing when it closes nothing."""
        italics, underline = self.italics, self.underline
        odd = run.length % 2 == 1
        shuts_underline = underline is not None and run.length >= 2
        shuts_italics = False
        if italics is not None:
            if shuts_underline and underline is not None and italics >= underline:
                # Italics inside the underline close where it does.
                shuts_italics = odd and not (run.inner_fails and italics > underline)
            else:
                # Closing before the underline opened with them closes, they would be the
                # shorter, inside it.
                inside = self.outer_only and italics == underline and underline_closes_later
                shuts_italics = odd and not run.lone_fails and not inside
                if odd and not shuts_italics:
                    italics = self.italics = None  # they fail: a lone mark they cannot hold
        shut = [
            (kind, opener)
            for kind, opener, shuts in (
                ("underline", underline, shuts_underline),
                ("italics", italics, shuts_italics),
            )
            if shuts and opener is not None
        ]
        if not shut:
            return []
        first = min(opener for _kind, opener in shut)
        # What opened after the first that closed, inside it, ends with it.
        self.italics = None if shuts_italics or (italics or 0) > first else italics
        self.underline = None if shuts_underline or (underline or 0) > first else underline
        # The inner one opened later; of two opened by one run, the underline (italics win a
        # tie of lengths, so they hold it), unless the italics could not close last.
        return sorted(shut, key=lambda item: (-item[1], (item[0] == "italics") != run.lone_fails))

    def open(self, index: int, run: _Run, *, can_close_underline: bool) -> None:
        """What the run `index` (one to three marks) opens, closing nothing."""
        if run.length >= 2 and self.underline is None:
            self.underline = index
        # A run of two opens italics only where its underline cannot close.
        odd_or_alone = run.length % 2 == 1 or not can_close_underline
        if self.italics is None and odd_or_alone and (run.length == 3 or not run.shut):
            self.italics = index
            self.outer_only = run.shut


def _blank(token: re.Match[str]) -> str:
    return " " * len(token[0])


def _runs(text: str, message: str, mark: str) -> list[_Run]:
    """The runs of `mark` in `text` (`message` with what holds no markers blanked), without
    a mark escaped by a backslash (an odd number of them right before it), each with what the
    characters around it in `message` allow."""
    runs: list[_Run] = []
    for run in _RUNS[mark].finditer(text):
        start, end = run.span()
        start += escaped(text, start)
        if start == end:
            continue
        length = end - start
        if mark == "_":
            after = message[end : end + 1]
            word_after = after.isascii() and after.isalnum()
            runs.append(_Run(start, length, word_after, inner_fails=False, shut=False))
            continue
        space_before = space_before_at(message, start)
        space_after = end == len(message) or message[end].isspace()
        runs.append(
            _Run(
                start,
                length,
                lone_fails=length == 1 and space_before,
                inner_fails=length == 3 and space_before,
                shut=space_after,
            )
        )
    return runs


def escaped(text: str, pos: int) -> int:
    """1 when the character at `pos` is escaped (an odd number of backslashes right before
    it), else 0."""
    backslashes = 0
    while pos - backslashes > 0 and text[pos - backslashes - 1] == "\\":
        backslashes += 1
    return backslashes % 2


def space_before_at(message: str, pos: int) -> bool:
    """Whether a space no backslash escapes comes right before `pos`."""
    return pos > 0 and message[pos - 1].isspace() and not escaped(message, pos - 1)
