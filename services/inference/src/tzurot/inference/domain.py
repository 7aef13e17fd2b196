"""Plain types of inference's use-cases: what a reply needs, and what it streams back."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import SecretStr

from tzurot.inference.lore.model import Activation, LoreInput, LoreResult

Role = Literal["system", "user", "assistant"]
KeySource = Literal["user", "system", "none"]
"""Whose key paid for a call: the user's, the operator's (free_use), or none (local model)."""


@dataclass(frozen=True)
class Character:
    """The personality as the prompt sees it."""

    id: str
    name: str
    system_prompt: str = ""
    description: str = ""
    personality: str = ""
    scenario: str = ""
    example_dialogues: str = ""
    post_history_instructions: str = ""
    author_note: str = ""
    """Injected `author_note_depth` messages from the bottom to keep style in long chats."""
    author_note_depth: int = 0
    nickname: str = ""
    """A card's nickname: what {{char}} becomes (else the name)."""
    birthday: str = ""
    """"MM-DD" (or "YYYY-MM-DD"); mentioned in the prompt when near."""
    cleanup_rules: tuple[CleanupRule, ...] = ()


@dataclass(frozen=True)
class CleanupRule:
    """A regex replacement applied to every answer, in order."""

    pattern: str
    replacement: str = ""


@dataclass(frozen=True)
class Persona:
    """How the user wants to be known to the personality."""

    name: str = ""
    preferred_name: str = ""
    pronouns: str = ""
    description: str = ""


@dataclass(frozen=True)
class ModelChoice:
    """The effective LLM config gateway resolved for this message."""

    provider: str
    model: str
    advanced_parameters: Mapping[str, Any] = field(default_factory=dict)
    free_use: bool = False
    context_window: int = 0
    max_referenced_messages: int = 0


@dataclass(frozen=True)
class HistoryTurn:
    """One stored message of the conversation, oldest first."""

    role: Role
    author_name: str
    content: str
    author_id: str = ""
    message_ids: tuple[str, ...] = ()
    created_at: datetime | None = None
    # Whose conversation the turn belongs to (group channels hold several).
    personality_id: str = ""
    # The job of the exchange it belongs to (a 🔄's prompt leaves out the one it replaces).
    job_id: str = ""


@dataclass(frozen=True)
class MemoryItem:
    """A long-term memory found relevant to the new message (score in [0, 1])."""

    id: str
    text: str
    score: float = 0.0
    created_at: datetime | None = None
    """When it happened: the prompt dates each memory, so "when" questions can be answered."""


@dataclass(frozen=True)
class ReplyContextQuery:
    """What a reply reads from memory in one call: the conversation's newest turns and the
    memories relevant to `query` (not those the turns already hold)."""

    channel_id: str
    personality_id: str
    history_limit: int
    user_id: str
    query: str
    memory_limit: int
    threshold: float
    whole_channel: bool = False
    query_author: str = ""
    """Who asked (the author name their turn is stored with): memory reads the query as
    that turn and reuses the reading when it forms it."""


@dataclass(frozen=True)
class ReplyContext:
    turns: list[HistoryTurn]
    """Oldest first."""
    memories: list[MemoryItem]
    """Most relevant first."""
    memories_unavailable: bool = False
    """The search failed (the turns were read): the reply goes without memories."""


@dataclass(frozen=True)
class Reference:
    """A message the new one points at (reply chain, message link)."""

    message_id: str
    author_name: str
    content: str
    depth: int = 1
    author_id: str = ""
    created_at: datetime | None = None


@dataclass(frozen=True)
class Mention:
    """A channel or role mentioned in the message, with what the prompt should know of it."""

    kind: str
    name: str
    description: str = ""


@dataclass(frozen=True)
class AttachmentRef:
    url: str
    content_type: str = ""
    filename: str = ""
    size_bytes: int = 0
    description: str = ""


@dataclass(frozen=True)
class Downloaded:
    data: bytes
    content_type: str


@dataclass(frozen=True)
class ImagePart:
    """An image given to a vision model as a data URL."""

    data_url: str


@dataclass(frozen=True)
class ReplyRequest:
    job_id: str
    user_id: str
    author_name: str
    channel_id: str
    character: Character
    model: ModelChoice
    content: str
    timezone: str = ""
    max_history_messages: int = 0
    persona: Persona | None = None
    references: tuple[Reference, ...] = ()
    attachments: tuple[AttachmentRef, ...] = ()
    mentions: tuple[Mention, ...] = ()
    memory_threshold: float = 0.0
    memory_limit: int = 0
    include_reasoning: bool = False
    author_id: str = ""
    """The author's platform id, to tell apart two people with one display name."""
    lore: LoreInput | None = None
    skills: tuple[str, ...] = ()
    """The skills the personality enabled (its owner's choice); the registry filters them."""
    group: tuple[GroupMember, ...] = ()
    """Group channels: every personality activated there (history then covers them all)."""
    directive: str = ""
    """A turn nobody asked for (free will, a chain reply): what the prompt ends with."""
    message_ids: tuple[str, ...] = ()
    shared_context: bool = False
    """A scheduled turn said in public: `user_id` only pays. The prompt reads the whole
    channel and only the personality's shared memories (`memory_user_id` is '')."""
    replaces_job_id: str = ""
    """A 🔄: the job whose answer this one replaces. Its exchange is still in history (until
    this answer is delivered) and is left out of the prompt."""

    @property
    def memory_user_id(self) -> str:
        """Whose own memories the reply may read ('' for the personality's shared ones)."""
        return "" if self.shared_context else self.user_id

    @property
    def whole_channel(self) -> bool:
        """Whether the history is the whole channel's (a group, or a scheduled turn)."""
        return bool(self.group) or self.shared_context


@dataclass(frozen=True)
class GroupMember:
    personality_id: str
    name: str


@dataclass(frozen=True)
class ResolvedKey:
    """An API key and where it came from; the repr never shows the key."""

    api_key: SecretStr
    source: KeySource


@dataclass(frozen=True)
class TokenUsage:
    input_tokens: int
    output_tokens: int
    images: int = 0
    estimated: bool = False
    """Some of these tokens are Tzurot's estimate, not the provider's count: a stream that
    ended without its usage chunk (chunks.py), a silent attempt's prompt (answering.py).
    Carried to ReplyFinished.usage and the failed UsageSpent (Usage.estimated)."""


TRANSCRIPTION = "transcription"
TRANSCRIPT_CLEANUP = "transcript_cleanup"
IMAGE_DESCRIPTION = "image_description"
IMAGE_GENERATION = "image_generation"
"""generate_image's call: the image model's provider, model, tokens and images."""
WEB_SEARCH = "web_search"
"""One Brave search billed to the user's wallet key (provider "brave", no model, no tokens)."""
FACT_EXTRACTION = "fact_extraction"
"""ExtractFacts' call (gateway's usage_log request_type for it too)."""


@dataclass(frozen=True)
class PaidCall:
    """One paid call besides the answer's own: a helper model's to read an attachment, or a
    skill's (an image drawn, a Brave search); what the gateway records in its usage log
    (`request_type` is one of the above; "" for the answer's own calls, UsageSpent)."""

    request_type: str
    provider: str
    model: str
    usage: TokenUsage
    audio_seconds: float = 0.0
    """Audio transcribed, when the provider bills by duration (whisper-1)."""
    estimated: bool = False
    """The tokens are Tzurot's estimate, not the provider's count, which never came: the
    stream broke off after the request went out (Usage.estimated)."""


@dataclass(frozen=True)
class Transcript:
    """An `/audio/transcriptions` answer: the text and what the provider says it billed
    (tokens for gpt-4o-transcribe, seconds for whisper-1; zero when it says nothing)."""

    text: str
    usage: TokenUsage = TokenUsage(0, 0)
    audio_seconds: float = 0.0


@dataclass(frozen=True)
class ImageAnswer:
    """An image model's answer: the images (data URLs or links) and what the provider says
    it billed (OpenRouter bills image-output models per token; zero when it says nothing)."""

    urls: tuple[str, ...]
    usage: TokenUsage = TokenUsage(0, 0)


@dataclass(frozen=True)
class TextDelta:
    """A piece of the answer, in order."""

    text: str


@dataclass(frozen=True)
class ReasoningDelta:
    """A piece of the provider's separate reasoning field (never shown as the answer)."""

    text: str


@dataclass(frozen=True)
class ToolCall:
    """A skill call the model asked for; `arguments` is the JSON text it sent."""

    id: str
    name: str
    arguments: str
    extra_content: Mapping[str, Any] | None = None
    """The provider's own data on the call, echoed back with it on the next round (Gemini 3:
    `{"google": {"thought_signature": …}}`, refused with a 400 when missing)."""


@dataclass(frozen=True)
class ToolCallStarted:
    """The model began a tool call: no more of this response is shown as the answer."""


@dataclass(frozen=True)
class ToolCallText:
    """A piece of the tool calls the model streams (a call's name, part of its arguments):
    never shown, but output the provider bills, so a round broken off mid-call counts it."""

    text: str


@dataclass(frozen=True)
class Completion:
    """The end of one provider call: the whole answer and what it cost."""

    content: str
    usage: TokenUsage
    finish_reason: str
    reasoning: str = ""
    tool_calls: tuple[ToolCall, ...] = ()


@dataclass(frozen=True)
class SkillStep:
    """One skill call of the tool loop, for Inspect (and history, unless stealth)."""

    step: int
    skill: str
    arguments: str
    summary: str
    duration_ms: int
    ok: bool
    stealth: bool


@dataclass(frozen=True)
class SkillActivity:
    """A skill started: the personality is working (the bot shows typing)."""

    skill: str
    step: int


@dataclass(frozen=True)
class GeneratedFile:
    """A file for the answer (a generated image), posted as an attachment."""

    filename: str
    content_type: str
    data: bytes = field(repr=False)
    description: str = ""


@dataclass(frozen=True)
class PromptReport:
    """Which context informed a reply (for /inspect)."""

    prompt_tokens_estimate: int
    history_turns: int
    key_source: KeySource
    memory_ids: tuple[str, ...] = ()
    referenced_message_ids: tuple[str, ...] = ()
    lore: tuple[Activation, ...] = ()
    lore_dropped: tuple[Activation, ...] = ()
    skill_steps: tuple[SkillStep, ...] = ()
    # The memories of memory_ids (id and text), for Inspect.
    memories: tuple[MemoryItem, ...] = ()
    # What the answer went without, e.g. MEMORY_UNAVAILABLE.
    degraded: tuple[str, ...] = ()
    # Providers/services whose key from the user's wallet this reply used.
    user_key_providers: tuple[str, ...] = ()
    # Providers/services whose key from the user's wallet refused a call (401) the reply
    # went on without (a skill's): gateway marks each inactive. Never the operator's key.
    refused_key_providers: tuple[str, ...] = ()


MEMORY_UNAVAILABLE = "memory_unavailable"
"""A degraded answer's reason: long-term memory failed, so the answer had none."""
HISTORY_UNAVAILABLE = "history_unavailable"
"""A degraded answer's reason: the conversation's history could not be read (memory down)."""


@dataclass(frozen=True)
class ReplyFinished:
    content: str
    provider: str
    model: str
    usage: TokenUsage
    finish_reason: str
    report: PromptReport
    reasoning: str = ""
    attachments: tuple[AttachmentRef, ...] = ()
    """The request's attachments with their description or transcript filled in."""
    user_content: str = ""
    """The user's message as it entered the prompt (with transcripts): what history keeps."""
    lore: LoreResult | None = None
    files: tuple[GeneratedFile, ...] = ()


@dataclass(frozen=True)
class AttachmentRead:
    """An attachment a helper model read (transcribed, described), sent as soon as it is
    paid for, before the answer: its usage is recorded and its text kept by the gateway
    whatever becomes of the answer, so the job's next attempt gives it back filled in."""

    index: int
    attachment: AttachmentRef
    paid: tuple[PaidCall, ...]
    refused_key_providers: tuple[str, ...] = ()
    """Providers whose key from the user's wallet refused a call the reading did without
    (a clean-up): gateway marks each inactive."""


@dataclass(frozen=True)
class UsageSpent:
    """Calls a reply paid for that ReplyFinished.usage does not carry, sent as soon as they
    are paid for; the gateway records each as a usage row at once (never again with the
    answer), so what was paid is in `/usage` whatever becomes of the reply:

    - a skill's paid call (an image drawn, a Brave search), after its round;
    - when the reply fails (no ReplyFinished comes), just before the error: what the answer's
      own rounds were billed so far, one PaidCall with `request_type` "" (the job's kind, as
      ReplyFinished.usage), `failed` (paid, not delivered);
    - an answer's round the provider broke off once it began answering (a dropped or idle
      stream, an error event mid-answer), as soon as it broke: its tokens estimated
      (`PaidCall.estimated`: the prompt sent, the text and reasoning received), `failed`, with
      `request_type` ""; never counted in the meter above nor in ReplyFinished.usage.

    `failed`: paid but not delivered (usage_log.failed): the reply failed, or the call was cut
    off after its request went out (the provider may have billed it)."""

    paid: tuple[PaidCall, ...]
    failed: bool = False
    all_rounds: bool = False
    """The answer's own calls, all its rounds billed so far (the failed reply's report): they
    include every round PromptSent and RoundsBilled announced (the gateway's estimate of a
    cancelled reply then counts none of them again). Unset on a broken-off round's estimate."""


@dataclass(frozen=True)
class PromptSent:
    """The provider began answering one of an answer's requests (each round, each attempt;
    sent at its first streamed event): it bills the prompt. Never for a request it refused
    before any event (a 401, a 429, a 5xx: not billed) or never answered (silence). The
    gateway counts it in what a reply cancelled before any report of that round was billed
    (its prompt, estimated), as no report can come then."""

    provider: str
    model: str
    input_tokens: int
    """The prompt's messages as sent, with the model's tokenizer (broken_off.prompt_tokens)."""


@dataclass(frozen=True)
class RoundsBilled:
    """What the answer's rounds were billed so far (the meter), sent after each skill round
    and as soon as an attempt the provider left silent is abandoned (its prompt's estimate is
    then in it): provisional, for the gateway to count should the reply be cancelled before
    ReplyFinished (or the failed UsageSpent, `all_rounds`) carries them."""

    provider: str
    model: str
    usage: TokenUsage


@dataclass(frozen=True)
class HelperCallPending:
    """What the helper calls reading attachment `index` may bill should the reply be cut now
    (its client cancelled, the gateway's deadline, inference stopping), when no report can
    follow: each call whose request the provider had whole (uploads.py) and whose outcome no
    event carries yet, estimated (a streamed call's prompt, a transcription's audio
    duration), or the provider's own count once it came (a transcript being cleaned up).
    Said each time that changes, it replaces what was said before for the attachment; empty:
    nothing is in flight (that attempt refused, or asked again). The gateway keeps it for
    such a cut only: the attachment's AttachmentRead, a failed UsageSpent of the same
    request_type or the reply's own error carries the outcome."""

    index: int
    calls: tuple[PaidCall, ...]


@dataclass(frozen=True)
class KeyRefused:
    """A provider refused (401) a key from the user's own wallet while the reply went on (a
    skill's service), sent the moment it did, once per provider a reply: the gateway marks
    that key inactive then, not only when the reply ends (which a killed or stalled
    inference never does). Never the operator's key, nor the answer's own."""

    provider: str


@dataclass
class UsageMeter:
    """The tokens a reply's answer calls were billed so far, added as each is paid for (the
    answer's `_Budget.spent`): what a reply that fails reports (UsageSpent, failed)."""

    input_tokens: int = 0
    output_tokens: int = 0
    estimated: bool = False
    """Any call added was estimated (TokenUsage.estimated)."""

    def add(self, input_tokens: int, output_tokens: int, *, estimated: bool = False) -> None:
        self.input_tokens += input_tokens
        self.output_tokens += output_tokens
        self.estimated = self.estimated or estimated

    @property
    def usage(self) -> TokenUsage:
        return TokenUsage(self.input_tokens, self.output_tokens, estimated=self.estimated)

    def __bool__(self) -> bool:
        return bool(self.input_tokens or self.output_tokens)


ReplyEvent = (
    TextDelta
    | SkillActivity
    | AttachmentRead
    | UsageSpent
    | PromptSent
    | RoundsBilled
    | HelperCallPending
    | KeyRefused
    | ReplyFinished
)
StreamEvent = TextDelta | ReasoningDelta | ToolCallStarted | ToolCallText | Completion
