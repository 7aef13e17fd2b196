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
    occurred_at: datetime | None = None
    """When it happened (imports, dated conversations); None is now."""
    used_memory_ids: tuple[str, ...] = ()
    """Long-term memories in the delivered answer's prompt (the signal of use)."""
    extract_facts: bool = False
    """Gateway will extract facts from it (it has an LLM for that): queue it for them."""
    imported: bool = False
    """An imported history: no long-term memories are formed from it."""


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


@dataclass(frozen=True)
class ForgottenPersonality:
    """What ForgetPersonality deleted."""

    deleted_turns: int
    deleted_memories: int


@dataclass(frozen=True)
class MemoryScope:
    """Whose memories: a personality and one user ('' is the personality's shared lore)."""

    personality_id: str
    user_id: str


@dataclass(frozen=True)
class StoredMemory:
    id: str
    personality_id: str
    user_id: str
    text: str
    sector: str
    salience: float
    created_at: datetime
    last_accessed_at: datetime
    source_turn_ids: tuple[str, ...]
    score: float = 0.0
    """Set on search results: the hybrid relevance score in [0, 1]."""
    tags: tuple[str, ...] = ()
    """Where a memory came from beyond a conversation, e.g. "lore_research"."""
    superseded_by: str = ""
    """A fact replaced by a newer one that contradicts it (history, never retrieved)."""
    context: str = ""
    """The neighbouring turns of its turn: searched with the text, never shown."""


@dataclass(frozen=True)
class Hit:
    """A search candidate: the memory, its cosine similarity to the query, its embedding."""

    memory: StoredMemory
    cosine: float


@dataclass(frozen=True)
class AddedMemory:
    memory: StoredMemory
    merged: bool
    existed: bool = False
    """A memory with the caller's id was already stored (an import run again)."""


@dataclass(frozen=True)
class MemoryStats:
    total: int
    sectors: dict[str, int]
    oldest: datetime | None
    newest: datetime | None


@dataclass(frozen=True)
class MemoryMode:
    """Per (personality, user): incognito stores nothing until a time; fresh retrieves
    nothing created before a time."""

    incognito_until: datetime | None = None
    fresh_since: datetime | None = None


@dataclass(frozen=True)
class Consolidation:
    decayed: int = 0
    pruned: int = 0
    merged: int = 0
    reflections: int = 0
    reinforced: int = 0


@dataclass(frozen=True)
class ReplyContextQuery:
    """What a reply reads (GetReplyContext): a conversation's newest turns and the memories
    relevant to `query`."""

    channel_id: str
    personality_id: str
    history_limit: int
    user_id: str
    query: str
    """Empty: no search."""
    memory_limit: int = 0
    threshold: float = 0.0
    whole_channel: bool = False
    query_author: str = ""
    """Who asked: their turn's author name ("" unknown)."""


@dataclass(frozen=True)
class ReplyContext:
    turns: list[StoredTurn]
    """Oldest first."""
    memories: list[StoredMemory]
    """Most relevant first."""
    memories_unavailable: bool = False
