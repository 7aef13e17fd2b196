"""What gateway asks inference for, and the events of inference's reply stream."""

from __future__ import annotations

from dataclasses import dataclass, field

from tzurot.gateway.domain_configs import ResolvedConfig
from tzurot.gateway.domain_messages import Attachment, Location, Mention, ReferencedMessage
from tzurot.gateway.domain_personalities import GroupMember, Personality
from tzurot.gateway.domain_usage import Usage
from tzurot.gateway.domain_users import Actor, Persona
from tzurot.gateway.lore import LoreActivation, LoreContext, LoreState


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
    # Reasoning kept on the job for Inspect (the user's keep_reasoning setting).
    keep_reasoning: bool
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
class HelperCallPending:
    """The helper calls reading attachment `index` (its image description, its transcription,
    the transcript's clean-up) whose request the provider has whole and whose outcome no
    event carried yet: `calls` (request_type set) is what they may bill should the reply be
    cut now, estimated (but a transcription's own count, once it came). It replaces what was
    said before for the attachment; empty: nothing is in flight (that attempt refused, or
    asked again). An older inference's TranscriptionPending reads as one (its estimate, or
    none). Never recorded as such; kept for a reply cut before the outcome
    (cancelled_usage.py)."""

    index: int
    calls: tuple[Usage, ...]


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
    | HelperCallPending
    | KeyRefused
    | ReplyFinished
)
