"""Voice rules: who hears an answer, how much of it, and what a voice may be."""

import random

import pytest

from tzurot.gateway.domain import ConfigSource
from tzurot.gateway.settings import VOICE_MAX_CHARACTERS, VOICE_MODE, resolve
from tzurot.gateway.voice import (
    Voice,
    character_limit,
    cut_for_speech,
    decide,
    frequency_from_imported,
    imported_voice,
    speech_text_limit,
    spoken_limit,
    user_chose,
    validate_voice,
)
from tzurot.runtime.errors import InvalidArgument

ALWAYS = Voice("elevenlabs", "v1")
ON_REQUEST = Voice("elevenlabs", "v1", frequency="on_request")
SOMETIMES = Voice("elevenlabs", "v1", frequency="sometimes", probability=0.3)


def settings(**levels: dict[str, object]) -> dict:  # type: ignore[type-arg]  # a test helper
    return resolve({ConfigSource[name.upper()]: values for name, values in levels.items()})


def test_the_personality_frequency_applies_while_the_user_chose_nothing() -> None:
    rng = random.Random(1)
    assert decide(ALWAYS, settings(), {}, rng)
    assert not decide(ON_REQUEST, settings(), {}, rng)
    assert not decide(None, settings(user={VOICE_MODE: "always"}), {}, rng)
    spoken = sum(decide(SOMETIMES, settings(), {}, rng) for _ in range(2000))
    assert 450 < spoken < 750  # about 30 %


def test_the_users_choice_wins_over_the_personality_but_not_over_a_channel_off() -> None:
    rng = random.Random(1)
    enabled = settings(user={VOICE_MODE: "always"})
    disabled = settings(user={VOICE_MODE: "off"})
    assert decide(ON_REQUEST, enabled, {}, rng)
    assert not decide(ALWAYS, disabled, {}, rng)
    assert not decide(ALWAYS, enabled, {VOICE_MODE: "off"}, rng)
    assert user_chose(enabled) == "enable"
    assert user_chose(disabled) == "disable"
    assert user_chose(settings(channel={VOICE_MODE: "off"})) == ""


def test_the_limit_is_the_users_never_above_the_operators() -> None:
    assert character_limit(settings(), 2000) == 1000
    assert character_limit(settings(user={VOICE_MAX_CHARACTERS: 5000}), 2000) == 2000
    assert character_limit(settings(user={VOICE_MAX_CHARACTERS: 50}), 2000) == 50


@pytest.mark.parametrize(
    ("voice", "limit"),
    [
        (Voice("elevenlabs", "v1", model="eleven_v3"), 5_000),
        (Voice("elevenlabs", "v1"), 10_000),  # the default model: multilingual v2
        (Voice("elevenlabs", "v1", model="eleven_flash_v2_5"), 40_000),
        (Voice("elevenlabs", "v1", model="eleven_turbo_v2"), 30_000),
        (Voice("elevenlabs", "v1", model="eleven_v9_unheard_of"), 5_000),  # the smallest
        (Voice("openai", "nova"), 4_096),
        (Voice("openai", "nova", model="gpt-4o-mini-tts"), 4_096),
        (Voice("kokoro", "af_bella", model="kokoro"), None),  # a local server states none
    ],
)
def test_each_provider_and_model_takes_at_most_its_own_limit(
    voice: Voice, limit: int | None
) -> None:
    assert speech_text_limit(voice) == limit
    everything = settings(user={VOICE_MAX_CHARACTERS: 10_000})
    assert spoken_limit(voice, everything, 10_000) == min(10_000, limit or 10_000)
    assert spoken_limit(voice, settings(), 10_000) == 1000  # the user's default is smaller


def test_long_answers_are_cut_at_a_sentence_or_word_end() -> None:
    text = "First sentence here. Second one is longer than that. Third."
    assert cut_for_speech(text, 1000) == text
    assert cut_for_speech(text, 55) == "First sentence here. Second one is longer than that."
    assert cut_for_speech("one two three four five six", 15) == "one two three"
    assert len(cut_for_speech("x" * 50, 10)) == 10


@pytest.mark.parametrize(
    ("voice", "field"),
    [
        (Voice("", "v"), "voice.provider"),
        (Voice("elevenlabs", ""), "voice.voice_id"),
        (Voice("elevenlabs", "v", stability=1.5), "voice.stability"),
        (Voice("elevenlabs", "v", speed=2.0), "voice.speed"),
        (Voice("openai", "alloy", speed=5.0), "voice.speed"),
        (Voice("elevenlabs", "v", probability=2.0), "voice.probability"),
    ],
)
def test_a_voice_outside_the_rules_names_its_field(voice: Voice, field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_voice(voice)
    assert caught.value.field == field


def test_openai_speeds_are_wider_than_elevenlabs() -> None:
    assert validate_voice(Voice("openai", "alloy", speed=2.0)).speed == 2.0


def test_imported_frequencies() -> None:
    assert frequency_from_imported(1.0) == ("always", 1.0)
    assert frequency_from_imported(0.0) == ("on_request", 0.0)
    assert frequency_from_imported(0.4) == ("sometimes", 0.4)


def test_an_imported_voice_keeps_its_tuning_and_frequency() -> None:
    voice = imported_voice(
        "EXAVITQu4vr4xnSDxMaL",
        {"model": "eleven_multilingual_v2", "frequency": 0.5, "stability": 0.4, "similarity": 0.8},
    )
    assert voice == Voice(
        "elevenlabs",
        "EXAVITQu4vr4xnSDxMaL",
        model="eleven_multilingual_v2",
        stability=0.4,
        similarity_boost=0.8,
        frequency="sometimes",
        probability=0.5,
    )
    assert imported_voice("", {"frequency": 1}) is None
    assert imported_voice("v", {"stability": 7}) is None  # out of range: left out
    assert imported_voice("v", {}) == Voice("elevenlabs", "v")
