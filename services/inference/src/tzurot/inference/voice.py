"""The voice use-cases: speak a text in a personality's voice, clone a voice, prove a key.

The user's key comes from keyvault per call (ElevenLabs: the wallet's `elevenlabs` key;
OpenAI-compatible: the provider's key, none for local servers) and lives only for the call.
The provider's audio is collected whole (the waveform and the duration need all of it), then
transcoded off the event loop to what Discord's voice bubble plays: OGG/Opus, mono, 48 kHz.
The moment the provider accepts the text a SpeechBilled goes out first: what fails after it
(audio that breaks off, cannot be decoded or is too large, a cancelled call) was still paid.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass

from pydantic import SecretStr

from tzurot.audio import AudioError, voice_message
from tzurot.inference.keys import KeyResolver, no_api_key
from tzurot.inference.providers import ProviderRegistry
from tzurot.inference.speech import (
    ELEVENLABS,
    Accepted,
    ElevenLabsClient,
    OpenAISpeechClient,
    Sample,
    VoiceSpec,
)
from tzurot.runtime.errors import InvalidArgument, Unavailable

MAX_SPEECH_CHARS = 10_000
MAX_SPEECH_AUDIO_BYTES = 50 * 1024 * 1024
MAX_CLONE_SAMPLES = 25
MAX_SAMPLE_BYTES = 10 * 1024 * 1024
CHUNK_BYTES = 256 * 1024
OGG = "audio/ogg"


@dataclass(frozen=True)
class SpeechBilled:
    """The provider accepted the text: `characters` are billed with `model`."""

    provider: str
    model: str
    characters: int


@dataclass(frozen=True)
class SpeechResult:
    content_type: str
    size_bytes: int
    duration_secs: float
    waveform: str
    characters: int


class VoiceService:
    def __init__(
        self,
        *,
        providers: ProviderRegistry,
        keys: KeyResolver,
        elevenlabs: ElevenLabsClient,
        speech: OpenAISpeechClient,
    ) -> None:
        self._providers = providers
        self._keys = keys
        self._elevenlabs = elevenlabs
        self._speech = speech

    async def _elevenlabs_key(self, user_id: str) -> SecretStr:
        key = await self._keys.service_key(user_id, ELEVENLABS)
        if key is None:
            raise no_api_key(ELEVENLABS)
        return key

    async def synthesize(
        self, user_id: str, voice: VoiceSpec, text: str
    ) -> AsyncGenerator[bytes | SpeechBilled | SpeechResult, None]:
        """Yields one SpeechBilled as soon as the provider accepted the text, then the voice
        message's bytes in chunks, then one SpeechResult."""
        _check_speech(user_id, voice, text)
        audio = bytearray()
        async for piece in self._provider_audio(user_id, voice, text):
            if isinstance(piece, Accepted):
                yield SpeechBilled(voice.provider, piece.model, len(text))
                continue
            audio += piece
            if len(audio) > MAX_SPEECH_AUDIO_BYTES:
                raise Unavailable(f"{voice.provider} sent more audio than expected")
        try:
            message = await asyncio.to_thread(voice_message, bytes(audio))
        except AudioError:
            raise Unavailable(
                f"{voice.provider} sent audio that could not be decoded",
                metadata={"provider": voice.provider},
            ) from None
        for start in range(0, len(message.ogg), CHUNK_BYTES):
            yield message.ogg[start : start + CHUNK_BYTES]
        yield SpeechResult(
            OGG, len(message.ogg), message.duration_secs, message.waveform, len(text)
        )

    def _provider_audio(
        self, user_id: str, voice: VoiceSpec, text: str
    ) -> AsyncIterator[Accepted | bytes]:
        if voice.provider == ELEVENLABS:
            return self._elevenlabs_audio(user_id, voice, text)
        return self._openai_audio(user_id, voice, text)

    async def _elevenlabs_audio(
        self, user_id: str, voice: VoiceSpec, text: str
    ) -> AsyncIterator[Accepted | bytes]:
        key = await self._elevenlabs_key(user_id)
        async for piece in self._elevenlabs.synthesize(key, voice, text):
            yield piece

    async def _openai_audio(
        self, user_id: str, voice: VoiceSpec, text: str
    ) -> AsyncIterator[Accepted | bytes]:
        provider = self._providers.get(voice.provider)
        key = (await self._keys.resolve(user_id, provider, free_use=False)).api_key
        async for piece in self._speech.synthesize(provider, key, voice, text):
            yield piece

    async def clone(
        self, user_id: str, name: str, description: str, samples: Sequence[Sample]
    ) -> str:
        """An ElevenLabs Instant Voice Clone; its voice id."""
        if not user_id:
            raise InvalidArgument("header.user_id", "user_id is required")
        if not name.strip():
            raise InvalidArgument("header.name", "the voice needs a name")
        if not samples:
            raise InvalidArgument("sample", "at least one sample is required")
        if len(samples) > MAX_CLONE_SAMPLES:
            raise InvalidArgument("sample", f"at most {MAX_CLONE_SAMPLES} samples")
        for sample in samples:
            if len(sample.data) > MAX_SAMPLE_BYTES:
                raise InvalidArgument("sample", f"{sample.filename} is larger than 10 MB")
        key = await self._elevenlabs_key(user_id)
        return await self._elevenlabs.clone(key, name.strip()[:100], description, samples)

    async def delete_voice(self, user_id: str, voice_id: str) -> bool:
        """Deletes an ElevenLabs voice of the user's account; False when it was gone."""
        if not user_id:
            raise InvalidArgument("user_id", "user_id is required")
        if not voice_id.strip():
            raise InvalidArgument("voice_id", "name the voice to delete")
        key = await self._elevenlabs_key(user_id)
        return await self._elevenlabs.delete_voice(key, voice_id.strip())

    async def count_voices(self, api_key: SecretStr) -> int:
        """A new ElevenLabs key proven by listing its voices (wallet set)."""
        return await self._elevenlabs.count_voices(api_key)

    async def count_stored_voices(self, user_id: str) -> int:
        return await self._elevenlabs.count_voices(await self._elevenlabs_key(user_id))


def _check_speech(user_id: str, voice: VoiceSpec, text: str) -> None:
    if not user_id:
        raise InvalidArgument("user_id", "user_id is required")
    if not voice.provider:
        raise InvalidArgument("voice.provider", "the voice names no provider")
    if not voice.voice_id:
        raise InvalidArgument("voice.voice_id", "the voice names no voice id")
    if not text.strip():
        raise InvalidArgument("text", "there is nothing to say")
    if len(text) > MAX_SPEECH_CHARS:
        raise InvalidArgument("text", f"text is longer than {MAX_SPEECH_CHARS} characters")
