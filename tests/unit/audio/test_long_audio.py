"""Long audio in a small file: decoding is counted frame by frame and stops at the limit.

6 kbps Opus packs ~10 minutes into 0.8 MB, and decoded at 48 kHz s16 mono every second is
96 KB: a 10 MB upload would be ~0.9 GB of samples (review 143, finding 1). Memory is measured
with tracemalloc, which sees PyAV's decoded buffers once they are copied into Python.
"""

from __future__ import annotations

import io
import tracemalloc
from array import array
from collections.abc import Callable
from typing import TypeVar

import av
import pytest

from tzurot.audio import AudioError, AudioTooLong, encode_tone, probe, voice_message

T = TypeVar("T")

LIMIT = 600.0
"""The gateway's limit for a voice sample (MAX_SAMPLE_SECONDS)."""
BOUNDED_BYTES = 16_000_000
"""Well above what decoding frame by frame holds, well below 600 s of samples (~58 MB)."""


def low_bitrate_opus(seconds: int) -> bytes:
    """`seconds` of 6 kbps mono Opus in OGG, tone and silence in turn (fast to encode)."""
    out = io.BytesIO()
    rate = 48_000
    with av.open(out, mode="w", format="ogg") as container:
        stream = container.add_stream(
            "libopus",
            rate=rate,
            layout="mono",
            options={"frame_duration": "60", "compression_level": "0"},
        )
        stream.bit_rate = 6_000
        step = rate * 60 // 1000
        silence = array("h", [0] * step).tobytes()
        tone = array("h", [(i % 40) * 300 - 6000 for i in range(step)]).tobytes()
        for n in range(seconds * rate // step):
            frame = av.AudioFrame(format="s16", layout="mono", samples=step)
            frame.planes[0].update(tone if n % 2 else silence)
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return out.getvalue()


@pytest.fixture(scope="module")
def eleven_minutes() -> bytes:
    data = low_bitrate_opus(int(LIMIT) + 20)
    assert len(data) < 1_500_000  # far under the 10 MB an upload may be
    return data


def peak_while(work: Callable[[], T]) -> tuple[T | Exception, int]:
    """What `work` returned (or raised) and the most memory it held at once."""
    tracemalloc.start()
    try:
        result: T | Exception = work()
    except Exception as exc:  # handed back for the test to check
        result = exc
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return result, peak


def test_probe_counts_long_audio_without_holding_it(eleven_minutes: bytes) -> None:
    info, peak = peak_while(lambda: probe(eleven_minutes))
    assert not isinstance(info, Exception)
    assert info.duration_secs == pytest.approx(LIMIT + 20, abs=0.5)
    assert peak < BOUNDED_BYTES, f"probe held {peak / 1e6:.0f} MB"


def test_probe_stops_as_soon_as_the_limit_is_passed(eleven_minutes: bytes) -> None:
    raised, peak = peak_while(lambda: probe(eleven_minutes, max_seconds=LIMIT))
    assert isinstance(raised, AudioTooLong)
    assert isinstance(raised, AudioError)  # callers that catch AudioError still refuse it
    assert str(raised) == "longer than 600 seconds"
    # What was read up to the limit: decoding stopped there (CPU), not at the end.
    assert (raised.info.container, raised.info.codec) == ("ogg", "opus")
    assert LIMIT < raised.info.duration_secs < LIMIT + 1
    assert peak < BOUNDED_BYTES, f"probe held {peak / 1e6:.0f} MB"


def test_a_voice_message_never_holds_more_than_its_limit(eleven_minutes: bytes) -> None:
    raised, peak = peak_while(lambda: voice_message(eleven_minutes, max_seconds=10))
    assert isinstance(raised, AudioTooLong)
    assert peak < 4_000_000  # 10 s of samples is ~1 MB, not the file's 60 MB


@pytest.mark.parametrize("fmt", ["mp3", "wav", "ogg"])
def test_audio_within_the_limit_is_probed_as_before(fmt: str) -> None:
    data = encode_tone(2.0, fmt=fmt)
    assert probe(data, max_seconds=LIMIT) == probe(data)
    assert probe(data, max_seconds=2.5).duration_secs == pytest.approx(2.0, abs=0.1)
    with pytest.raises(AudioTooLong):
        probe(data, max_seconds=1.5)


def test_a_voice_message_within_its_limit_is_made_as_before() -> None:
    data = encode_tone(3.0, fmt="mp3")
    limited, unlimited = voice_message(data, max_seconds=LIMIT), voice_message(data)
    # The OGG stream's serial number is random: the rest is the same.
    assert (limited.duration_secs, limited.waveform) == (
        unlimited.duration_secs,
        unlimited.waveform,
    )
    assert probe(limited.ogg) == probe(unlimited.ogg)
