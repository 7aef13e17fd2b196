"""Splitting an answer into Discord-sized messages (2000 characters each).

Prefers paragraph, then line, then sentence, then word boundaries, and never splits inside a
fenced code block when the block fits in one message.
"""

from __future__ import annotations

import re

DISCORD_LIMIT = 2000
_SENTENCE_END = re.compile(r"[.!?…][\"')\]]*\s")
_FENCE = re.compile(r"```([\w+#.-]*)")
_CLOSE = "\n```"
_MAX_LANGUAGE = 32
"""A longer "language" after a fence is reopened without it (Discord's are short words)."""


def split_message(text: str, limit: int = DISCORD_LIMIT) -> list[str]:
    """Cuts `text` into pieces of at most `limit` characters, none empty. A cut inside a fenced
    code block closes the fence in that piece and reopens it (same language) in the next."""
    pieces: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        before = len(rest)
        cut = _best_cut(rest, limit)
        piece = rest[:cut].rstrip()
        language = _open_fence(piece)
        if language is not None:
            cut = _best_cut(rest, limit - len(_CLOSE))  # room for the closing fence
            piece = rest[:cut].rstrip()
            language = _open_fence(piece)
        if language is None:
            pieces.append(piece)
            rest = rest[cut:].lstrip()
            continue
        inside = rest[cut:]
        inside = inside[1:] if inside.startswith("\n") else inside  # keep the indentation
        reopened = f"```{language if len(language) <= _MAX_LANGUAGE else ''}\n{inside}"
        if len(reopened) >= before:  # reopening would not shorten it: a plain cut instead
            pieces.append(rest[:limit])
            rest = rest[limit:].lstrip()
            continue
        pieces.append(piece + _CLOSE)
        rest = reopened
    if rest:
        pieces.append(rest)
    return pieces


def _open_fence(piece: str) -> str | None:
    """The language of the fence left open at the end of `piece` ("" for none), or None."""
    fences = list(_FENCE.finditer(piece))
    if len(fences) % 2 == 0:
        return None
    return fences[-1].group(1)


def _best_cut(text: str, limit: int) -> int:
    window = text[:limit]
    fence = _cut_before_open_fence(window)
    if fence:
        return fence
    for boundary in ("\n\n", "\n"):
        # A boundary right at the limit still counts: the piece before it fits.
        index = text.rfind(boundary, 0, limit + len(boundary))
        if index > limit // 4:
            return min(index + len(boundary), limit) if index < limit else limit
    sentence_ends = [m.end() for m in _SENTENCE_END.finditer(window)]
    if sentence_ends and sentence_ends[-1] > limit // 4:
        return sentence_ends[-1]
    space = window.rfind(" ")
    if space > limit // 4:
        return space + 1
    return limit


def _cut_before_open_fence(window: str) -> int:
    """If the window ends inside a ``` block that started after some text, cut before it."""
    fences = [m.start() for m in re.finditer(r"```", window)]
    if len(fences) % 2 == 1 and fences[-1] > 0:
        return fences[-1]
    return 0
