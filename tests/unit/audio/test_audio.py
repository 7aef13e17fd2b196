"""Audio decoding and voice messages: real codecs, decoded back to check what was made."""

import base64

import pytest

from tzurot.audio import MAX_WAVEFORM_SAMPLES, AudioError, encode_tone, probe, voice_message


@pytest.mark.parametrize("fmt", ["mp3", "wav", "ogg", "flac"])
def test_probe_finds_the_real_container_and_duration(fmt: str) -> None:
    info = probe(encode_tone(1.5, fmt=fmt))
    assert info.container == fmt
    assert info.duration_secs == pytest.approx(1.5, abs=0.1)


def test_probe_refuses_bytes_that_are_not_audio_whatever_their_name() -> None:
    with pytest.raises(AudioError):
        probe(b"ID3 this is text pretending to be an mp3" * 50)
    with pytest.raises(AudioError):
        probe(b"")


def test_a_voice_message_is_mono_48k_opus_in_ogg_with_duration_and_waveform() -> None:
    message = voice_message(encode_tone(3.0, fmt="mp3"))
    info = probe(message.ogg)
    assert (info.container, info.codec, info.sample_rate, info.channels) == (
        "ogg",
        "opus",
        48000,
        1,
    )
    assert message.duration_secs == pytest.approx(3.0, abs=0.1)
    points = base64.b64decode(message.waveform)
    assert len(points) == 30  # one point per 100 ms
    # The tone swells then fades: the middle is loud, the ends quiet.
    assert max(points) > 60
    assert points[len(points) // 2] > points[0]
    assert points[len(points) // 2] > points[-1]


def test_raw_pcm_needs_its_rate_and_long_audio_keeps_at_most_256_points() -> None:
    message = voice_message(encode_tone(40.0, fmt="pcm", rate=24000), pcm_rate=24000)
    assert message.duration_secs == pytest.approx(40.0, abs=0.1)
    assert len(base64.b64decode(message.waveform)) == MAX_WAVEFORM_SAMPLES
