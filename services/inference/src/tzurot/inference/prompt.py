"""The prompt's shapes: a chat message, the budget of a context window, what one reply's
prompt is built from and what it came to; crude token estimates. Built by prompt_build.py."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, NotRequired, TypedDict

from tzurot.inference.domain import (
    Character,
    HistoryTurn,
    ImagePart,
    MemoryItem,
    Mention,
    Persona,
    Reference,
)
from tzurot.inference.lore.model import Activation

ChatRole = Literal["system", "developer", "user", "assistant", "tool"]


class ChatMessage(TypedDict):
    role: ChatRole
    content: str | list[dict[str, Any]] | None
    tool_calls: NotRequired[list[dict[str, Any]]]
    """An assistant message's skill calls (OpenAI tools API)."""
    tool_call_id: NotRequired[str]
    """A tool message: which call it answers."""


IMAGE_TOKENS = 1105
"""Counted per image part: OpenAI's cost of a high-detail 1024px tile set, rounded up."""
SMALL_WINDOW = 65_536


@dataclass(frozen=True)
class Budget:
    """How the context window is shared; every figure in tokens."""

    context_window: int
    max_output_tokens: int | None = None
    reference_share: float = 0.5

    @property
    def input_limit(self) -> int:
        share = 0.75 if self.context_window <= SMALL_WINDOW else 0.5
        reserve = max(math.ceil(self.context_window * 0.05), self.max_output_tokens or 0)
        return max(0, min(math.floor(self.context_window * share), self.context_window - reserve))

    @property
    def memory_cap(self) -> int:
        return math.floor(self.context_window * 0.25)

    @property
    def memory_floor(self) -> int:
        return math.floor(self.context_window * 0.10)


@dataclass(frozen=True)
class PromptInput:
    character: Character
    author_name: str
    content: str
    history: Sequence[HistoryTurn] = ()
    author_id: str = ""
    persona: Persona | None = None
    memories: Sequence[MemoryItem] = ()
    references: Sequence[Reference] = ()
    mentions: Sequence[Mention] = ()
    images: Sequence[ImagePart] = ()
    timezone: str = ""
    now: datetime | None = None
    lore: Sequence[Activation] = ()
    """Lorebook entries that fired (lore/engine.py), placed by their position."""
    directive: str = ""
    """Ends the prompt instead of the new message (a turn nobody asked for, or a message
    another personality of the group answered already and the history holds)."""
    group: Sequence[str] = ()
    """The other personalities of a group channel."""


@dataclass(frozen=True)
class Prompt:
    messages: list[ChatMessage]
    tokens: int
    history_turns: int
    memory_ids: tuple[str, ...] = ()
    referenced_message_ids: tuple[str, ...] = ()
    sections: dict[str, int] = field(default_factory=dict)
    """Tokens used per part (system, history, memories, references, mentions, …)."""
    lore_dropped: tuple[Activation, ...] = ()
    """Fired lore the prompt had no room for (the lowest priority first)."""


def message_text(message: ChatMessage) -> str:
    """A message's text (the text parts of a multi-part one; nothing of a tool call)."""
    content = message["content"]
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return " ".join(str(part.get("text", "")) for part in content if part.get("type") == "text")


def estimate_tokens(text: str) -> int:
    """A crude estimate (about four characters a token) where no counter is at hand."""
    return math.ceil(len(text) / 4)


def estimate_prompt_tokens(messages: Sequence[ChatMessage]) -> int:
    return sum(estimate_tokens(message_text(message)) for message in messages)
