"""Discord's emphasis with '_' in a message: which '_'s are markers (italics "_x_", underline
"__x__") rather than text, so that a name followed by the markers that close its emphasis is
still that name ("_waves at @Sage_" mentions Sage), while a '_' nothing opened is text
("@sage_" is a handle, not Sage).

Discord's parser descends from simple-markdown, whose italics rule is
/^\\b_((?:__|\\\\[\\s\\S]|[^\\\\_])+?)_\\b/ (its leading \\b always holds, as the rule reads the
rest of the message) and whose underline rule is /^__((?:\\\\[\\s\\S]|[^\\\\])+?)__(?!_)/,
the longer match winning where both apply. Read over the runs of '_' in one pass:

- A run of two or more closes an open underline with its last two '_' (whatever follows it).
- A run of odd length closes open italics with its last '_' when no ASCII letter or digit
  follows it (JavaScript's \\b): "_@Sage_です", "_@Sage_," close, "_@Sage_bot" does not, and
  there the italics fail (their text holds no lone '_'). An even run is text of them (pairs).
  Italics opened inside an underline close where it closes when the '_'s before its last two
  are odd ("__a _@Sage___").
- Emphasis opened after the one a run closes, inside it, ends with it, unclosed.
- A run closing nothing opens an underline when it has two or three '_' and italics when it
  has one or three (a run of two opens them only where no later run of two or more can close
  its underline). A run of four or more opens nothing: Discord reads some of those as
  emphasis of '_'s alone ("____" is italic "__").

So "__init__@Sage__" underlines "init", and "@Sage__" is text; "___@Sage___" closes both with
three '_'; "__@sage___" underlines "@sage_". A run opens after a letter too (that leading
\\b): "sage_bot_" is "sage" and italic "bot", which Discord shows as one word, "sagebot". A
backslash escapes the '_' after it ("\\_"). A
'_' in an e-mail address, a link or Discord's code (`tzurot.runtime.mention_starts.prose`) or
in a custom emoji or a command's mention ("<:pepe_laugh:1>") is no marker. Other formatting
(bold, spoilers) is not read: its bounds do not end the emphasis inside it. Tested against
simple-markdown's rules on random messages (tests/unit/gateway/test_emphasis.py)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from tzurot.runtime.mention_starts import prose

_RUN = re.compile(r"_+")
_DISCORD_TOKEN = re.compile(r"<(?:a?:\w+:|/[\w -]+:)\d+>")
"""A custom emoji ("<:pepe_laugh:1>", "<a:x:1>") or a command's mention ("</sage_chat:1>"):
Discord shows them whole."""
_LONG = 4
"""A run of this many '_' or more opens nothing."""


class Emphasis:
    """The '_' markers of one message, read once (see the module docstring)."""

    __slots__ = ("_closers", "_markers", "read")

    def __init__(self, message: str) -> None:
        self.read = prose(message)
        """The message with its e-mail addresses, links and code blanked by spaces (`prose`,
        offsets kept): where markers, and a group's names, are read."""
        self._closers: dict[int, int] = {}
        """Where each run's closing markers begin: where the last run they close begins."""
        self._markers: list[tuple[int, int]] = []
        """The markers, (start, end) in any order."""
        if "_" in self.read:
            read = self.read
            self._read(_runs(_DISCORD_TOKEN.sub(_blank, read) if "<" in read else read, message))

    def closes_at(self, pos: int, opened_before: int | None = None) -> bool:
        """Whether closing markers begin at `pos` and run to the end of their run of '_' (and
        close only emphasis opened before `opened_before`): a name ending at `pos` ends where
        its emphasis closes. "@night_owl_" is "@night" and italic "owl": the name's own '_'
        opened them, so the name, starting before it, does not end there."""
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

    def _read(self, runs: list[tuple[int, int, bool]]) -> None:
        """One pass over the runs of '_' ((start, length, whether an ASCII letter or digit
        follows))."""
        last_long = max((i for i, run in enumerate(runs) if run[1] >= 2), default=-1)
        open_ = _Open()
        for index, (start, length, word_after) in enumerate(runs):
            markers, opener = open_.close(length, word_after)
            if markers:
                self._closers[start + length - markers] = runs[opener][0]
                self._markers.append((start + length - markers, start + length))
            elif length < _LONG:
                open_.open(index, length, can_close_underline=index < last_long)
        for index, kinds in open_.closed.items():
            start, length, _word_after = runs[index]
            if len(kinds) == 2:
                self._markers.append((start, start + 3))
            elif kinds == {"underline"}:
                self._markers.append((start, start + 2))
            else:  # italics: the '_'s after their marker are pairs, text
                first = start + 1 - length % 2
                self._markers.append((first, first + 1))


class _Open:
    """The emphasis open at a point of the pass: the run that opened the italics, the one
    that opened the underline, and the runs whose emphasis closed, with what closed."""

    __slots__ = ("closed", "italics", "underline")

    def __init__(self) -> None:
        self.italics: int | None = None
        self.underline: int | None = None
        self.closed: dict[int, set[str]] = {}

    def close(self, length: int, word_after: bool) -> tuple[int, int]:
        """How many '_' at the end of a run of `length` close what is open (0: none), and
        the last run that opened what they close."""
        italics, underline = self.italics, self.underline
        odd = length % 2 == 1
        shuts_underline = underline is not None and length >= 2
        shuts_italics = False
        if italics is not None:
            if shuts_underline and underline is not None and italics >= underline:
                shuts_italics = odd  # italics inside the underline close where it does
            else:
                shuts_italics = odd and not word_after
                if odd and word_after:
                    italics = self.italics = None  # a lone '_' before a letter: they fail
        first = last = None
        for kind, opener, shut in (
            ("underline", underline, shuts_underline),
            ("italics", italics, shuts_italics),
        ):
            if shut and opener is not None:
                self.closed.setdefault(opener, set()).add(kind)
                first = opener if first is None else min(first, opener)
                last = opener if last is None else max(last, opener)
        if first is None or last is None:
            return 0, 0
        # What opened after the first that closed, inside it, ends with it.
        self.italics = None if shuts_italics or (italics or 0) > first else italics
        self.underline = None if shuts_underline or (underline or 0) > first else underline
        return 2 * shuts_underline + shuts_italics, last

    def open(self, index: int, length: int, *, can_close_underline: bool) -> None:
        """What the run `index` of `length` (one to three '_') opens, closing nothing."""
        if length >= 2 and self.underline is None:
            self.underline = index
        if self.italics is None and (length % 2 == 1 or not can_close_underline):
            self.italics = index  # a run of two: only where its underline cannot close


def _blank(token: re.Match[str]) -> str:
    return " " * len(token[0])


def _runs(text: str, message: str) -> list[tuple[int, int, bool]]:
    """The runs of '_' in `text` (`message` with what holds no markers blanked): (start,
    length, whether an ASCII letter or digit follows in `message`), without a '_' escaped by
    a backslash (an odd number of them right before it)."""
    runs: list[tuple[int, int, bool]] = []
    for run in _RUN.finditer(text):
        start, end = run.span()
        backslashes = 0
        while start - backslashes > 0 and text[start - backslashes - 1] == "\\":
            backslashes += 1
        start += backslashes % 2
        if start < end:
            after = message[end : end + 1]
            runs.append((start, end - start, after.isascii() and after.isalnum()))
    return runs
