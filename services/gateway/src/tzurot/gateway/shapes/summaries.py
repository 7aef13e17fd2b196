"""A shapes.inc memory summary as the texts of Tzurot memories (pure).

Memory refuses a text over `MEMORY_TEXT_LIMIT` characters, and real summaries are often
longer (~11 KB each in a backup seen in the wild). A summary within the limit stays one
memory; a longer one is cut into parts of at most `PART_CHARS` characters at the coarsest
boundary that suffices: paragraphs, then lines, then sentences, then words (a run of text
with no space at all is cut by length). Consecutive pieces that fit together are packed
into one part. The cut depends only on the text, so a re-run cuts it the same way.

Why `PART_CHARS` is 1,200: the local embedder (all-MiniLM-L6-v2) reads the first 256
tokens of a text and ignores the rest; English prose is ~4.6 characters a token with its
tokenizer (measured on a real-sized summary), so 256 tokens are ~1,180 characters. A part
of that size is embedded whole: every sentence of it can be found by a search, where a
4,000-character part would be found only by its first quarter.
"""

from __future__ import annotations

import re

MEMORY_TEXT_LIMIT = 4_000
"""Memory's limit on a memory's text (MAX_MEMORY_CHARS of the memory service)."""
PART_CHARS = 1_200
"""The most characters of one part of a split summary (see the module's docstring)."""

_BOUNDARIES = (
    re.compile(r"\n[^\S\n]*\n\s*"),  # paragraphs (a blank line)
    re.compile(r"\n\s*"),  # lines
    re.compile(r"(?<=[.!?…])\s+|(?<=[\u3002\uff01\uff1f])\s*"),  # sentences (also CJK full stops)
    re.compile(r"\s+"),  # words
)


def summary_parts(text: str) -> list[str]:
    """The memory texts of a summary: itself (stripped) when within the limit, else its parts."""
    text = text.strip()
    if len(text) <= MEMORY_TEXT_LIMIT:
        return [text]
    return _cut(text, PART_CHARS, 0)


def _cut(text: str, limit: int, level: int) -> list[str]:
    """`text` (stripped) in parts of at most `limit` characters, each a slice of it."""
    if len(text) <= limit:
        return [text]
    if level == len(_BOUNDARIES):
        return [text[start : start + limit] for start in range(0, len(text), limit)]
    parts: list[str] = []
    current = ""
    for piece in _pieces(text, _BOUNDARIES[level]):
        if len(piece.strip()) > limit:
            if current.strip():
                parts.append(current.strip())
            current = ""
            parts.extend(_cut(piece.strip(), limit, level + 1))
        elif len((current + piece).strip()) <= limit:
            current += piece
        else:
            parts.append(current.strip())
            current = piece
    if current.strip():
        parts.append(current.strip())
    return parts


def _pieces(text: str, boundary: re.Pattern[str]) -> list[str]:
    """`text` cut after each boundary, every piece keeping the separator that ends it."""
    pieces, start = [], 0
    for match in boundary.finditer(text):
        if match.end() > start:
            pieces.append(text[start : match.end()])
            start = match.end()
    pieces.append(text[start:])
    return pieces
