"""The voice use-cases: speak a text in a personality's voice, clone a voice, prove a key.

The user's key comes from keyvault per call (ElevenLabs: the wallet's `elevenlabs` key;
OpenAI-compatible: the provider's key, none for local servers) and lives only for the call.
The provider's audio is collected whole (the waveform and the duration need all of it), then
transcoded off the event loop to what Discord's voice bubble plays: OGG/Opus, mono, 48 kHz.
A conversion holds its samples (up to ~230 MB at 40 minutes) and a clone its samples (up to
250 MiB): the process has a budget of `work_at_once` such largest works (WORK_UNIT each), from
which each reserves what it may hold (tzurot.inference.voice_budget; the others wait, first come
first served, within their call's deadline), so two long ones cannot take the pod past its
memory limit while many short speeches run at once. A clone reserves a whole unit; a speech
its estimated length in seconds (speech_length), at least MIN_SPEECH_WEIGHT and at most a unit.
A speech reserves before the provider is asked and keeps it through the provider's audio and
the conversion: a wait comes before anything is paid, never between the payment and the voice
message (a deadline passing there would leave a paid speech unsent). So audio longer than its
estimate (a slow voice) is topped up without waiting as its bytes arrive
(tzurot.inference.voice_audio); when the budget cannot give it, the paid audio is kept and the
shortfall logged `voice.over_budget`.
The moment the provider accepts the text a SpeechBilled goes out first: what fails after it
(audio that breaks off, cannot be decoded or is too large, a cancelled call) was still paid.
So a text whose speech would clearly last longer than a voice message can be (its duration
estimated from the text and the voice's speed: tzurot.inference.speech_length) is refused
before the provider is asked (SPEECH_TOO_LONG); the audio's own length, checked once it is
whole, stays the backstop for one the estimate let through.

An ElevenLabs clone belongs to the account that cloned it: ElevenLabs answers any other
account's key `voice_not_found` (before billing anything). Speech is always paid with the
listener's own key, so a personality's cloned voice speaks only for its cloner; anyone else is
answered in a stand-in, ElevenLabs' default voice (DEFAULT_ELEVENLABS_VOICE, every account's),
and the SpeechResult says so (`stand_in_voice`) for the bot to tell them once. Cloning, and
finding and deleting clones, is tzurot.inference.voice_clones' (a clone holds a whole unit of
the budget while its samples are read and sent: `audio_slot`).

A refusal of the key (INVALID_API_KEY) says whose key it was (`key_source`, as an answer's
does): "user" for a key of the user's wallet, which gateway then marks inactive; never the
operator's, and a keyless local server's is "none".
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import math
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import TypeVar

import structlog
from pydantic import SecretStr

from tzurot.audio import AudioError, AudioTooLong, VoiceMessage, voice_message
from tzurot.inference.keys import KeyResolver, no_api_key, refusal_names_key
from tzurot.inference.providers import ProviderRegistry
from tzurot.inference.speech import (
    DEFAULT_ELEVENLABS_VOICE,
    ELEVENLABS,
    VOICE_NOT_FOUND,
    Accepted,
    ElevenLabsClient,
    KeyCheck,
    OpenAISpeechClient,
    Sample,
    VoiceSpec,
)
from tzurot.inference.speech_length import clearly_longer_than, estimated_seconds
from tzurot.inference.voice_audio import ReservedAudio
from tzurot.inference.voice_budget import Reservation, WeightedBudget
from tzurot.inference.voice_clones import MAX_CLONE_SAMPLES, VoiceClones
from tzurot.runtime.errors import FailedPrecondition, InvalidArgument, Unavailable

__all__ = [
    "CHUNK_BYTES",
    "LONGER_THAN_RESERVED",
    "MAX_CLONE_SAMPLES",
    "MAX_SPEECH_AUDIO_BYTES",
    "MAX_SPEECH_CHARS",
    "MAX_VOICE_MESSAGE_SECONDS",
    "MIN_SPEECH_WEIGHT",
    "OGG",
    "SPEECH_TOO_LONG",
    "VOICE_MESSAGE_MAX_BYTES",
    "WORK_UNIT",
    "SpeechBilled",
    "SpeechResult",
    "VoiceService",
]

log = structlog.get_logger(__name__)

_T = TypeVar("_T")

MAX_SPEECH_CHARS = 10_000
MAX_SPEECH_AUDIO_BYTES = 50 * 1024 * 1024
MAX_VOICE_MESSAGE_SECONDS = 2400.0
"""The longest speech made a voice message: 40 minutes of Opus at most 32 kbps (constrained:
33.1 kbps with the OGG pages, measured at worst) is at most ~9.5 MiB, under
VOICE_MESSAGE_MAX_BYTES, and its samples, held while converting, ~230 MB."""
WORK_UNIT = int(MAX_VOICE_MESSAGE_SECONDS)
"""The weight of the largest voice work (a 40-minute speech's seconds; a clone weighs as
much): `work_at_once` of them make the process's budget."""
MIN_SPEECH_WEIGHT = WORK_UNIT // 16
"""The least a speech reserves (150 seconds' worth, above the default 2,000 characters' ~2
minutes): at most 16 speeches per unit at once, however short, each holding a provider stream."""
LONGER_THAN_RESERVED = 1.5
"""Audio this many times its estimate is logged (`voice.longer_than_reserved`, with what its
reservation grew to: less than the duration where its bytes under-counted it, voice_audio)."""
VOICE_MESSAGE_MAX_BYTES = 10 * 1024 * 1024
"""Discord's upload limit per file in a server without boosts (the bot's default; inference
cannot know the server's tier). The voice message's real size is checked against it once
encoded: a larger one is refused here (SPEECH_TOO_LONG) rather than carried to the bot for
Discord to refuse."""
SPEECH_TOO_LONG = "SPEECH_TOO_LONG"
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
    stand_in_voice: bool = False
    """Spoken in the provider's default voice: the personality's is not the key's to use."""


@dataclass(frozen=True)
class _StandIn:
    """The personality's voice is not the key's: the provider's default voice speaks instead."""

    voice_id: str


class VoiceService:
    def __init__(
        self,
        *,
        providers: ProviderRegistry,
        keys: KeyResolver,
        elevenlabs: ElevenLabsClient,
        speech: OpenAISpeechClient,
        work_at_once: int = 1,
    ) -> None:
        self._providers = providers
        self._keys = keys
        self._elevenlabs = elevenlabs
        self._speech = speech
        self._clones = VoiceClones(elevenlabs, self._elevenlabs_key)
        self._work_slots = WeightedBudget(work_at_once * WORK_UNIT)
        """Clones holding their samples (`audio_slot`, a whole unit), speeches from their
        provider request to their conversion's end (`Reservation`, `_convert`)."""
        self._conversions = ThreadPoolExecutor(
            max_workers=self._work_slots.capacity // MIN_SPEECH_WEIGHT,
            thread_name_prefix="voice-conversion",
        )
        """The conversions' own threads, as many as the budget lets run at once (a thread
        keeps its weight until it ends): a paid speech never waits for a thread behind the
        default pool's other work (lorebook matching, page extraction). Threads are made on
        demand and stay idle between conversions; the service lives as long as the process
        and has no close: concurrent.futures ends idle ones at exit (a running one finishes
        first, as in the default pool)."""

    @asynccontextmanager
    async def audio_slot(self, what: str) -> AsyncIterator[None]:
        """Held while a clone's samples are read and sent: a whole unit of the budget (waiting,
        not failing, while it is taken)."""
        hold = Reservation(self._work_slots, WORK_UNIT, what)
        await hold.take()
        try:
            yield
        finally:
            hold.release()

    async def _convert(self, work: Callable[[], _T], hold: Reservation | None = None) -> _T:
        """`work` on a conversion thread (`_conversions`) within `hold`, taken already (a
        speech's, before its provider was asked), else a whole unit waited for now. A thread
        cannot be stopped: a caller cancelled meanwhile (its deadline passed) leaves, but the
        weight stays taken until the thread has finished, so the bound holds for the memory,
        not only for the callers."""
        if hold is None:
            hold = Reservation(self._work_slots, WORK_UNIT, "conversion")
        await hold.take()
        try:
            context = contextvars.copy_context()  # the log context, as asyncio.to_thread
            running = asyncio.get_running_loop().run_in_executor(
                self._conversions, functools.partial(context.run, work)
            )
        except BaseException:
            hold.release()
            raise
        hold.hand_to(running)
        return await asyncio.shield(running)

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
        _check_length(voice, text)
        # Taken (waited for) just before the provider is asked, kept to the conversion's end.
        hold = Reservation(self._work_slots, _speech_weight(voice, text), "speech")
        estimated = hold.weight
        audio = ReservedAudio(
            hold,
            provider=voice.provider,
            max_bytes=MAX_SPEECH_AUDIO_BYTES,
            step=MIN_SPEECH_WEIGHT,
            most=WORK_UNIT,
        )
        stand_in = False
        try:
            async for piece in self._provider_audio(user_id, voice, text, hold):
                if isinstance(piece, _StandIn):
                    stand_in = True
                    continue
                if isinstance(piece, Accepted):
                    yield SpeechBilled(voice.provider, piece.model, len(text))
                    continue
                audio.add(piece)  # tops `hold` up as the audio passes what it covers
            data = audio.take()
            message = await self._convert(
                functools.partial(voice_message, data, max_seconds=MAX_VOICE_MESSAGE_SECONDS),
                hold,
            )
        except AudioTooLong:  # the backstop: the estimate let it through, the audio is longer
            raise FailedPrecondition(
                f"the speech is longer than a voice message can be "
                f"({MAX_VOICE_MESSAGE_SECONDS / 60:g} minutes): shorten the text or speed the "
                "voice up",
                reason=SPEECH_TOO_LONG,
            ) from None
        except AudioError:
            raise Unavailable(
                f"{voice.provider} sent audio that could not be decoded",
                metadata={"provider": voice.provider},
            ) from None
        finally:
            hold.release()  # a no-op once the conversion's thread has it
        del data
        if message.duration_secs > estimated * LONGER_THAN_RESERVED:
            log.info(
                "voice.longer_than_reserved",
                estimated_secs=estimated,
                reserved_secs=hold.weight,
                duration_secs=round(message.duration_secs),
            )
        _check_size(message)
        for start in range(0, len(message.ogg), CHUNK_BYTES):
            yield message.ogg[start : start + CHUNK_BYTES]
        yield SpeechResult(
            OGG, len(message.ogg), message.duration_secs, message.waveform, len(text), stand_in
        )

    def _provider_audio(
        self, user_id: str, voice: VoiceSpec, text: str, hold: Reservation
    ) -> AsyncIterator[Accepted | bytes | _StandIn]:
        """The provider's audio, asked once the user's key is known and `hold` taken."""
        if voice.provider == ELEVENLABS:
            return self._elevenlabs_audio(user_id, voice, text, hold)
        return self._openai_audio(user_id, voice, text, hold)

    async def _elevenlabs_audio(
        self, user_id: str, voice: VoiceSpec, text: str, hold: Reservation
    ) -> AsyncIterator[Accepted | bytes | _StandIn]:
        """The voice's audio; where the key's account has no such voice (another account's
        clone: ElevenLabs refuses it before billing), ElevenLabs' default voice's, after a
        _StandIn."""
        key = await self._elevenlabs_key(user_id)
        await hold.take()
        with refusal_names_key(ELEVENLABS, "user"):
            started = False
            try:
                async for piece in self._elevenlabs.synthesize(key, voice, text):
                    started = True
                    yield piece
                return
            except FailedPrecondition as exc:
                if (
                    started
                    or exc.reason != VOICE_NOT_FOUND
                    or voice.voice_id == DEFAULT_ELEVENLABS_VOICE
                ):
                    raise
            log.info("voice.stand_in", user_id=user_id, voice_id=voice.voice_id)
            yield _StandIn(DEFAULT_ELEVENLABS_VOICE)
            stand_in = replace(voice, voice_id=DEFAULT_ELEVENLABS_VOICE)
            async for piece in self._elevenlabs.synthesize(key, stand_in, text):
                yield piece

    async def _openai_audio(
        self, user_id: str, voice: VoiceSpec, text: str, hold: Reservation
    ) -> AsyncIterator[Accepted | bytes]:
        provider = self._providers.get(voice.provider)
        key = await self._keys.resolve(user_id, provider, free_use=False)
        await hold.take()
        with refusal_names_key(provider.name, key.source):
            async for piece in self._speech.synthesize(provider, key.api_key, voice, text):
                yield piece

    async def clone(
        self,
        user_id: str,
        name: str,
        description: str,
        samples: Sequence[Sample],
        *,
        personality_id: str = "",
        keep_voice_id: str = "",
        keep_voice_ids: Collection[str] = (),
        mark_personality_id: str = "",
    ) -> str:
        """An ElevenLabs Instant Voice Clone's voice id (VoiceClones.clone says the rest)."""
        return await self._clones.clone(
            user_id,
            name,
            description,
            samples,
            personality_id=personality_id,
            keep_voice_id=keep_voice_id,
            keep_voice_ids=keep_voice_ids,
            mark_personality_id=mark_personality_id,
        )

    async def marked_clones(self, user_id: str, personality_id: str) -> list[str]:
        """The voice ids of the user's clones marked for the personality."""
        return await self._clones.marked_clones(user_id, personality_id)

    async def delete_voice(self, user_id: str, voice_id: str) -> bool:
        """Deletes an ElevenLabs voice of the user's account; False when it was gone."""
        return await self._clones.delete_voice(user_id, voice_id)

    async def check_key(self, api_key: SecretStr) -> KeyCheck:
        """A new ElevenLabs key proven by listing its voices (wallet set); one ElevenLabs
        authenticated but restricted without `voices_read` is a working, restricted key."""
        return await self._elevenlabs.check_key(api_key)

    async def check_stored_key(self, user_id: str) -> KeyCheck:
        """The user's stored ElevenLabs key proven as a new one is (wallet test)."""
        key = await self._elevenlabs_key(user_id)
        with refusal_names_key(ELEVENLABS, "user"):
            return await self._elevenlabs.check_key(key)


def _check_size(message: VoiceMessage) -> None:
    """The voice message's real size against Discord's upload limit: the bitrate bounds it by
    the duration (MAX_VOICE_MESSAGE_SECONDS fits), this is the backstop should that change."""
    if len(message.ogg) <= VOICE_MESSAGE_MAX_BYTES:
        return
    log.warning("voice.message_too_large", size=len(message.ogg), duration=message.duration_secs)
    raise FailedPrecondition(
        f"the voice message would be {len(message.ogg) / 2**20:.1f} MiB, more than Discord "
        f"takes ({VOICE_MESSAGE_MAX_BYTES / 2**20:g} MiB): shorten the text or speed the "
        "voice up",
        reason=SPEECH_TOO_LONG,
    )


def _speech_weight(voice: VoiceSpec, text: str) -> int:
    """What a speech reserves of the budget: its estimated seconds, at least MIN_SPEECH_WEIGHT,
    at most a unit (longer audio is refused: AudioTooLong)."""
    seconds = math.ceil(estimated_seconds(text, voice.speed))
    return min(max(seconds, MIN_SPEECH_WEIGHT), WORK_UNIT)


def _check_length(voice: VoiceSpec, text: str) -> None:
    """Refuses, before the provider bills it, a speech estimated clearly longer than a voice
    message can be (tzurot.inference.speech_length says how it is estimated)."""
    seconds = clearly_longer_than(text, voice.speed, MAX_VOICE_MESSAGE_SECONDS)
    if seconds is None:
        return
    raise FailedPrecondition(
        f"the speech would last about {seconds / 60:.0f} minutes, longer than a voice message "
        f"can be ({MAX_VOICE_MESSAGE_SECONDS / 60:g} minutes); nothing was sent to "
        f"{voice.provider}, nothing paid. Lower how much of an answer is spoken with "
        "`/voice limit`, or speed the voice up",
        reason=SPEECH_TOO_LONG,
        metadata={"provider": voice.provider},
    )


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
