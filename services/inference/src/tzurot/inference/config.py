"""Inference settings (env `TZUROT_*`).

Mappings are JSON in one variable (`TZUROT_PROVIDERS='{"local": "http://…/v1"}'`) or one
variable per entry (`TZUROT_SYSTEM_KEYS__OPENROUTER=…`); only the JSON form also works as a
file in `TZUROT_SECRETS_DIR`.
"""

import re
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import SettingsError

from tzurot.inference.keys import DEFAULT_FREE_MODELS
from tzurot.runtime.config import ServiceSettings
from tzurot.runtime.errors import StartupError

_FIELD_IN_ERROR = re.compile(r'field "(\w+)"')


class CleanupRuleSetting(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pattern: str
    replacement: str = ""


class ProviderSetting(BaseModel):
    """A `TZUROT_PROVIDERS` entry that says what its server is for (providers.Declared):
    `{"base_url": "http://tts.lan:8880/v1", "speech": true, "keyless": true}`. Left out,
    `speech` and `keyless` follow the built-in names (openai, kokoro and openedai-speech
    speak; the local servers are keyless; an added name neither)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    base_url: str
    speech: bool | None = None
    """It serves OpenAI's `/audio/speech`: a voice may name it (ListProviders' speech_providers)."""
    keyless: bool | None = None
    """It takes no key: nobody is asked for one (no `/wallet set`), a placeholder is sent."""


class InferenceSettings(ServiceSettings):
    """Where inference listens, the services it calls, its providers and their limits."""

    listen: str = "127.0.0.1:15052"
    memory_addr: str = "127.0.0.1:15053"
    keyvault_addr: str = "127.0.0.1:15054"
    providers: dict[str, str | ProviderSetting] = Field(default_factory=dict)
    """`TZUROT_PROVIDERS`: extra or overriding providers, name -> OpenAI-compatible base URL,
    or name -> a `ProviderSetting` declaring whether it speaks and whether it takes a key."""
    loopback_providers: bool = True
    """`TZUROT_LOOPBACK_PROVIDERS=false` where nothing serves on inference's loopback (a pod):
    the built-in local providers (ollama, vllm, lmstudio, kokoro, openedai-speech) are then
    offered only when `TZUROT_PROVIDERS` gives them an address; asking for one before is
    refused with what to set (`FAILED_PRECONDITION PROVIDER_NOT_CONFIGURED`)."""
    system_keys: dict[str, SecretStr] = Field(default_factory=dict)
    """`TZUROT_SYSTEM_KEYS`: the operator's keys by provider, only for free_use configs."""
    free_models: list[str] = Field(default_factory=lambda: list(DEFAULT_FREE_MODELS))
    """`TZUROT_FREE_MODELS`: JSON list of model globs a free_use config may run on a system key."""
    provider_max_retries: int = Field(default=2, ge=0, le=10)
    """Retries (with backoff) of every provider call whose connection failed before the
    request was sent, and of a stream's 5xx or dropped connection before anything came (its
    429s: once, see retries.py). The OpenAI client's own retries are always off."""
    provider_timeout_seconds: float = Field(default=120.0, gt=0)
    """Per connect/read/write: for a stream, the longest silence between two chunks."""
    history_limit: int = Field(default=30, ge=0, le=500)
    """Turns of history in the prompt when the request does not say."""
    first_event_timeout_seconds: float = Field(default=180.0, gt=0)
    """From a request to the provider's first event (thinking counts); then it is asked
    again while time remains."""
    idle_timeout_seconds: float = Field(default=120.0, gt=0)
    """The longest silence between two events once the provider began (never asked again)."""
    total_timeout_seconds: float = Field(default=480.0, gt=0)
    """No attempt of one reply starts, nor waits for its first event, later than this; a
    reply still going then (an answer streaming, a skill running) is cut off."""
    report_grace_seconds: float = Field(default=2.0, ge=0, le=30)
    """A reply ends this long (at most a quarter of the caller's time) before its caller's
    gRPC deadline (the gateway's), so that what it must report arrives first: its failed
    usage and the wallet keys refused on the way (error metadata `refused_key_providers`),
    which the caller's own cut would lose."""
    min_attempt_seconds: float = Field(default=15.0, gt=0)
    """A retry (after its wait), or a round that may call skills, starts only with this much
    of the reply's time left (or `first_event_timeout_seconds`, when shorter)."""
    default_context_window: int = Field(default=32_768, ge=1024, le=10_000_000)
    """Tokens, for a config that does not say."""
    reference_share: float = Field(default=0.5, gt=0, le=1)
    """The most of the remaining budget referenced messages (and, apart, mentions) may take."""
    cleanup_rules: list[CleanupRuleSetting] = Field(default_factory=list)
    """`TZUROT_CLEANUP_RULES`: JSON `[{"pattern": "…", "replacement": "…"}]`, applied to every
    answer before the personality's own rules."""
    vision_provider: str = "openrouter"
    vision_model: str = "openai/gpt-4o-mini"
    """Describes images for models that cannot see them."""
    transcription_provider: str = "openai"
    transcription_model: str = "whisper-1"
    transcript_cleanup_provider: str = "openrouter"
    transcript_cleanup_model: str = "openai/gpt-4o-mini"
    """A cheap model that fixes a transcript's punctuation; empty skips the clean-up."""
    attachment_hosts: list[str] = Field(
        default_factory=lambda: ["cdn.discordapp.com", "media.discordapp.net"]
    )
    """Hosts attachments may be downloaded from (nothing else: no requests into the mesh)."""
    max_image_bytes: int = Field(default=10 * 1024 * 1024, ge=1)
    max_audio_bytes: int = Field(default=25 * 1024 * 1024, ge=1)
    max_attachments: int = Field(default=10, ge=0, le=50)

    # ---- skills (docs: README "Skills") ----
    skills_enabled: bool = True
    """`TZUROT_SKILLS_ENABLED=false` turns every skill off (no tools are offered at all)."""
    skills_disabled: list[str] = Field(default_factory=list)
    """`TZUROT_SKILLS_DISABLED='["web_research"]'`: skills turned off for every personality."""
    skill_max_steps: int = Field(default=3, ge=1, le=5)
    """Rounds of skill calls before the model must answer."""
    skill_time_budget_seconds: float = Field(default=60.0, gt=0, le=600)
    skill_max_calls: int = Field(default=8, ge=1, le=32)
    """Skill calls per answer, all rounds together."""
    skill_result_tokens: int = Field(default=1500, ge=100, le=20_000)
    """A skill result is cut to this many tokens (less when the context window is short)."""
    skill_no_tool_models: list[str] = Field(default_factory=list)
    """Model globs never offered tools (others are learnt from a provider's refusal)."""
    skill_fetch_allow: list[str] = Field(default_factory=list)
    """"host:port" origins read_url may reach although private: for tests only; empty."""
    skill_fetch_max_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    skill_fetch_timeout_seconds: float = Field(default=15.0, gt=0, le=120)
    skill_extract_memory_mb: int = Field(default=256, ge=128, le=4096)
    """The page-text worker's address space (RLIMIT_AS): a page past it is not read."""
    skill_extract_seconds: float = Field(default=10.0, gt=0, le=120)
    """A page's parsing at most (CPU and wall): the worker is killed and replaced past it."""
    search_backend: Literal["", "searxng", "brave"] = ""
    """web_research's engine; empty leaves web_research off."""
    searxng_url: str = ""
    brave_url: str = "https://api.search.brave.com/res/v1"
    elevenlabs_url: str = "https://api.elevenlabs.io"
    """ElevenLabs' API root (voice: text to speech and cloning with the user's key)."""
    voice_work_at_once: int = Field(default=1, ge=1, le=8)
    """How many of the largest voice works (a 40-minute speech, a clone's samples: ~230-300 MiB
    each) the process holds at once: a budget each work reserves from before it starts (a clone
    a whole one; a speech its estimated length, at least 1/16 of one, before its provider is
    asked), waiting first come first served within its call's deadline. One fits the pod's
    512Mi beside inference's own ~175 MiB and still runs ~16 default-length speeches at once;
    raise it only with the memory limit. Conversions use CPU, which the pod's one core shares."""
    image_provider: str = "openrouter"
    image_model: str = "google/gemini-2.5-flash-image"
    image_endpoint: Literal["auto", "chat", "images"] = "auto"
    """"chat" (modalities, OpenRouter) or "images" (/images/generations); auto: chat for
    openrouter, images otherwise."""
    image_max_count: int = Field(default=2, ge=1, le=4)
    image_max_bytes: int = Field(default=5 * 1024 * 1024, ge=1024, le=10 * 1024 * 1024)
    """Bytes per image. At most 10 MiB: Discord's upload limit per file in a server without
    boosts (the bot cannot know every server's tier when the image is drawn), so any image
    drawn can be posted. Each call holds this much of the answer's file room (the gRPC message
    carrying its files, about 15 MiB) before it starts: 5 MiB lets three be drawn at once."""

    @classmethod
    def load(cls, **overrides: Any) -> Self:
        """As ServiceSettings.load; a mapping that is not JSON is one line, not a traceback."""
        try:
            return super().load(**overrides)
        except SettingsError as exc:
            # pydantic-settings names the field but not the value (which may be a key).
            found = _FIELD_IN_ERROR.search(str(exc))
            name = f"TZUROT_{found.group(1).upper()}" if found else "a TZUROT_* setting"
            raise StartupError(f"{name} is not valid JSON") from None
