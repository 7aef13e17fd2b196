"""LLM configs and the settings cascade level a config was resolved from."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class LlmConfig:
    id: str
    name: str
    provider: str
    model: str
    owner_user_id: str | None = None
    advanced_parameters: Mapping[str, Any] = field(default_factory=dict)
    context_window: int = 0
    max_referenced_messages: int = 0
    free_use: bool = False
    description: str = ""


class ConfigSource(enum.StrEnum):
    """Levels of the settings cascade, lowest precedence first."""

    HARDCODED = "hardcoded"
    GLOBAL = "global"
    PERSONALITY = "personality"
    CHANNEL = "channel"
    USER = "user"
    USER_PERSONALITY = "user_personality"


@dataclass(frozen=True)
class ResolvedConfig:
    config: LlmConfig
    source: ConfigSource
