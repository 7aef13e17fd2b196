"""Cutting text to a length limit between characters as a reader sees them.

A limit counted in code points (Discord's, a lorebook name's) may fall inside one
user-perceived character (Unicode's extended grapheme cluster): a letter and its accents, an
emoji with its skin tone, a flag, a ZWJ family. Cut there, the text shows a bare letter or a
broken emoji; these cuts leave out the last character the limit reaches into, whole.
"""

from __future__ import annotations

import regex

_GRAPHEME = regex.compile(r"\X")
ELLIPSIS = "…"


def grapheme_prefix(text: str, limit: int) -> str:
    """The longest start of `text` of at most `limit` code points that ends between two
    graphemes (`text` itself when it fits; empty when its first grapheme does not)."""
    if len(text) <= limit:
        return text
    end = 0
    for character in _GRAPHEME.finditer(text):
        if character.end() > limit:
            break
        end = character.end()
    return text[:end]


def trimmed_prefix(text: str, limit: int) -> str:
    """`grapheme_prefix` without the whitespace at its end, each grapheme ending in one
    dropped whole: a prepended mark binds the space after it into one grapheme (U+0600 then
    a space), and stripping code points would leave the mark bare."""
    graphemes = _GRAPHEME.findall(grapheme_prefix(text, limit))
    while graphemes and graphemes[-1][-1].isspace():
        graphemes.pop()
    return "".join(graphemes)


def clipped(text: str, limit: int) -> str:
    """`text` when it fits in `limit` code points; else its start cut between graphemes
    with an ellipsis after it, the whole within `limit` (no room for the ellipsis: the
    start alone, empty when `limit` < 1)."""
    if len(text) <= limit:
        return text
    if limit < len(ELLIPSIS):
        return grapheme_prefix(text, limit)
    return grapheme_prefix(text, limit - len(ELLIPSIS)) + ELLIPSIS
