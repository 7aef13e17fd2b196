"""A speech too long for a voice message is refused before the vendor is asked (and bills it):
its duration estimated from the text and the voice's speed (tzurot.inference.speech_length)."""

import httpx2 as httpx
import pytest
from pydantic import SecretStr

from tzurot.inference.config import InferenceSettings
from tzurot.inference.keys import KeyResolver
from tzurot.inference.providers import ProviderRegistry
from tzurot.inference.speech import ElevenLabsClient, OpenAISpeechClient, VoiceSpec
from tzurot.inference.speech_length import (
    CLEARLY_OVER,
    clearly_longer_than,
    estimated_seconds,
    spoken_characters,
)
from tzurot.inference.voice import MAX_VOICE_MESSAGE_SECONDS, SpeechBilled, VoiceService
from tzurot.runtime.errors import FailedPrecondition
from tzurot.testing.fake_elevenlabs import DEFAULT_ELEVENLABS_KEY, FakeElevenLabs
from tzurot.testing.fake_provider import FakeProvider

RACHEL = "21m00Tcm4TlvDq8ikWAM"
HAN = ("这是一个很长的故事" * 1200)[:10_000]
"""10,000 Chinese characters: some 35 minutes spoken at speed 1, 50 at ElevenLabs' slowest."""


class Vault:
    async def decrypt(self, user_id: str, provider: str) -> SecretStr | None:
        return SecretStr(DEFAULT_ELEVENLABS_KEY) if provider == "elevenlabs" else None


def test_alphabetic_prose_is_about_a_thousand_characters_a_minute() -> None:
    text = "Words to be spoken. " * 50  # 1000 characters
    assert estimated_seconds(text, None) == pytest.approx(60, abs=0.5)
    assert estimated_seconds(text, 0.5) == pytest.approx(120, abs=1)
    assert estimated_seconds(text, 1.2) == pytest.approx(50, abs=0.5)


def test_syllabic_scripts_weigh_what_they_take_to_say_and_white_space_runs_count_once() -> None:
    assert spoken_characters("你好") == 7.0  # Han: 3.5 each
    assert spoken_characters("안녕") == 6.0  # Hangul: 3 each
    assert spoken_characters("かな") == 4.0  # kana: 2 each
    assert spoken_characters("  a \n\n\t b  ") == 3.0


def test_only_a_speech_clearly_over_the_cap_is_refused() -> None:
    cap = MAX_VOICE_MESSAGE_SECONDS
    assert clearly_longer_than(HAN, 0.7, cap) is not None  # ~50 minutes
    assert clearly_longer_than(HAN, 1.0, cap) is None  # ~35 minutes: made
    english = "Words to be spoken. " * 500  # the most characters a speech carries
    assert clearly_longer_than(english, 0.7, cap) is None
    near = "x" * int(cap * CLEARLY_OVER * 1000 / 60)  # at the margin, not over it
    assert clearly_longer_than(near, 1.0, cap) is None


async def test_an_overlong_speech_is_refused_before_elevenlabs_is_asked() -> None:
    """Nothing reaches the vendor (nothing billed: no SpeechBilled), and the refusal says why
    and what to do, in words for the user."""
    async with (
        FakeElevenLabs() as eleven,
        FakeProvider() as provider,
        httpx.AsyncClient(
            timeout=InferenceSettings.model_fields["provider_timeout_seconds"].default
        ) as http,
    ):
        voices = VoiceService(
            providers=ProviderRegistry({"openai": provider.base_url}),
            keys=KeyResolver(Vault()),
            elevenlabs=ElevenLabsClient(http, eleven.base_url),
            speech=OpenAISpeechClient(http, max_retries=0),
        )
        events: list[object] = []
        speech = voices.synthesize("u1", VoiceSpec("elevenlabs", RACHEL, speed=0.7), HAN)
        with pytest.raises(FailedPrecondition) as refused:
            await anext(speech)
        assert eleven.calls == []
        # The same text at the voice's default speed is made (and billed).
        async for event in voices.synthesize("u1", VoiceSpec("elevenlabs", RACHEL), HAN[:2000]):
            events.append(event)
    assert refused.value.reason == "SPEECH_TOO_LONG"
    assert "longer than a voice message can be (40 minutes)" in refused.value.message
    assert "nothing paid" in refused.value.message
    assert "/voice limit" in refused.value.message
    assert isinstance(events[0], SpeechBilled)
    assert len(eleven.tts_calls()) == 1
