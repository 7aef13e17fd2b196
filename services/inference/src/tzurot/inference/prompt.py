"""Chat messages for one reply: the character, the history, the new message. Pure functions.

Layout: one system message (system prompt, then the non-empty character sections, then the
current date in the user's time zone), the history oldest first (user turns prefixed with
their author's name, since a channel has many users), the new message, and the character's
post-history instructions as a last system message, where models weigh them most.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TypedDict
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tzurot.inference.domain import Character, HistoryTurn, Role


class ChatMessage(TypedDict):
    role: Role
    content: str


_SECTIONS = (
    ("description", "Description"),
    ("personality", "Personality"),
    ("scenario", "Scenario"),
    ("example_dialogues", "Example dialogues"),
)


def system_text(character: Character, *, timezone: str = "", now: datetime | None = None) -> str:
    """The system message: prompt, labelled character sections, current date when asked."""
    parts: list[str] = []
    if character.system_prompt.strip():
        parts.append(character.system_prompt.strip())
    for attribute, label in _SECTIONS:
        value = str(getattr(character, attribute)).strip()
        if value:
            parts.append(f"## {label}\n{value}")
    if timezone:
        parts.append(current_date_line(timezone, now or datetime.now(UTC)))
    return "\n\n".join(parts)


def current_date_line(timezone: str, now: datetime) -> str:
    """'Current date and time: Tuesday, 3 June 2025, 14:05 (Europe/Berlin)'; UTC if unknown."""
    try:
        zone = ZoneInfo(timezone)
        name = timezone
    except (ZoneInfoNotFoundError, ValueError):
        zone, name = ZoneInfo("UTC"), "UTC"
    local = now.astimezone(zone)
    stamp = f"{local:%A}, {local.day} {local:%B %Y}, {local:%H:%M}"
    return f"Current date and time: {stamp} ({name})"


def build_messages(
    character: Character,
    history: Sequence[HistoryTurn],
    *,
    author_name: str,
    content: str,
    timezone: str = "",
    now: datetime | None = None,
) -> list[ChatMessage]:
    """The messages to send for a new message `content` written by `author_name`."""
    messages: list[ChatMessage] = []
    system = system_text(character, timezone=timezone, now=now)
    if system:
        messages.append({"role": "system", "content": system})
    for turn in history:
        if not turn.content:
            continue
        if turn.role == "user":
            messages.append({"role": "user", "content": _said(turn.author_name, turn.content)})
        else:
            messages.append({"role": turn.role, "content": turn.content})
    messages.append({"role": "user", "content": _said(author_name, content)})
    if character.post_history_instructions.strip():
        messages.append({"role": "system", "content": character.post_history_instructions.strip()})
    return messages


def _said(author_name: str, content: str) -> str:
    return f"{author_name}: {content}" if author_name else content


def estimate_tokens(text: str) -> int:
    """A crude estimate (about four characters a token) for reports and missing usage."""
    return math.ceil(len(text) / 4)


def estimate_prompt_tokens(messages: Sequence[ChatMessage]) -> int:
    return sum(estimate_tokens(message["content"]) for message in messages)
