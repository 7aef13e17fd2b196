"""A voice names one of the providers that speak (review: `/personality voice set provider`
took any text, stored it, and every answer the voice was to speak then failed at inference).
The gateway refuses any other with INVALID_ARGUMENT naming the ones it takes, when the voice
is set; the bot offers exactly those (tests/unit/bot/test_bad_input_options.py)."""

from __future__ import annotations

import grpc
import pytest

from tzurot.gateway.voice import SPEECH_PROVIDERS, Voice, validate_voice
from tzurot.inference.providers import DEFAULT_PROVIDERS, LOCAL_PROVIDERS
from tzurot.inference.speech_types import ELEVENLABS
from tzurot.runtime.errors import InvalidArgument

ACCEPTED = "elevenlabs, openai, kokoro, openedai-speech"


def test_the_providers_are_those_inference_speaks_with() -> None:
    """ElevenLabs by its own API; OpenAI and the local speech servers by `/audio/speech`, each
    a built-in provider of inference."""
    assert SPEECH_PROVIDERS[0] == ELEVENLABS
    openai_compatible = set(SPEECH_PROVIDERS[1:])
    assert openai_compatible <= set(DEFAULT_PROVIDERS)
    assert {"kokoro", "openedai-speech"} <= LOCAL_PROVIDERS


@pytest.mark.parametrize("provider", SPEECH_PROVIDERS)
def test_each_accepted_provider_is_taken(provider: str) -> None:
    assert validate_voice(Voice(provider, "alloy")).provider == provider


@pytest.mark.parametrize(
    "provider",
    ["elevenlab", "ElevenLabs", "openrouter", "anthropic", "gemini", "ollama", "x" * 500],
)
def test_any_other_is_refused_naming_those_accepted(provider: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        validate_voice(Voice(provider, "alloy"))
    assert refused.value.code is grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.field == "voice.provider"
    assert f"a voice's provider is one of {ACCEPTED}, not " in str(refused.value)
    assert len(str(refused.value)) < 200


def test_no_provider_is_refused_the_same_way() -> None:
    with pytest.raises(InvalidArgument, match=f"one of {ACCEPTED}$"):
        validate_voice(Voice("", "alloy"))
