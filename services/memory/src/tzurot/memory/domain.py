"""What memory knows about conversation history: turns to store and turns stored."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Role(StrEnum):
    """Who spoke a turn; stored exchanges carry only USER and ASSISTANT turns."""

    USER = "user"
    ASSISTANT = "assistant"
    SYSTEM = "system"


@dataclass(frozen=True)
class Attachment:
    url: str
    content_type: str = ""
    filename: str = ""
    size_bytes: int = 0
    description: str = ""


@dataclass(frozen=True)
class NewTurn:
    """One turn of an exchange as the caller hands it in (before validation)."""

    role: str
    content: str
    author_id: str = ""
    author_name: str = ""
    message_ids: tuple[str, ...] = ()
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True)
class Exchange:
    """A validated exchange: its place, its human and its turns in order."""

    job_id: str
    channel_id: str
    personality_id: str
    user_id: str
    turns: tuple[NewTurn, ...]


@dataclass(frozen=True)
class StoredTurn:
    """One stored turn; `position` orders the turns of one exchange (job)."""

    id: str
    job_id: str
    position: int
    channel_id: str
    personality_id: str
    user_id: str
    role: Role
    author_id: str
    author_name: str
    content: str
    message_ids: tuple[str, ...]
    attachments: tuple[Attachment, ...]
    created_at: datetime


@dataclass(frozen=True)
class StoredExchange:
    """The turns stored for a job; `created` is False when an earlier call stored them."""

    turns: list[StoredTurn]
    created: bool


@dataclass(frozen=True)
class ForgottenUser:
    """What ForgetUser deleted."""

    deleted_turns: int
    deleted_memories: int = 0
