"""Voice (issue 17): whether an answer is spoken, how much of it, and a voice's rules.

Whether: a personality with a voice speaks when the `voice_mode` setting says so. The user's
choice (`/voice enable` = "always", `/voice disable` = "off", at the user level; `/voice reset`
removes it) wins over the personality's frequency (always; sometimes with a probability; only
on request), which applies while the mode is "auto". A channel whose own level says "off"
forbids voice there whatever the user chose. How much: the first `voice_max_characters`
(the user's setting, never above the operator's `TZUROT_VOICE_MAX_CHARACTERS`, nor above what
the voice's provider and model take in one request: `SPEECH_TEXT_LIMITS`), cut at a sentence
or word end.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from tzurot.gateway.domain import ConfigSource
from tzurot.gateway.settings import VOICE_MAX_CHARACTERS, VOICE_MODE, ResolvedSetting
from tzurot.runtime.errors import (
    PROVIDER_NOT_CONFIGURED,
    FailedPrecondition,
    InvalidArgument,
    Unavailable,
)

Frequency = Literal["always", "sometimes", "on_request"]
FREQUENCIES: tuple[Frequency, ...] = ("always", "sometimes", "on_request")
ELEVENLABS = "elevenlabs"
MAX_SAMPLES = 25
MAX_SAMPLE_BYTES = 10 * 1024 * 1024
SAMPLE_FORMATS = ("mp3", "wav", "ogg")
MAX_SAMPLE_SECONDS = 600.0
_SENTENCE_END = re.compile(r"[.!?…][\"')\]]*\s")
OPENAI = "openai"
LOCAL_SPEECH_PROVIDERS = ("kokoro", "openedai-speech")
"""Inference's built-in keyless speech servers (Kokoro-FastAPI, openedai-speech). Their
default address is inference's own loopback: where nothing serves there (a pod,
`TZUROT_LOOPBACK_PROVIDERS=false`) inference lists them only once the operator gives them an
address, and a voice naming one before is FAILED_PRECONDITION PROVIDER_NOT_CONFIGURED. While
inference does not say which providers take no key (`keyless_providers`: an older inference,
or none answering), these alone are taken as keyless (wallet.py `Listed.takes_no_key`)."""
BUILT_IN_SPEECH_PROVIDERS = (ELEVENLABS, OPENAI, *LOCAL_SPEECH_PROVIDERS)
"""The providers inference speaks with out of the box: ElevenLabs (its own API), OpenAI's
`/audio/speech`, and the local speech servers. ElevenLabs and OpenAI it always lists: they
are what a voice may name while inference cannot say which providers it has."""
NOT_SPEECH_PROVIDERS = frozenset(
    {"brave", "openrouter", "anthropic", "gemini", "ollama", "vllm", "lmstudio"}
)
"""Names inference lists (ListProviders) that a voice may not name while inference does not
say which speak (an older inference, or none answering): Brave Search (the wallet's web search
key, no registry provider) and inference's built-in chat providers, which serve answers, not
`/audio/speech`. An inference that says (`speech_providers`) is believed instead: one the
operator pointed at a speech server and declared `"speech": true` is then taken."""
NO_PROVIDER_LIST = "inference cannot say which providers it has right now; try again in a minute"
"""UNAVAILABLE while inference cannot answer: the wallet's words (`wallet.NO_PROVIDER_LIST`),
not imported from it, as wallet.py imports ports.py, which imports this module."""
UNKNOWN_PROVIDER = "UNKNOWN_PROVIDER"
"""The reason of a name inference does not list, as the wallet's (`wallet.UNKNOWN_PROVIDER`)."""
NOT_SPEECH_PROVIDER = "NOT_SPEECH_PROVIDER"
"""The reason of a name inference lists but says does not speak (a chat provider, Brave)."""
MAX_PROVIDER_CHARS = 64
"""The longest provider name inference's registry takes (`TZUROT_PROVIDERS`' name rule)."""
DEFAULT_ELEVENLABS_MODEL = "eleven_multilingual_v2"
SPEECH_TEXT_LIMITS: dict[tuple[str, str], int] = {
    # ElevenLabs' models (elevenlabs.io/docs/overview/models): characters per request.
    (ELEVENLABS, "eleven_v3"): 5_000,
    (ELEVENLABS, "eleven_multilingual_v2"): 10_000,
    (ELEVENLABS, "eleven_flash_v2_5"): 40_000,
    (ELEVENLABS, "eleven_turbo_v2_5"): 40_000,
    (ELEVENLABS, "eleven_flash_v2"): 30_000,
    (ELEVENLABS, "eleven_turbo_v2"): 30_000,
}
"""The most characters one speech request may carry, by (provider, model): a request above
it is refused by the vendor, so a cap above it would make that voice always fail."""
UNKNOWN_ELEVENLABS_MODEL_LIMIT = 5_000
"""An ElevenLabs model missing from the table: the smallest limit of the documented ones."""
OPENAI_SPEECH_LIMIT = 4_096
"""OpenAI's `/audio/speech` takes at most 4096 characters of input, whatever the model.
Other OpenAI-compatible servers (Kokoro, openedai-speech) set no limit of their own."""


@dataclass(frozen=True)
class Voice:
    provider: str
    voice_id: str
    model: str = ""
    stability: float | None = None
    similarity_boost: float | None = None
    style: float | None = None
    speed: float | None = None
    frequency: Frequency = "always"
    probability: float = 1.0


@dataclass(frozen=True)
class VoiceSample:
    id: str
    filename: str
    format: str
    duration_secs: float
    size_bytes: int
    created_at: datetime


@dataclass(frozen=True)
class SpeechBilled:
    """The provider accepted the text: it bills `characters` with `model`, whatever becomes
    of the audio after."""

    provider: str
    model: str
    characters: int


@dataclass(frozen=True)
class SpeechDone:
    content_type: str
    size_bytes: int
    duration_secs: float
    waveform: str
    characters: int
    stand_in_voice: bool = False
    """Spoken in the provider's default voice: the personality's (a clone in its cloner's
    ElevenLabs account) is not the listener's key's to use."""
    own_clone_missing: bool = False
    """With `stand_in_voice`: the listener cloned that voice (voice_clones records it), and
    it is gone from their own ElevenLabs account (deleted there); cloning it again brings it
    back."""


ELEVENLABS_VOICE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
"""An ElevenLabs voice id: theirs are 20 letters and digits ("21m00Tcm4TlvDq8ikWAM"); the id
goes into the URL's path, so nothing that could leave its segment ("/", ".", "?", "#", "%")."""
SPEECH_VOICE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+:-]{0,99}")
"""An OpenAI-compatible voice name ("alloy", Kokoro's "af_bella" or "af_sky+af_bella"): sent
in the request's body, never its URL."""


def _check_voice_id(voice: Voice) -> None:
    if voice.provider == ELEVENLABS:
        if not ELEVENLABS_VOICE_ID.fullmatch(voice.voice_id):
            raise InvalidArgument(
                "voice.voice_id",
                "an ElevenLabs voice_id is letters and digits (like 21m00Tcm4TlvDq8ikWAM, "
                "from the voice's page or /v1/voices), at most 64 characters",
            )
    elif not SPEECH_VOICE_NAME.fullmatch(voice.voice_id):
        raise InvalidArgument(
            "voice.voice_id",
            "voice_id is the provider's voice name (like alloy): letters, digits and _ . + : -, "
            "at most 100 characters",
        )


def _check_range(field: str, value: float | None, low: float, high: float) -> None:
    if value is not None and not low <= value <= high:
        raise InvalidArgument(f"voice.{field}", f"{field} must be from {low} to {high}")


def speech_providers(listed: Iterable[str]) -> tuple[str, ...]:
    """The providers a voice may name when inference lists names only (an inference older
    than ListProvidersResponse.speech_providers), sorted: every one but those known to speak
    no audio (`NOT_SPEECH_PROVIDERS`). An operator's chat back end (`deepseek`) is then taken
    too, and its voice fails at every answer; an inference that says which speak is believed
    instead (`check_speech_provider`)."""
    return tuple(sorted(set(listed) - NOT_SPEECH_PROVIDERS))


def check_speech_provider(
    provider: str,
    listed: Iterable[str],
    *,
    answered: bool = True,
    speech: Iterable[str] | None = None,
) -> None:
    """Refuses a voice's provider inference would not speak with, where `listed` is what
    inference lists (`answered`) or the built-in stand-in while it cannot answer, and
    `speech` those of them inference says synthesise speech (None: it does not say):

    - inference says which speak: one of them is taken, whatever its name (a built-in chat
      name the operator declared `speech` too); any other it lists, or a chat provider or
      Brave, is INVALID_ARGUMENT naming those that speak;
    - it does not say (older): a chat provider or Brave (`NOT_SPEECH_PROVIDERS`) is
      INVALID_ARGUMENT saying so, any other name it lists is taken;
    - a local speech server inference does not list (in a pod, no address given yet):
      FAILED_PRECONDITION PROVIDER_NOT_CONFIGURED telling the operator what to set, as
      inference itself says when asked for it;
    - while inference cannot answer, any but ElevenLabs and OpenAI (always listed): UNAVAILABLE,
      try again; the name may be the operator's own, or an unconfigured local one;
    - any other name inference does not list: INVALID_ARGUMENT UNKNOWN_PROVIDER naming those
      a voice may name.

    Only a known name is quoted back: a key pasted into the wrong option would be."""
    names = frozenset(listed)
    if answered and speech is not None:
        _check_said_speaker(provider, names, tuple(sorted(speech)))
        return
    if provider in NOT_SPEECH_PROVIDERS:
        raise InvalidArgument("voice.provider", _not_speech(provider))
    if not answered:
        if provider not in (ELEVENLABS, OPENAI):
            raise Unavailable(NO_PROVIDER_LIST)
        return
    accepted = speech_providers(names)
    if provider in accepted:
        return
    _check_configured(provider)
    raise InvalidArgument("voice.provider", _not_listed(accepted), reason=UNKNOWN_PROVIDER)


def _check_said_speaker(provider: str, names: frozenset[str], speech: tuple[str, ...]) -> None:
    """`check_speech_provider` where inference says which providers speak (`speech`)."""
    if provider in speech:
        return
    if provider in names or provider in NOT_SPEECH_PROVIDERS:
        raise InvalidArgument(
            "voice.provider", _does_not_speak(provider, speech), reason=NOT_SPEECH_PROVIDER
        )
    _check_configured(provider)
    raise InvalidArgument(
        "voice.provider",
        f"unknown provider; the providers that can speak here: {_speakers(speech)}",
        reason=UNKNOWN_PROVIDER,
    )


def _check_configured(provider: str) -> None:
    """FAILED_PRECONDITION PROVIDER_NOT_CONFIGURED for a local speech server inference does
    not list (its default address is its own loopback, where nothing runs in a pod)."""
    if provider in LOCAL_SPEECH_PROVIDERS:
        raise FailedPrecondition(
            f"provider {provider!r} is not set up on this server: its default address is "
            "inference's own loopback, where nothing runs in this deployment; the operator "
            "must give it its server's address (TZUROT_PROVIDERS)",
            reason=PROVIDER_NOT_CONFIGURED,
            metadata={"provider": provider},
        )


def _speakers(speech: tuple[str, ...]) -> str:
    return ", ".join(speech) if speech else "none (this server serves no voice)"


def _does_not_speak(provider: str, speech: tuple[str, ...]) -> str:
    """A listed provider inference says does not speak: the option, what it is, and which
    providers can speak (an operator's speech server is declared so)."""
    what = "web search" if provider == "brave" else "a chat provider"
    return (
        f"provider {provider!r} is {what}, not a speech provider; the providers that can "
        f"speak here: {_speakers(speech)} (the operator declares a speech server with "
        '"speech": true in TZUROT_PROVIDERS)'
    )


def _not_speech(provider: str) -> str:
    what = "web search" if provider == "brave" else "a chat provider"
    return (
        f"{provider!r} is {what}, not a speech provider; a speech server is given kokoro's or "
        "openedai-speech's address, or a name of its own, in the operator's TZUROT_PROVIDERS"
    )


def _not_listed(accepted: tuple[str, ...]) -> str:
    """The unknown name's refusal: the built-in speech providers inference lists, then the
    names the operator added, which speak only if their server does (`speech_providers`)."""
    built_in = [name for name in accepted if name in BUILT_IN_SPEECH_PROVIDERS]
    added = [name for name in accepted if name not in BUILT_IN_SPEECH_PROVIDERS]
    said = "unknown provider; of the providers inference lists, a voice may name "
    said += ", ".join(built_in)
    if added:
        said += (
            f", or one the operator added: {', '.join(added)} "
            "(that speaks only if its server serves speech)"
        )
    return said


def validate_voice(voice: Voice) -> Voice:
    """The voice as stored; InvalidArgument naming the field that is wrong. Its provider is
    checked for form only (named, not too long): whether inference speaks with it is
    `check_speech_provider`'s question, asked where inference's list is at hand."""
    if not voice.provider.strip():
        raise InvalidArgument("voice.provider", "name the voice's provider")
    if len(voice.provider) > MAX_PROVIDER_CHARS:
        raise InvalidArgument(
            "voice.provider", f"voice.provider is longer than {MAX_PROVIDER_CHARS} characters"
        )
    if not voice.voice_id.strip() or len(voice.voice_id) > 200:
        raise InvalidArgument("voice.voice_id", "voice_id is required (at most 200 characters)")
    _check_voice_id(voice)
    if len(voice.model) > 200:
        raise InvalidArgument("voice.model", "model is longer than 200 characters")
    for name in ("stability", "similarity_boost", "style"):
        _check_range(name, getattr(voice, name), 0.0, 1.0)
    if voice.provider == ELEVENLABS:
        _check_range("speed", voice.speed, 0.7, 1.2)
    else:
        _check_range("speed", voice.speed, 0.25, 4.0)
    if voice.frequency not in FREQUENCIES:
        raise InvalidArgument("voice.frequency", f"frequency is one of {', '.join(FREQUENCIES)}")
    _check_range("probability", voice.probability, 0.0, 1.0)
    return voice


def frequency_from_imported(value: float) -> tuple[Frequency, float]:
    """An imported personality's "frequency" (0-1): 1 always, 0 on request, else sometimes."""
    if value >= 1:
        return "always", 1.0
    if value <= 0:
        return "on_request", 0.0
    return "sometimes", value


def imported_voice(voice_id: str, fields: Mapping[str, Any]) -> Voice | None:
    """The ElevenLabs voice of an imported personality (a shapes.inc backup's `voice_*`
    fields, kept in custom_fields["voice"]); None when it has none or it breaks the rules."""
    if not voice_id.strip():
        return None

    def number(name: str) -> float | None:
        value = fields.get(name)
        return (
            float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
        )

    frequency, probability = frequency_from_imported(number("frequency") or 0.0)
    if number("frequency") is None:
        frequency, probability = "always", 1.0
    model = fields.get("model")
    voice = Voice(
        provider=ELEVENLABS,
        voice_id=voice_id.strip(),
        model=model if isinstance(model, str) else "",
        stability=number("stability"),
        similarity_boost=number("similarity"),
        style=number("style"),
        frequency=frequency,
        probability=probability,
    )
    try:
        return validate_voice(voice)
    except InvalidArgument:
        return None


def decide(
    voice: Voice | None,
    settings: Mapping[str, ResolvedSetting],
    channel_level: Mapping[str, Any],
    rng: random.Random,
) -> bool:
    """Whether this answer is spoken (see the module's docstring)."""
    if voice is None or channel_level.get(VOICE_MODE) == "off":
        return False
    mode = settings[VOICE_MODE].value
    if mode == "off":
        return False
    if mode == "always":
        return True
    if voice.frequency == "always":
        return True
    if voice.frequency == "sometimes":
        return rng.random() < voice.probability
    return False


def character_limit(settings: Mapping[str, ResolvedSetting], operator_limit: int) -> int:
    return min(int(settings[VOICE_MAX_CHARACTERS].value), operator_limit)


def speech_text_limit(voice: Voice) -> int | None:
    """The most characters `voice`'s provider takes in one request (SPEECH_TEXT_LIMITS); None
    when it states no limit."""
    if voice.provider == ELEVENLABS:
        model = voice.model or DEFAULT_ELEVENLABS_MODEL
        return SPEECH_TEXT_LIMITS.get((ELEVENLABS, model), UNKNOWN_ELEVENLABS_MODEL_LIMIT)
    if voice.provider == OPENAI:
        return OPENAI_SPEECH_LIMIT
    return None


def spoken_limit(voice: Voice, settings: Mapping[str, ResolvedSetting], operator_limit: int) -> int:
    """How many characters of an answer `voice` speaks: the user's limit, the operator's cap
    and the provider's own limit per request, whichever is smallest."""
    limit = character_limit(settings, operator_limit)
    provider_limit = speech_text_limit(voice)
    return limit if provider_limit is None else min(limit, provider_limit)


def user_chose(settings: Mapping[str, ResolvedSetting]) -> str:
    """ "enable", "disable" or "" (the personality's default) from the user's own level."""
    mode = settings[VOICE_MODE]
    if mode.source not in (ConfigSource.USER, ConfigSource.USER_PERSONALITY):
        return ""
    return {"always": "enable", "off": "disable"}.get(str(mode.value), "")


def cut_for_speech(text: str, limit: int) -> str:
    """At most `limit` characters of `text`, ending at a sentence end when one falls in the
    second half, else at a word end."""
    text = text.strip()
    if len(text) <= limit:
        return text
    head = text[: limit + 1]
    ends = [m.end() for m in _SENTENCE_END.finditer(head)]
    if ends and ends[-1] > limit // 2:
        return head[: ends[-1]].strip()
    space = head.rfind(" ")
    return (head[:space] if space > limit // 2 else text[:limit]).strip()
