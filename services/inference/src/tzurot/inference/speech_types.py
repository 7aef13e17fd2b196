"""What a speech is asked with and answered with, whichever provider speaks it."""

from __future__ import annotations

from dataclasses import dataclass

ELEVENLABS = "elevenlabs"
"""The provider name of ElevenLabs (its own API); any other speaks OpenAI's `/audio/speech`."""


@dataclass(frozen=True)
class VoiceSpec:
    provider: str
    voice_id: str
    model: str = ""
    stability: float | None = None
    similarity_boost: float | None = None
    style: float | None = None
    speed: float | None = None


@dataclass(frozen=True)
class Accepted:
    """The provider took the text (a 2xx answer): the characters are billed from here on."""

    model: str


@dataclass(frozen=True)
class Sample:
    filename: str
    data: bytes
