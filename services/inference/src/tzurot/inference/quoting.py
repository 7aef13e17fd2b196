"""Others' text inside the prompt: each line after an item's first is quoted, and a name
stays on one line, so no one's words can start a line that reads as a section of it."""

from __future__ import annotations

QUOTE = "  > "
"""Starts every line of an item after its first: quoted text never begins a line itself."""


def quoted(text: str) -> str:
    """Untrusted text as the rest of one list item: each line after the first behind
    `QUOTE` (every kind of line break counts: \r, \u2028…), so another user's message, a
    memory or a web page cannot start a line of the system message ("## Rules …")."""
    first, *rest = text.splitlines() or [""]
    return "\n".join([first, *(QUOTE + line if line.strip() else QUOTE.rstrip() for line in rest)])


def one_line(text: str) -> str:
    """A name on one line (its whitespace, line breaks included, folded to spaces)."""
    return " ".join(text.split())
