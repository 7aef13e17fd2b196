"""Gateway's domain types: plain data, no gRPC and no SQL."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tzurot.gateway.lore import LoreActivation, LoreContext, LoreState


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
class Actor:
    """The human a request is for, as asserted by the calling client."""

    platform_user_id: str
    display_name: str


@dataclass(frozen=True)
class User:
    id: str
    platform_user_id: str
    display_name: str
    timezone: str
    superuser: bool
    nsfw_verified: bool
    created_at: datetime
    # They asked for their data to be deleted and it is under way (admin/deletions.py):
    # nothing of theirs is served until the row is gone.
    deleting: bool = False


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


@dataclass(frozen=True)
class Usage:
    provider: str
    model: str
    input_tokens: int
    output_tokens: int
    images: int = 0
    request_type: str = ""
    """A helper model's call for an attachment (transcription, transcript_cleanup,
    image_description), a skill's paid call (image_generation, web_search); "" for an answer
    (the job's own kind is its request type)."""
    audio_seconds: float = 0.0
    estimated: bool = False
    """The tokens are Tzurot's estimate, not the provider's count, which never came (a stream
    broken off, a reply cancelled mid-answer): usage_log.estimated."""


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
    include_reasoning: bool = False
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
class GroupMember:
    personality_id: str
    name: str


@dataclass(frozen=True)
class Persona:
    """A user's identity toward personalities."""

    name: str = ""
    preferred_name: str = ""
    pronouns: str = ""
    description: str = ""


@dataclass(frozen=True)
class ReplyRequest:
    """What gateway asks inference for: everything resolved, nothing left to look up in `core`."""

    job_id: str
    user_id: str
    actor: Actor
    location: Location
    personality: Personality
    config: ResolvedConfig
    content: str
    references: tuple[ReferencedMessage, ...]
    attachments: tuple[Attachment, ...]
    timezone: str
    max_history_messages: int
    include_reasoning: bool
    persona: Persona | None = None
    memory_threshold: float = 0.5
    memory_limit: int = 20
    mentions: tuple[Mention, ...] = ()
    lore: LoreContext | None = None
    # Group channels: every personality activated there (history then covers them all).
    group: tuple[GroupMember, ...] = ()
    # A turn nobody asked for: what the prompt ends with instead of a user's message.
    directive: str = ""
    message_ids: tuple[str, ...] = ()
    # A scheduled turn (free will, a chain reply): the user only pays; the prompt reads the
    # whole channel and the personality's shared memories, nobody's own (nor a persona).
    shared_context: bool = False
    # A 🔄: the job whose exchange, still in history, the prompt leaves out.
    replaces_job_id: str = ""


@dataclass(frozen=True)
class ReplyChunk:
    text: str


@dataclass(frozen=True)
class MemoryNote:
    """A memory that informed a reply: id and text."""

    id: str
    text: str


@dataclass(frozen=True)
class PromptReport:
    """Which context informed a reply (inference's report), for Inspect."""

    prompt_tokens_estimate: int = 0
    history_turns: int = 0
    memory_ids: tuple[str, ...] = ()
    referenced_message_ids: tuple[str, ...] = ()
    key_source: str = ""
    lore: tuple[LoreActivation, ...] = ()
    memories: tuple[MemoryNote, ...] = ()
    # What the answer went without (e.g. "memory_unavailable").
    degraded: tuple[str, ...] = ()
    skill_steps: tuple[SkillStep, ...] = ()
    # Providers/services whose key from the user's wallet the reply used (marked used).
    user_key_providers: tuple[str, ...] = ()
    # Providers/services whose key from the user's wallet refused a call (401) the reply went
    # on without (a skill's): marked inactive, as any refused key is (key_uses.py).
    refused_key_providers: tuple[str, ...] = ()


@dataclass(frozen=True)
class SkillStep:
    """One skill call of the tool loop (skill, arguments, short result, time)."""

    step: int
    skill: str
    arguments: str
    summary: str
    duration_ms: int
    ok: bool
    stealth: bool


@dataclass(frozen=True)
class SkillActivity:
    """The personality is using a skill: the client shows it is working."""

    skill: str
    step: int


@dataclass(frozen=True)
class GeneratedFile:
    """A file of the answer (a generated image), posted as an attachment."""

    filename: str
    content_type: str
    data: bytes = field(repr=False)
    description: str = ""


@dataclass(frozen=True)
class SkillInfo:
    name: str
    description: str
    parameters_json: str
    stealth: bool
    auto_memorize: bool


@dataclass(frozen=True)
class ReplyFinished:
    content: str
    usage: Usage
    finish_reason: str
    reasoning: str = ""
    report: PromptReport | None = None
    # The request's attachments with descriptions/transcripts filled in.
    attachments: tuple[Attachment, ...] = ()
    # The user's message as it entered the prompt (transcripts included), for history.
    user_content: str = ""
    # The conversation's lore state after this reply (None: no lore in play).
    lore_state: LoreState | None = None
    files: tuple[GeneratedFile, ...] = ()


@dataclass(frozen=True)
class AttachmentRead:
    """An attachment a helper model read for the answer (its transcript or description),
    with each paid call: recorded as it arrives, whatever becomes of the answer."""

    index: int
    attachment: Attachment
    paid: tuple[Usage, ...]
    refused_key_providers: tuple[str, ...] = ()
    """Providers whose key from the user's wallet refused a call the reading did without (a
    transcript's clean-up): marked inactive, as any refused key is (key_uses.py)."""


@dataclass(frozen=True)
class UsageSpent:
    """Calls a reply paid for outside ReplyFinished.usage, each recorded as a usage row as it
    arrives (store/usage_rows.py), never again with the answer: a skill's paid call (an image
    drawn: "image_generation"; a Brave search: "web_search"), or, just before the reply's
    error, what its answer was billed so far (request_type "": the job's own kind)."""

    paid: tuple[Usage, ...]
    failed: bool = False
    """Paid but not delivered (usage_log.failed): the reply failed, or the call was cut off
    once sent."""
    all_rounds: bool = False
    """The answer's own calls, all its rounds billed so far (a failed reply's report): they
    include every round PromptSent and RoundsBilled announced. Unset on a broken-off round's
    estimate (that round only), and always from an older inference."""


@dataclass(frozen=True)
class PromptSent:
    """The provider began answering one of the answer's requests (its first streamed event),
    so it bills that prompt: its tokens, estimated. A request it refused or never answered is
    never announced. Never recorded as such; counted in the estimate of a reply cut off before
    any report of it came (cancelled_usage.py)."""

    provider: str
    model: str
    input_tokens: int


@dataclass(frozen=True)
class RoundsBilled:
    """What the answer's rounds were billed so far, after a skill round (the provider's
    counts) or an attempt the provider left silent and inference abandoned (its prompt
    estimated in, `usage.estimated`): provisional, never recorded as such
    (ReplyFinished.usage or the failed report carries it later); counted in the estimate of
    a reply cut off before then."""

    usage: Usage


@dataclass(frozen=True)
class KeyRefused:
    """A provider refused (401) a key from the user's own wallet while the reply went on (a
    skill's service), said by inference the moment it did: marked inactive at once, once a
    reply (key_uses.py), not only with the reply's report, which may never come."""

    provider: str


ReplyEvent = (
    ReplyChunk
    | SkillActivity
    | AttachmentRead
    | UsageSpent
    | PromptSent
    | RoundsBilled
    | KeyRefused
    | ReplyFinished
)


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


@dataclass(frozen=True)
class JobContext:
    """What a finished job keeps beside its answer: the user's turn as the prompt saw it,
    inference's PromptReport and (only when asked for) the reasoning."""

    user_content: str | None = None
    attachments: tuple[Attachment, ...] = ()
    report: PromptReport | None = None
    reasoning: str = ""


@dataclass(frozen=True)
class KeyUse:
    """One use of a user's stored key, for keyvault's bookkeeping (key_uses.py)."""

    user_id: str
    provider: str
    used_at: datetime
    rejected: bool = False


@dataclass(frozen=True)
class WalletKey:
    provider: str
    created_at: datetime | None
    last_used_at: datetime | None
    hint: str
    # When the provider last rejected it in use (None: active).
    rejected_at: datetime | None = None
    # When keyvault stored it: changes on every write, also of a key with the same hint (None
    # from a keyvault older than KeyRecord.stored_at). Read back after an unconfirmed write.
    stored_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.rejected_at is None


@dataclass(frozen=True)
class KeyRestriction:
    """The provider authenticated a key but restricts it (ElevenLabs' "Restrict key"): it
    works, except where it lacks a permission; `missing_permissions` are those the provider's
    refusal named (it may lack others)."""

    missing_permissions: tuple[str, ...] = ()


@dataclass(frozen=True)
class KeyCheck:
    """What the provider said of a key: the models (or voices) it sees, and its restriction
    when it has one. `unchecked`: the provider has no free check (Brave Search) and a new key
    was only checked for its form; `billed_requests`: what proving a stored one spent."""

    models: int = 0
    restriction: KeyRestriction | None = None
    unchecked: bool = False
    billed_requests: int = 0


@dataclass(frozen=True)
class StoredKey:
    """A key the wallet stored: keyvault's record and, when the provider restricts the key,
    what it lacks (told to the user, not kept). `unchecked`: stored without a call proving
    it (the provider has no free check, or a superuser skipped it)."""

    key: WalletKey
    restriction: KeyRestriction | None = None
    unchecked: bool = False


@dataclass(frozen=True)
class ChannelActivation:
    guild_id: str
    channel_id: str
    personality: Personality
    activated_by_user_id: str | None
    activated_at: datetime


@dataclass(frozen=True)
class UsageTotal:
    provider: str
    model: str
    requests: int
    input_tokens: int
    output_tokens: int
    platform_user_id: str = ""
    images: int = 0
    request_type: str = "chat"
    audio_seconds: float = 0.0
    # Characters synthesised (request_type "speech"): what a speech provider bills.
    characters: int = 0
    # Of `requests`, those paid for but not delivered whole (usage_log.failed: a speech whose
    # audio broke off, could not be decoded or was cancelled after the provider billed it).
    failed_requests: int = 0
    # Of `requests`, those whose tokens are Tzurot's estimate (usage_log.estimated: an answer
    # broken off or cancelled mid-answer, whose provider's count never came).
    estimated_requests: int = 0


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


@dataclass(frozen=True)
class GroupJob:
    """A job that is part of a group round or chain (depth 0: answering the human)."""

    job_id: str
    conversation_id: str
    round_id: str
    depth: int
    last_in_round: bool
