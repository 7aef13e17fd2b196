"""Jobs: their states and errors, what a finished one keeps, its group round, and the events of
Generate's stream."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from tzurot.gateway.domain_messages import Attachment, Location
from tzurot.gateway.domain_personalities import Personality
from tzurot.gateway.domain_replies import GeneratedFile, PromptReport, ReplyChunk, SkillActivity
from tzurot.gateway.domain_usage import Usage


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    STREAMED = "streamed"
    DELIVERED = "delivered"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        """A job in a terminal state will not change without a client's action."""
        return self in (JobStatus.STREAMED, JobStatus.DELIVERED, JobStatus.FAILED)


@dataclass(frozen=True)
class JobError:
    code: str
    reason: str
    message: str


@dataclass(frozen=True)
class Job:
    id: str
    idempotency_key: str
    status: JobStatus
    user_id: str
    personality_id: str
    channel_id: str
    guild_id: str
    request_content: str
    request_message_ids: tuple[str, ...]
    author_id: str
    author_name: str
    attempts: int
    content: str
    usage: Usage | None
    error: JobError | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    delivered_at: datetime | None
    delivered_message_ids: tuple[str, ...] = ()
    preview_message_ids: tuple[str, ...] = ()
    preview_header: str = ""
    """The reply header the preview's first message starts with ("" when none)."""
    # When the unfinished-answer sweep had the answer generated again (its bot died).
    preview_retried_at: datetime | None = None
    retry_until: datetime | None = None
    """While its retry's lease lives, the job is about to run again (store/retries.py)."""
    parent_channel_id: str = ""
    """A thread's parent channel ("" when `channel_id` is a channel)."""
    nsfw_channel: bool = False
    attachment_reads: tuple[tuple[str, str], ...] = ()
    """(attachment key, text) of attachments a helper model read on an earlier attempt
    (attachment_reads.py): given back as their descriptions, so not paid for again."""
    replaces_job_id: str = ""
    """A 🔄's: the job whose exchange leaves history when this one is delivered
    (replacement.py)."""

    @property
    def location(self) -> Location:
        """Where it was asked, as the request said."""
        if self.parent_channel_id:
            return Location(
                self.guild_id, self.parent_channel_id, self.channel_id, self.nsfw_channel
            )
        return Location(self.guild_id, self.channel_id, nsfw_channel=self.nsfw_channel)


@dataclass(frozen=True)
class UnfinishedAnswer:
    """What the bot is handed to finish an answer whose bot died (unfinished.py): the whole
    answer, or why there is none (`failed_reason`; with `failed_message`, the words to show
    instead, the user's data being deleted)."""

    job_id: str
    content: str
    preview_message_ids: tuple[str, ...]
    failed_reason: str = ""
    failed_message: str = ""
    replaced_message_ids: tuple[str, ...] = ()
    reply_header: str = ""
    footer: str = ""
    """The line under the answer (GenerationFinished.footer), rebuilt from the job's row."""


@dataclass(frozen=True)
class JobContext:
    """What a finished job keeps beside its answer: the user's turn as the prompt saw it,
    inference's PromptReport and (only when the user's own keep_reasoning setting is on) the
    reasoning."""

    user_content: str | None = None
    attachments: tuple[Attachment, ...] = ()
    report: PromptReport | None = None
    reasoning: str = ""


@dataclass(frozen=True)
class GroupJob:
    """A job that is part of a group round or chain (depth 0: answering the human)."""

    job_id: str
    conversation_id: str
    round_id: str
    depth: int
    last_in_round: bool


@dataclass(frozen=True)
class JobAccepted:
    job_id: str
    personality: Personality
    replayed: bool
    # The job replaces an answer, whose exchange leaves history at this one's delivery.
    replacing: bool = False


@dataclass(frozen=True)
class GenerationFinished:
    job_id: str
    content: str
    usage: Usage | None
    finish_reason: str
    reasoning: str = ""
    footer: str = ""
    files: tuple[GeneratedFile, ...] = ()
    speak: bool = False  # voice: speak it once delivered (SpeakAnswer)


GenerateEvent = JobAccepted | ReplyChunk | SkillActivity | GenerationFinished
