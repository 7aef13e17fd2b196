"""What calls cost: one call's usage, and usage totals."""

from __future__ import annotations

from dataclasses import dataclass


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
