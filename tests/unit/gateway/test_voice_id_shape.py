"""A voice id's shape is checked where it is stored (review 158 M1): an ElevenLabs id is
letters and digits (it goes into the URL's path), an OpenAI-compatible voice a plain name;
ids of real voices pass, and a shapes.inc import keeps no voice with a bad id."""

from __future__ import annotations

import pytest

from tzurot.gateway.voice import Voice, imported_voice, validate_voice
from tzurot.runtime.errors import InvalidArgument


@pytest.mark.parametrize(
    ("provider", "voice_id"),
    [
        ("elevenlabs", "21m00Tcm4TlvDq8ikWAM"),
        ("elevenlabs", "EXAVITQu4vr4xnSDxMaL"),
        ("elevenlabs", "clone-1"),
        ("openai", "alloy"),
        ("openai", "nova"),
        ("kokoro", "af_bella"),
        ("kokoro", "af_sky+af_bella"),
        ("openedai-speech", "en_US-libritts_r-medium"),
    ],
)
def test_real_voice_ids_pass(provider: str, voice_id: str) -> None:
    assert validate_voice(Voice(provider=provider, voice_id=voice_id)).voice_id == voice_id


@pytest.mark.parametrize(
    "voice_id",
    [
        "../../v1/sound-generation#",
        "../../v1/voices/abc/settings/edit?x=",
        "..",
        "abc/def",
        "abc%2Fdef",
        "abc def",
        "abc?x=1",
    ],
)
def test_an_elevenlabs_id_that_could_leave_its_path_segment_is_refused(voice_id: str) -> None:
    with pytest.raises(InvalidArgument, match="letters and digits") as refused:
        validate_voice(Voice(provider="elevenlabs", voice_id=voice_id))
    assert refused.value.field == "voice.voice_id"


@pytest.mark.parametrize("voice_id", ["alloy\n", "al loy", "-alloy", "a/../b"])
def test_an_odd_speech_voice_name_is_refused(voice_id: str) -> None:
    with pytest.raises(InvalidArgument, match="voice name"):
        validate_voice(Voice(provider="openai", voice_id=voice_id))


def test_an_imported_voice_with_a_path_in_its_id_is_left_out() -> None:
    assert imported_voice("../../v1/sound-generation#", {}) is None
    imported = imported_voice("21m00Tcm4TlvDq8ikWAM", {})
    assert imported is not None
    assert imported.voice_id == "21m00Tcm4TlvDq8ikWAM"
