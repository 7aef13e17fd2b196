"""The long-term memory query for a message: the message itself, or its most telling part.

Memory refuses queries over `MEMORY_QUERY_MAX_CHARS` (its embedder reads ~256 tokens anyway),
and a message may be four times that. A long message is cut to its start (what it is about)
and its end (what is asked now), each at a word boundary, joined by an ellipsis: never refused.
"""

from __future__ import annotations

MEMORY_QUERY_MAX_CHARS = 4_000
"""Memory's limit on `QueryMemoriesRequest.query` (memory's `MAX_MEMORY_CHARS`)."""
_HEAD_SHARE = 0.25
_JOIN = " … "


def memory_query(content: str, limit: int = MEMORY_QUERY_MAX_CHARS) -> str:
    """`content` within `limit` characters: whole when it fits, else its start and end."""
    text = " ".join(content.split())
    if len(text) <= limit:
        return text
    room = limit - len(_JOIN)
    head_room = int(room * _HEAD_SHARE)
    head = _cut_end(text[:head_room])
    tail = _cut_start(text[len(text) - (room - len(head)) :])
    return f"{head}{_JOIN}{tail}"


def _cut_end(text: str) -> str:
    """`text` without a word cut in half at its end."""
    cut = text.rfind(" ")
    return text[:cut] if cut > len(text) // 2 else text


def _cut_start(text: str) -> str:
    """`text` without a word cut in half at its start."""
    cut = text.find(" ")
    return text[cut + 1 :] if 0 <= cut < len(text) // 2 else text
