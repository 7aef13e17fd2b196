"""Plain types of inference's use-cases: what a reply needs, and what it streams back."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import SecretStr

Role = Literal["system", "user", "assistant"]
KeySource = Literal["user", "system", "none"]
"""Whose key paid for a call: the user's, the operator's (free_use), or none (local model)."""


@dataclass(frozen=True)
class Character:
    """The personality as the prompt sees it."""

    id: str
    name: str
    system_prompt: str = ""
    description: str = ""
    personality: str = ""
    scenario: str = ""
    example_dialogues: str = ""
    post_history_instructions: str = ""


@dataclass(frozen=True)
class ModelChoice:
    """The effective LLM config gateway resolved for this message."""

    provider: str
    model: str
    advanced_parameters: Mapping[str, Any] = field(default_factory=dict)
    free_use: bool = False


@dataclass(frozen=True)
class HistoryTurn:
    """One stored message of the conversation, oldest first."""

    role: Role
    author_name: str
    content: str


@dataclass(frozen=True)
class ReplyRequest:
    job_id: str
    user_id: str
    author_name: str
    channel_id: str
    character: Character
    model: ModelChoice
    content: str
    timezone: str = ""
    max_history_messages: int = 0


@dataclass(frozen=True)
class ResolvedKey:
    """An API key and where it came from; the repr never shows the key."""

    api_key: SecretStr
    source: KeySource


@dataclass(frozen=True)
class TokenUsage:
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True)
class TextDelta:
    """A piece of the answer, in order."""

    text: str


@dataclass(frozen=True)
class Completion:
    """The end of one provider call: the whole answer and what it cost."""

    content: str
    usage: TokenUsage
    finish_reason: str


@dataclass(frozen=True)
class PromptReport:
    """Which context informed a reply (for /inspect)."""

    prompt_tokens_estimate: int
    history_turns: int
    key_source: KeySource


@dataclass(frozen=True)
class ReplyFinished:
    content: str
    provider: str
    model: str
    usage: TokenUsage
    finish_reason: str
    report: PromptReport


ReplyEvent = TextDelta | ReplyFinished
StreamEvent = TextDelta | Completion
