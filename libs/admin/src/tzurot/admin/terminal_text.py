"""Text from the mesh made safe to print: no terminal control reaches the screen.

Answers, reasoning, names and the mesh's error messages are written by a model or by other
users; printed raw, an escape sequence in them would drive the terminal (clear the screen,
set its title, write the clipboard with OSC 52, make a link with OSC 8, hide a line behind
a carriage return). Everything `tzurot` and `tzurot admin` print of them goes through here
(it lives in tzurot-admin, which the CLI depends on, so both can use it): escape sequences
(CSI, OSC, DCS, SOS, PM, APC, in their 7-bit and 8-bit forms, and two-character ESC
sequences) are removed whole, and any other C0 control but newline and tab, DEL and every C1
control are removed. Every other character (any script, emoji and their joiners) is kept.

`one_line` (names, footers, error messages) also removes the bidirectional controls
(embeddings, overrides, isolates and direction marks): one there would reorder the rest of
a line the CLI composes, e.g. `Name> ` or `[code] message`. `printable` keeps them: an
answer in Hebrew or Arabic needs its marks and isolates to show mixed text the right way,
and their effect ends with the answer's own line.

An answer arrives in chunks, and a sequence may be cut between two: `StreamFilter` holds back
an unfinished one until the next chunk says what it is. Whatever is held, no control
character can pass (each is removed on its own too); holding only spares the screen the
sequence's printable remains.
"""

from __future__ import annotations

import re

_STRING_STARTS = "\x90\x98\x9d\x9e\x9f"
"""DCS, SOS, OSC, PM, APC in their 8-bit (C1) form; ESC P, X, ], ^, _ in the 7-bit one."""
_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"  # CSI: parameters, intermediates, a final byte
    r"|(?:\x1b[P\]X^_]|[" + _STRING_STARTS + r"])"  # a control string (OSC 8, OSC 52 …)
    r"[^\x07\x1b\x9c\n]*(?:\x07|\x1b\\|\x9c)?"  # … to BEL or ST (unfinished: the line's end)
    r"|\x1b[ -/]*[0-~]"  # ESC, intermediates, a final byte (ESC c resets the terminal)
    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f]"  # any other control, \r included; \t and \n stay
)
_UNFINISHED = re.compile(
    r"\x1b"
    r"|\x1b[ -/]+"
    r"|(?:\x1b\[|\x9b)[0-?]*[ -/]*"
    r"|(?:\x1b[P\]X^_]|[" + _STRING_STARTS + r"])[^\x07\x1b\x9c\n]*\x1b?"
)
"""The start of a sequence that the next chunk may finish. None holds BEL, ST (0x9c) or a
newline, nor an ESC but at its start or (a control string's) end; past its first two
characters, what may follow depends on its last character only."""
_STARTS = re.compile(r"[\x1b\x9b" + _STRING_STARTS + r"]")
MAX_HELD_CHARS = 4096
"""The longest unfinished sequence held back; a longer one is cleaned as it is."""
_LINE_BREAKS = re.compile(r"[\t\n\u2028\u2029]+")
_BIDI_CONTROLS = re.compile(r"[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
"""Arabic letter mark, LRM, RLM, embeddings and overrides (LRE … RLO), isolates (LRI … PDI)."""


def printable(text: str) -> str:
    """`text` without escape sequences or control characters (newlines and tabs kept)."""
    return _SEQUENCE.sub("", text)


def one_line(text: str) -> str:
    """`printable(text)` on one line and without bidirectional controls: line breaks and tabs
    become a space (names, footers, error messages: a newline there could forge a line of the
    CLI's own, a direction override reorder it)."""
    return _LINE_BREAKS.sub(" ", _BIDI_CONTROLS.sub("", printable(text)))


def _shortened(sequence: str) -> str:
    """An unfinished sequence cut to its first two characters and its last: the same to
    `_UNFINISHED` for whatever follows (what lies between is parameters or a control string's
    body, none of which changes what may come next)."""
    return sequence if len(sequence) <= 3 else sequence[:2] + sequence[-1]


class StreamFilter:
    """`printable` for text that arrives in pieces (an answer's chunks): `feed` each piece,
    print what it returns; `finish` at the end returns what was held back, cleaned.

    Each character is looked at a bounded number of times, however the stream is cut: a
    piece is matched against the held sequence's `_shortened` form, never the whole of it,
    and only from the last place a sequence can start (after the last BEL, ST or newline,
    not before the last ESC but a final one)."""

    def __init__(self) -> None:
        self._held: list[str] = []
        """The unfinished sequence held back, in the pieces it came in."""
        self._held_chars = 0
        self._probe = ""
        """`_shortened` of the held sequence."""

    def feed(self, piece: str) -> str:
        if not piece:
            return ""
        base = self._held_chars
        floor = self._floor(piece, base)
        if (
            base
            and floor == 0
            and base + len(piece) <= MAX_HELD_CHARS
            and _UNFINISHED.fullmatch(self._probe + piece)
        ):
            self._held.append(piece)  # still unfinished: hold it all
            self._held_chars += len(piece)
            self._probe = _shortened(self._probe + piece)
            return ""
        text = "".join(self._held) + piece
        self._held, self._held_chars, self._probe = [], 0, ""
        # Nothing before `floor` can start one; past the held sequence's first character,
        # none can either (it holds no start, or the piece ends every sequence from there).
        first = max(floor or base, len(text) - MAX_HELD_CHARS)
        for found in _STARTS.finditer(text, first):
            if _UNFINISHED.fullmatch(text, found.start()):
                text, held = text[: found.start()], text[found.start() :]
                self._held, self._held_chars, self._probe = [held], len(held), _shortened(held)
                break
        return printable(text)

    def _floor(self, piece: str, base: int) -> int:
        """Where in held + `piece` (the held sequence `base` characters long) an unfinished
        sequence may start at the earliest: after the last BEL, ST or newline, and at the last
        ESC that is not the final character."""
        floor = 0
        after_break = 1 + max(piece.rfind("\x07"), piece.rfind("\x9c"), piece.rfind("\n"))
        if after_break:
            floor = base + after_break
        escape = piece.rfind("\x1b", 0, len(piece) - 1)
        if escape >= 0:
            floor = max(floor, base + escape)
        elif self._probe.endswith("\x1b"):  # the held sequence's final ESC is final no more
            floor = max(floor, base - 1)
        return floor

    def finish(self) -> str:
        text = "".join(self._held)
        self._held, self._held_chars, self._probe = [], 0, ""
        return printable(text)
