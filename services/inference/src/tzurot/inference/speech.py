"""Speech providers: ElevenLabs (its own API) and OpenAI-compatible `/audio/speech`.

Each client answers `Accepted` the moment the provider took the text (it bills the characters
from then on, whatever becomes of the audio), then provider audio (MP3) as it streams, and
raises refusals as typed errors that name the provider and never quote a key. The parts, one
job each:

- speech_types: what a speech is asked with (VoiceSpec, Sample) and answered with (Accepted);
- elevenlabs_client: ElevenLabs over httpx (speaking, proving a key, cloning, the clones);
- elevenlabs_errors: ElevenLabs' refusals classified (which are the key's, the plan's, busy);
- speech_openai: OpenAI, Kokoro-FastAPI and openedai-speech through the `openai` client.

This module names them all in one place, as their users import them.
"""

from __future__ import annotations

from tzurot.inference.elevenlabs_client import (
    BUSY_BACKOFF_SECONDS,
    BUSY_RETRIES,
    CLONES_PAGE_SIZE,
    DEFAULT_ELEVENLABS_MODEL,
    DEFAULT_ELEVENLABS_URL,
    DEFAULT_ELEVENLABS_VOICE,
    ELEVENLABS_OUTPUT,
    MAX_CLONE_PAGES,
    ClonedVoice,
    ElevenLabsClient,
    KeyCheck,
)
from tzurot.inference.elevenlabs_errors import (
    BUSY_CODES,
    KEY_MISSING_PERMISSION,
    PAID_PLAN_CODES,
    PAID_PLAN_REQUIRED,
    VOICE_NOT_FOUND,
)
from tzurot.inference.speech_openai import DEFAULT_SPEECH_MODEL, OpenAISpeechClient
from tzurot.inference.speech_types import ELEVENLABS, Accepted, Sample, VoiceSpec

__all__ = [
    "BUSY_BACKOFF_SECONDS",
    "BUSY_CODES",
    "BUSY_RETRIES",
    "CLONES_PAGE_SIZE",
    "DEFAULT_ELEVENLABS_MODEL",
    "DEFAULT_ELEVENLABS_URL",
    "DEFAULT_ELEVENLABS_VOICE",
    "DEFAULT_SPEECH_MODEL",
    "ELEVENLABS",
    "ELEVENLABS_OUTPUT",
    "KEY_MISSING_PERMISSION",
    "MAX_CLONE_PAGES",
    "PAID_PLAN_CODES",
    "PAID_PLAN_REQUIRED",
    "VOICE_NOT_FOUND",
    "Accepted",
    "ClonedVoice",
    "ElevenLabsClient",
    "KeyCheck",
    "OpenAISpeechClient",
    "Sample",
    "VoiceSpec",
]
