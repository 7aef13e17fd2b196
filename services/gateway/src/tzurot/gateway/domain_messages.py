"""A client's message: where it was asked, what it carries and refers to, and its turns in
history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tzurot.gateway.domain_users import Actor


@dataclass(frozen=True)
class Location:
    guild_id: str = ""
    channel_id: str = ""
    thread_id: str = ""
    nsfw_channel: bool = False

    @property
    def conversation_id(self) -> str:
        """History is kept per thread when there is one, else per channel."""
        return self.thread_id or self.channel_id


@dataclass(frozen=True)
class Attachment:
    url: str
    content_type: str = ""
    filename: str = ""
    size_bytes: int = 0
    description: str = ""


@dataclass(frozen=True)
class ReferencedMessage:
    message_id: str
    author_id: str
    author_name: str
    content: str
    created_at: datetime | None = None
    attachments: tuple[Attachment, ...] = ()
    depth: int = 1


@dataclass(frozen=True)
class GenerateCommand:
    """One incoming message addressed to a personality."""

    actor: Actor
    location: Location
    personality: str
    content: str
    idempotency_key: str
    message_ids: tuple[str, ...] = ()
    references: tuple[ReferencedMessage, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    # Send the reasoning with the answer (only shown: kept by the keep_reasoning setting alone).
    show_reasoning: bool = False
    # A turn the gateway scheduled (free will, a chain reply): see groups.py.
    turn_id: str = ""
    # PlanChannelReply's round, when this answer is one of its speakers.
    round_id: str = ""
    mentions: tuple[Mention, ...] = ()
    # A 🔄: the job whose answer this one replaces (replacement.py).
    replaces_job_id: str = ""


@dataclass(frozen=True)
class Mention:
    """A channel, role or user the message mentions (resolved by the client)."""

    kind: str
    id: str
    name: str
    description: str = ""


@dataclass(frozen=True)
class HistoryTurn:
    """A turn handed to memory when an exchange is delivered."""

    role: str  # "user" or "assistant"
    author_id: str
    author_name: str
    content: str
    message_ids: tuple[str, ...]
    attachments: tuple[Attachment, ...] = ()
    # The job whose exchange the turn belongs to (set on turns read back from memory).
    job_id: str = ""
