"""A speech too long for a voice message is refused before the vendor is asked (and bills it):
its duration estimated from the text and the voice's speed (tzurot.inference.speech_length)."""

import unicodedata

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


def test_decomposed_korean_weighs_what_composed_korean_does() -> None:
    """Hangul typed or pasted decomposed (NFD: two or three jamo a syllable) is read composed;
    before, each jamo weighed a syllable: a 4,096-character NFD text at OpenAI's slowest speed
    was refused (~49 minutes estimated), though it lasts ~18."""
    composed = "안녕하세요 " * 100
    decomposed = unicodedata.normalize("NFD", composed)
    assert len(decomposed) > 2 * len(composed)
    assert spoken_characters(decomposed) == spoken_characters(composed)
    nfd = unicodedata.normalize("NFD", "한국어" * 2000)[:4096]
    assert clearly_longer_than(nfd, 0.25, MAX_VOICE_MESSAGE_SECONDS) is None


def test_a_digit_weighs_a_number_word() -> None:
    """Numbers are read as words ("9999999" is "nine million nine hundred…", some 60 letters
    for 7 digits): 10,000 characters of them at speed 0.7 last well over 40 minutes, and are
    refused now; before, each digit weighed one letter (~14 minutes estimated)."""
    assert spoken_characters("1234") == 16.0
    assert spoken_characters("٣") == 4.0  # a digit of another script too
    numbers = ("9999999 " * 1250)[:10_000]
    assert clearly_longer_than(numbers, 0.7, MAX_VOICE_MESSAGE_SECONDS) is not None
    # Prose with a few numbers in it is still far from the cap.
    prose = "In 1999 she walked 12 miles and met 3 friends. " * 200  # 9,400 characters
    assert clearly_longer_than(prose[:2000], 1.0, MAX_VOICE_MESSAGE_SECONDS) is None


def test_at_the_default_cap_of_2000_characters_nothing_is_refused() -> None:
    """gateway's default voice_max_characters: even the heaviest 2,000 characters at the
    slowest speed a provider takes (OpenAI's 0.25) stay under 40 minutes; only a raised cap
    with a slow voice can make the check fire."""
    for text in (HAN[:2000], "9" * 2000):
        assert clearly_longer_than(text, 0.7, MAX_VOICE_MESSAGE_SECONDS) is None
        assert estimated_seconds(text, 0.25) < 40 * 60 * 1.15


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
