"""Checking an uploaded voice sample: real audio decoded, the store and the owner faked.

A sample under the 10 MB cap may hold hours of low-bitrate audio: it is refused as longer
than 10 minutes without ever being decoded whole into memory (review 143, finding 1).
"""

from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import cast

import pytest

import tzurot.gateway.admin.voice as voice_admin
from tests.unit.audio.test_long_audio import BOUNDED_BYTES, low_bitrate_opus
from tzurot.audio import encode_tone
from tzurot.gateway.admin.base import Principal
from tzurot.gateway.admin.voice import VoiceAdmin
from tzurot.gateway.domain import Personality
from tzurot.gateway.voice import MAX_SAMPLE_SECONDS, VoiceSample
from tzurot.gateway.voice_store import VoiceStore
from tzurot.runtime.errors import InvalidArgument

OPERATOR = Principal(user=None)


class FakeSamples:
    def __init__(self) -> None:
        self.added: list[tuple[str, str, float]] = []

    async def add_sample(
        self,
        personality_id: str,
        uploaded_by: str | None,
        *,
        filename: str,
        fmt: str,
        duration_secs: float,
        data: bytes,
        max_samples: int,
    ) -> VoiceSample | None:
        self.added.append((filename, fmt, duration_secs))
        return VoiceSample("s1", filename, fmt, duration_secs, len(data), datetime.now(UTC))


class SampleChecks(VoiceAdmin):
    """Only what upload_voice_sample needs: the personality, and where samples go."""

    def __init__(self) -> None:  # no super().__init__: nothing else is used
        self.samples = FakeSamples()

    @property
    def _voices(self) -> VoiceStore:
        return cast(VoiceStore, self.samples)

    async def _owned(self, name: str, who: Principal, field: str = "personality") -> Personality:
        return cast(Personality, SimpleNamespace(id="p1", slug=name))


async def test_a_valid_sample_is_stored_with_its_format_and_duration() -> None:
    admin = SampleChecks()
    added = await admin.upload_voice_sample(
        OPERATOR, "wren", "hello.ogg", encode_tone(2.0, fmt="ogg")
    )
    assert (added.filename, added.format) == ("hello.ogg", "ogg")
    assert added.duration_secs == pytest.approx(2.0, abs=0.1)
    assert len(admin.samples.added) == 1


async def test_hours_in_a_small_file_are_refused_without_decoding_them_into_memory() -> None:
    data = low_bitrate_opus(int(MAX_SAMPLE_SECONDS) + 20)  # 0.9 MB: passes the 10 MB check
    admin = SampleChecks()
    tracemalloc.start()
    try:
        with pytest.raises(InvalidArgument) as refused:
            await admin.upload_voice_sample(OPERATOR, "wren", "long.ogg", data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert refused.value.message == "'long.ogg' is longer than 10 minutes"
    assert refused.value.field == "data"
    assert peak < BOUNDED_BYTES, f"the check held {peak / 1e6:.0f} MB"
    assert admin.samples.added == []


async def test_a_long_file_of_another_format_is_refused_for_its_format_as_before(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(voice_admin, "MAX_SAMPLE_SECONDS", 1.0)  # a short file suffices
    admin = SampleChecks()
    with pytest.raises(InvalidArgument) as refused:
        await admin.upload_voice_sample(OPERATOR, "wren", "x.flac", encode_tone(2.0, fmt="flac"))
    assert refused.value.message == "'x.flac' is flac audio; samples must be MP3, WAV or OGG"
    with pytest.raises(InvalidArgument) as refused:
        await admin.upload_voice_sample(OPERATOR, "wren", "x.mp3", encode_tone(2.0, fmt="mp3"))
    assert refused.value.message == "'x.mp3' is longer than 10 minutes"
    assert admin.samples.added == []


async def test_what_is_not_audio_is_refused_as_before() -> None:
    with pytest.raises(InvalidArgument) as refused:
        await SampleChecks().upload_voice_sample(OPERATOR, "wren", "a.mp3", b"ID3 not audio" * 50)
    assert refused.value.message.startswith("'a.mp3' is not an MP3, WAV or OGG recording (")
