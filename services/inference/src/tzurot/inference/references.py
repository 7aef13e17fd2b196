"""Referenced messages the history already holds are dropped from the prompt.

First by message id (a stored turn lists the Discord messages it was posted as), then, for
messages whose ids history does not know (a PluralKit repost, an answer split differently), by
the same author and the same text within a short time window.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from tzurot.inference.domain import HistoryTurn, Reference

# A turn is stored when its answer is delivered: a user's message may be older than its turn by
# the time the answer took, an answer's messages newer than its turn by the time to post them.
DEFAULT_WINDOW = timedelta(minutes=5)


def not_in_history(
    references: Sequence[Reference],
    history: Sequence[HistoryTurn],
    window: timedelta = DEFAULT_WINDOW,
) -> list[Reference]:
    """The references that say something the history does not already carry."""
    known_ids = {mid for turn in history for mid in turn.message_ids}
    return [
        ref
        for ref in references
        if ref.message_id not in known_ids
        and not any(_same_message(ref, turn, window) for turn in history)
    ]


def _same_message(ref: Reference, turn: HistoryTurn, window: timedelta) -> bool:
    if ref.created_at is None or turn.created_at is None:
        return False
    if abs(ref.created_at - turn.created_at) > window:
        return False
    return _same_author(ref, turn) and _normalized(ref.content) == _normalized(turn.content)


def _same_author(ref: Reference, turn: HistoryTurn) -> bool:
    if ref.author_id and turn.author_id and ref.author_id == turn.author_id:
        return True
    # A personality's answer is posted by a webhook under its display name.
    return bool(ref.author_name) and ref.author_name.casefold() == turn.author_name.casefold()


def _normalized(text: str) -> str:
    return " ".join(text.split())
