"""Text from the mesh made safe to print: no terminal control reaches the screen.

Answers, reasoning, names and the mesh's error messages are written by a model or by other
users; printed raw, an escape sequence in them would drive the terminal (clear the screen,
set its title, write the clipboard with OSC 52, make a link with OSC 8, hide a line behind
a carriage return). Everything the CLI prints of them goes through here: escape sequences
(CSI, OSC, DCS, SOS, PM, APC, in their 7-bit and 8-bit forms, and two-character ESC
sequences) are removed whole, and any other C0 control but newline and tab, DEL and every C1
control are removed. Every other character (any script, emoji and their joiners) is kept.

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
"""The start of a sequence that the next chunk may finish."""
_STARTS = re.compile(r"[\x1b\x9b" + _STRING_STARTS + r"]")
MAX_HELD_CHARS = 4096
"""The longest unfinished sequence held back; a longer one is cleaned as it is."""
_LINE_BREAKS = re.compile(r"[\t\n\u2028\u2029]+")


def printable(text: str) -> str:
    """`text` without escape sequences or control characters (newlines and tabs kept)."""
    return _SEQUENCE.sub("", text)


def one_line(text: str) -> str:
    """`printable(text)` on one line: line breaks and tabs become a space (names, footers,
    error messages: a newline there could forge a line of the CLI's own)."""
    return _LINE_BREAKS.sub(" ", printable(text))


class StreamFilter:
    """`printable` for text that arrives in pieces (an answer's chunks): `feed` each piece,
    print what it returns; `finish` at the end returns what was held back, cleaned."""

    def __init__(self) -> None:
        self._held = ""

    def feed(self, piece: str) -> str:
        text, self._held = self._held + piece, ""
        start = len(text) - MAX_HELD_CHARS
        for found in _STARTS.finditer(text, max(start, 0)):
            if _UNFINISHED.fullmatch(text, found.start()):
                text, self._held = text[: found.start()], text[found.start() :]
                break
        return printable(text)

    def finish(self) -> str:
        text, self._held = self._held, ""
        return printable(text)
