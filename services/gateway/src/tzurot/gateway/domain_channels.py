"""Channels: personalities activated in them, and the denylist (moderation)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from tzurot.gateway.domain_personalities import Personality


@dataclass(frozen=True)
class ChannelActivation:
    guild_id: str
    channel_id: str
    personality: Personality
    activated_by_user_id: str | None
    activated_at: datetime


class DenyTarget(enum.StrEnum):
    USER = "user"
    GUILD = "guild"


class DenyScope(enum.StrEnum):
    BOT = "bot"
    GUILD = "guild"
    CHANNEL = "channel"
    PERSONALITY = "personality"


class DenyMode(enum.StrEnum):
    BLOCK = "block"
    MUTE = "mute"


@dataclass(frozen=True)
class DenyEntry:
    id: str
    target: DenyTarget
    target_id: str
    scope: DenyScope
    scope_id: str
    mode: DenyMode
    reason: str
    created_at: datetime
