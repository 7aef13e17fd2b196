"""A group channel's history as one personality sees it. Pure.

Memory keeps one conversation per (channel, personality); a group channel reads them all
(`whole_channel`) and this view makes one conversation of them, attributed correctly:

- the personality's own answers stay `assistant` turns;
- another personality's answers become turns spoken by that personality ("Sage: …"), so the
  model never takes them for its own;
- a human message several personalities answered is stored once per answer: it is kept once;
- the message being answered, when another personality already answered it (a later
  speaker of the same round), stays where it was said, and the prompt ends with a directive
  instead of repeating it (`answered_already`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from tzurot.inference.domain import GroupMember, HistoryTurn

PERSONALITY_AUTHOR_PREFIX = "personality:"


def group_history(
    turns: Sequence[HistoryTurn], self_id: str, members: Sequence[GroupMember]
) -> list[HistoryTurn]:
    names = {m.personality_id: m.name for m in members}
    seen: set[str] = set()
    view: list[HistoryTurn] = []
    for turn in turns:
        if turn.role == "user" and turn.message_ids and seen.intersection(turn.message_ids):
            continue  # the same Discord message, stored with another personality's answer
        seen.update(turn.message_ids)
        if turn.role == "assistant" and turn.personality_id and turn.personality_id != self_id:
            view.append(
                replace(
                    turn,
                    role="user",
                    author_name=names.get(turn.personality_id, turn.author_name),
                    author_id=PERSONALITY_AUTHOR_PREFIX + turn.personality_id,
                )
            )
        else:
            view.append(turn)
    return view


def answered_already(history: Sequence[HistoryTurn], message_ids: Sequence[str]) -> bool:
    """Whether the message being answered is in the history (another speaker answered it)."""
    wanted = set(message_ids)
    return bool(wanted) and any(
        t.role == "user" and wanted.intersection(t.message_ids) for t in history
    )


def others(members: Sequence[GroupMember], self_id: str) -> list[str]:
    return [m.name for m in members if m.personality_id != self_id]
