"""Personalities: their character fields, answer clean-up rules, and group members."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class CharacterFields:
    description: str = ""
    personality: str = ""
    scenario: str = ""
    example_dialogues: str = ""
    post_history_instructions: str = ""
    author_note: str = ""
    """Injected `author_note_depth` messages from the bottom of the conversation (2-4; 0
    means inference's default, 3) to keep the style in long chats."""
    author_note_depth: int = 0


@dataclass(frozen=True)
class CleanupRule:
    """A regex replacement applied to every answer of one personality (rules.py checks it)."""

    pattern: str
    replacement: str = ""


@dataclass(frozen=True)
class Personality:
    id: str
    slug: str
    display_name: str
    aliases: tuple[str, ...]
    avatar_url: str
    system_prompt: str
    character: CharacterFields
    default_llm_config_id: str | None
    error_message: str
    birthday: str
    owner_user_id: str | None
    public: bool
    nsfw: bool
    created_at: datetime
    updated_at: datetime
    voice_id: str = ""
    card: Mapping[str, Any] = field(default_factory=dict)
    """Character card fields with no other place (cards.mapping.CARD_KEYS)."""
    custom_fields: Mapping[str, Any] = field(default_factory=dict)
    """Imported fields with no place in Tzurot (shapes.inc extras), as they were."""
    skills: tuple[str, ...] = ()
    """Skills the owner enabled (names of inference's ListSkills)."""
    cleanup_rules: tuple[CleanupRule, ...] = ()
    """Applied in order to every answer, after the operator's global rules."""
    suppress_embeds: bool = False
    """Its answers post without link previews (Discord's SUPPRESS_EMBEDS flag)."""


@dataclass(frozen=True)
class GroupMember:
    personality_id: str
    name: str
