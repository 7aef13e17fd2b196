"""A voice names a provider inference speaks with (review: `/personality voice set provider`
took any text, stored it, and every answer the voice was to speak then failed at inference;
then a fixed list refused the speech servers an operator adds with `TZUROT_PROVIDERS`).

Inference is the authority (its ListProviders, asked through the wallet's cached
`InferenceProviders`): any name it lists is taken but those known to speak no audio (Brave,
its built-in chat providers), anything else refused with INVALID_ARGUMENT naming what is taken;
when inference cannot answer, its built-in speech providers stand in, as the wallet's built-in
list does. The cheap checks (no name, too long) come first and ask inference nothing. The bot
suggests the built-in ones and lets any be typed (tests/unit/bot/test_bad_input_options.py).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import cast

import grpc
import pytest

import tzurot.gateway.voice as rules
from tzurot.gateway.admin.base import Principal
from tzurot.gateway.admin.voice import VoiceAdmin
from tzurot.gateway.domain import Personality
from tzurot.gateway.voice import Voice, validate_voice
from tzurot.gateway.voice_store import VoiceStore
from tzurot.gateway.wallet import KNOWN_PROVIDERS, InferenceProviders
from tzurot.inference.providers import DEFAULT_PROVIDERS, LOCAL_PROVIDERS
from tzurot.inference.speech_types import ELEVENLABS
from tzurot.runtime.errors import InvalidArgument, TzurotError, Unavailable

OPERATOR = Principal(user=None)
OPERATORS_OWN = "my-tts"
"""A speech server the operator added (`TZUROT_PROVIDERS={"my-tts": …}`)."""
LISTED = frozenset({*DEFAULT_PROVIDERS, OPERATORS_OWN, ELEVENLABS, "brave"})
"""What inference's ListProviders answers with voice served and Brave as the search backend."""
TAKEN = "elevenlabs, kokoro, my-tts, openai, openedai-speech"
BUILT_IN = "elevenlabs, kokoro, openai, openedai-speech"


class Inference:
    """Inference's ListProviders: `listed`, or a TzurotError when it cannot answer."""

    def __init__(self, listed: frozenset[str] | TzurotError) -> None:
        self.listed = listed
        self.asked = 0

    async def list_providers(self) -> frozenset[str]:
        self.asked += 1
        if isinstance(self.listed, TzurotError):
            raise self.listed
        return self.listed


class Voices:
    def __init__(self) -> None:
        self.stored: dict[str, Voice] = {}

    async def put_voice(self, personality_id: str, voice: Voice) -> None:
        self.stored[personality_id] = voice

    async def voice(self, personality_id: str) -> Voice | None:
        return self.stored.get(personality_id)


class VoiceSetting(VoiceAdmin):
    """Only what set_personality_voice needs: the personality, its voice's store and
    inference's providers (the wallet's cached lookup, as the gateway wires it)."""

    def __init__(self, inference: Inference) -> None:  # no super().__init__: nothing else used
        self.voices = Voices()
        self._providers = InferenceProviders(inference)

    @property
    def _voices(self) -> VoiceStore:
        return cast(VoiceStore, self.voices)

    async def _owned(self, name: str, who: Principal, field: str = "personality") -> Personality:
        return cast(Personality, SimpleNamespace(id="p1", slug=name))


async def set_voice(inference: Inference, provider: str) -> Voice | None:
    return await VoiceSetting(inference).set_personality_voice(
        OPERATOR, "echo", Voice(provider, "alloy")
    )


@pytest.mark.parametrize("provider", sorted(TAKEN.split(", ")))
async def test_each_speaking_provider_inference_lists_is_taken(provider: str) -> None:
    """The operator's own among them: no fixed list in the gateway refuses it."""
    voice = await set_voice(Inference(LISTED), provider)
    assert voice is not None
    assert voice.provider == provider


@pytest.mark.parametrize(
    "provider",
    ["elevenlab", "ElevenLabs", "mistral", "brave", "openrouter", "anthropic", "ollama", "vllm"],
)
async def test_any_other_is_refused_naming_those_inference_speaks_with(provider: str) -> None:
    inference = Inference(LISTED)
    with pytest.raises(InvalidArgument) as refused:
        await set_voice(inference, provider)
    assert refused.value.code is grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.field == "voice.provider"
    assert str(refused.value) == f"a voice's provider is one of {TAKEN}"  # never what was given


async def test_without_inferences_answer_the_built_in_speech_providers_stand_in() -> None:
    """As the wallet does: the built-in list for that call, inference asked again next time."""
    away = Inference(Unavailable("inference is restarting"))
    voice = await set_voice(away, "kokoro")
    assert voice is not None
    with pytest.raises(InvalidArgument, match=f"one of {BUILT_IN}$"):
        await set_voice(away, OPERATORS_OWN)
    assert away.asked == 2


async def test_inferences_list_is_asked_once_a_minute_not_at_every_voice() -> None:
    inference = Inference(LISTED)
    admin = VoiceSetting(inference)
    for provider in ("kokoro", OPERATORS_OWN, ELEVENLABS):
        await admin.set_personality_voice(OPERATOR, "echo", Voice(provider, "alloy"))
    assert inference.asked == 1


@pytest.mark.parametrize(
    ("provider", "said"),
    [
        ("", "name the voice's provider"),
        ("  ", "name the voice's provider"),
        ("x" * 65, "voice.provider is longer than 64 characters"),
    ],
)
async def test_the_cheap_checks_come_first_and_ask_inference_nothing(
    provider: str, said: str
) -> None:
    inference = Inference(LISTED)
    with pytest.raises(InvalidArgument) as refused:
        await set_voice(inference, provider)
    assert (refused.value.field, str(refused.value)) == ("voice.provider", said)
    assert inference.asked == 0


def test_validate_voice_checks_the_providers_form_only() -> None:
    """What has no inference at hand (a shapes.inc import's ElevenLabs voice) is checked the
    same way, without it."""
    assert validate_voice(Voice("x" * 64, "alloy")).provider == "x" * 64
    with pytest.raises(InvalidArgument, match="longer than 64 characters"):
        validate_voice(Voice("x" * 65, "alloy"))


def test_the_built_in_speech_providers_are_inferences_and_its_fallback_list() -> None:
    """ElevenLabs by its own API; OpenAI and the local speech servers by `/audio/speech`, each
    a built-in provider of inference; when inference cannot answer, what the wallet's
    built-in list leaves once the names that do not speak are taken out."""
    assert rules.BUILT_IN_SPEECH_PROVIDERS[0] == ELEVENLABS
    assert set(rules.BUILT_IN_SPEECH_PROVIDERS[1:]) <= set(DEFAULT_PROVIDERS)
    assert {"kokoro", "openedai-speech"} <= LOCAL_PROVIDERS
    assert rules.speech_providers(KNOWN_PROVIDERS) == tuple(sorted(rules.BUILT_IN_SPEECH_PROVIDERS))


def test_the_names_that_do_not_speak_are_brave_and_the_built_in_chat_providers() -> None:
    assert rules.NOT_SPEECH_PROVIDERS <= KNOWN_PROVIDERS
    assert rules.NOT_SPEECH_PROVIDERS - {"brave"} <= set(DEFAULT_PROVIDERS)
    assert not rules.NOT_SPEECH_PROVIDERS & set(rules.BUILT_IN_SPEECH_PROVIDERS)
    assert set(rules.speech_providers(LISTED)) == set(TAKEN.split(", "))
