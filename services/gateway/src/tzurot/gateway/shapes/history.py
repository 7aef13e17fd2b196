"""A shapes.inc chat history as exchanges of the conversation history (pure).

Messages are taken in time order (ties in file order). An exchange is one human's messages
and the personality's answers after them: a new one starts at a user message that follows
an answer or comes from another human; answers before any user message form an exchange of
their own. An exchange holds at most `max_turns` messages (memory's limit); a longer run is
cut into several. Each exchange keeps the time of its first message (in seconds: a time in
milliseconds was converted, and one out of range refused, when the document was parsed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from tzurot.gateway.shapes.documents import ShapeMessage, moment


@dataclass(frozen=True)
class HistoryExchange:
    user_id: str
    """The shapes.inc user UUID of the human ('' for answers before any user message)."""
    messages: tuple[ShapeMessage, ...]

    @property
    def key(self) -> str:
        """What makes the exchange once-only: its first message's id."""
        return self.messages[0].id

    @property
    def occurred_at(self) -> datetime | None:
        stamp = self.messages[0].timestamp
        return None if stamp is None else moment(stamp)


def exchanges(history: Sequence[ShapeMessage], *, max_turns: int) -> list[HistoryExchange]:
    ordered = sorted(
        enumerate(history),
        key=lambda pair: (pair[1].timestamp if pair[1].timestamp is not None else 0.0, pair[0]),
    )
    found: list[HistoryExchange] = []
    user, current = "", list[ShapeMessage]()

    def close() -> None:
        if current:
            found.append(HistoryExchange(user, tuple(current)))
            current.clear()

    for _, message in ordered:
        if not message.content.strip():
            continue
        if message.role == "user":
            answered = any(m.role == "assistant" for m in current)
            if answered or message.user_id != user:
                close()
                user = message.user_id
        if len(current) >= max_turns:
            close()
        current.append(message)
    close()
    return found
