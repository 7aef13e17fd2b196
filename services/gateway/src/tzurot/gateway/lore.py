"""Lorebooks as gateway keeps them and hands them to inference.

Gateway owns the data (`core.lorebooks`, where each is attached, and each conversation's
lore state); inference decides, while it builds the prompt, which entries fire. The state
(timed effects, the conversation's message count) comes back with the reply and is kept
per channel and personality, so sticky, cooldown and delay survive restarts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from tzurot.gateway.cards.lorebooks import Lorebook

Scope = Literal["personality", "channel", "global"]
SCOPES: tuple[Scope, ...] = ("channel", "personality", "global")
"""Precedence of attached lorebooks in a prompt (SillyTavern's chat lore comes first)."""


@dataclass(frozen=True)
class StoredLorebook:
    id: str
    book: Lorebook
    owner_user_id: str | None
    attachments: tuple[tuple[Scope, str], ...] = ()
    card_personality_id: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class TimedEffect:
    lorebook_id: str
    entry_uid: str
    kind: str
    start: int
    end: int
    protected: bool = False


@dataclass(frozen=True)
class LoreState:
    message_count: int = 0
    effects: tuple[TimedEffect, ...] = ()

    def to_json(self) -> list[dict[str, Any]]:
        return [vars(effect) for effect in self.effects]


@dataclass(frozen=True)
class LoreContext:
    """What inference gets: the lorebooks in play, in precedence order, and the state."""

    books: tuple[tuple[Scope, StoredLorebook], ...] = ()
    state: LoreState = field(default_factory=LoreState)


@dataclass(frozen=True)
class LoreActivation:
    lorebook_id: str
    lorebook_name: str
    entry_uid: str
    entry_label: str
    reason: str
    dropped: bool = False
    tokens: int = 0
