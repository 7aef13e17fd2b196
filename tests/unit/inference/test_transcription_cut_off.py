"""A failed transcription's estimate: only a failure after the provider had the whole upload
counts (no answer in time once sent, a connection dropped after the upload, a 500 or 504
without a Retry-After, an unreadable answer), never a refusal (any 4xx, 408 and 409
included), an overload (502, 503, 529, a 5xx with a Retry-After), a request never sent nor
an upload never received whole. It counts the audio's duration read without decoding, with
the demuxer of its validated type, within a time bound (else by its size), in seconds even
for a token-billed model."""

from __future__ import annotations

import asyncio
import io
import struct
import threading
import time
from collections.abc import Callable
from fractions import Fraction

import av
import pytest
from pydantic import SecretStr

from tzurot.audio import MIN_BITRATE, AudioError, encode_tone, header_duration
from tzurot.inference import transcription_cut_off as cut
from tzurot.inference.domain import TRANSCRIPTION, Downloaded, PaidCall, TokenUsage, Transcript
from tzurot.inference.providers import Provider
from tzurot.inference.retries import NoAnswerInTime, NotReceived, NotSent, RetryPolicy
from tzurot.inference.transcription import Transcribing, transcribed
from tzurot.runtime.errors import (
    FailedPrecondition,
    InvalidArgument,
    ResourceExhausted,
    TzurotError,
    Unavailable,
)

UNREACHED = "PROVIDER_UNAVAILABLE"


def unavailable(**metadata: str) -> Unavailable:
    return Unavailable("x", reason=UNREACHED, metadata={"provider": "openai", **metadata})


@pytest.mark.parametrize(
    ("err", "billed"),
    [
        (NoAnswerInTime("x", reason=UNREACHED), True),
        (unavailable(), True),  # dropped after sending, an unreadable answer
        (unavailable(status="500"), True),
        (unavailable(status="504"), True),
        (unavailable(status="520"), True),  # Cloudflare: the origin had it, answered nothing
        (unavailable(status="524"), True),  # Cloudflare: the origin took it, then 100 s
        (unavailable(status="524", retry_after="3"), False),
        (unavailable(status="521"), False),  # Cloudflare: the origin is down
        (unavailable(status="522"), False),  # not reached
        (unavailable(status="523"), False),
        (unavailable(status="500", retry_after="3"), False),  # an overload says when
        (unavailable(status="502"), False),  # no upstream
        (unavailable(status="503"), False),  # overloaded, "slow down"
        (unavailable(status="529"), False),  # overloaded
        (unavailable(status="501"), False),
        (unavailable(status="408"), False),
        (unavailable(status="409"), False),
        (NotSent("x", reason=UNREACHED), False),
        (NotReceived("x", reason=UNREACHED), False),  # the upload stalled or broke
        (Unavailable("x", reason="ATTACHMENT_UNREACHABLE"), False),
        (FailedPrecondition("x", reason="INVALID_API_KEY"), False),
        (InvalidArgument("config", "x", reason="PROVIDER_REJECTED_REQUEST"), False),
        (ResourceExhausted("x", reason="PROVIDER_RATE_LIMITED"), False),
        (ResourceExhausted("x", reason="PROVIDER_QUOTA_EXCEEDED"), False),
    ],
)
def test_only_a_failure_after_the_upload_may_have_been_billed(
    err: TzurotError, billed: bool
) -> None:
    assert cut.may_have_billed(err) is billed


@pytest.mark.parametrize(
    ("fmt", "content_type"),
    [
        ("mp3", "audio/mpeg"),
        ("ogg", "audio/ogg"),
        ("wav", "audio/wav"),
        ("flac", "audio/flac"),
    ],
)
async def test_the_estimate_is_the_audio_s_duration(fmt: str, content_type: str) -> None:
    audio = encode_tone(1.5, fmt=fmt)
    paid = await cut.transcription_cut_off("openai", "whisper-1", audio, content_type)
    assert (paid.request_type, paid.provider, paid.model) == (TRANSCRIPTION, "openai", "whisper-1")
    assert paid.estimated
    assert paid.usage == TokenUsage(0, 0)
    assert paid.audio_seconds == pytest.approx(1.5, abs=0.05)


def muxed(fmt: str, codec: str, seconds: float, *, rate: int = 48_000) -> bytes:
    """`seconds` of silence in `fmt` (a browser's WebM, a phone's M4A)."""
    out = io.BytesIO()
    with av.open(out, mode="w", format=fmt) as container:
        stream = container.add_stream(codec, rate=rate, layout="mono")
        assert isinstance(stream, av.audio.stream.AudioStream)
        frame_size = stream.codec_context.frame_size or 1024
        done = 0
        while done < seconds * rate:
            frame = av.AudioFrame(
                format=stream.codec_context.format.name, layout="mono", samples=frame_size
            )
            for plane in frame.planes:
                plane.update(bytes(plane.buffer_size))
            frame.sample_rate = rate
            frame.pts = done
            frame.time_base = Fraction(1, rate)
            container.mux(stream.encode(frame))
            done += frame_size
        container.mux(stream.encode(None))
    return out.getvalue()


@pytest.mark.parametrize(
    ("fmt", "codec", "content_type"),
    [("webm", "libopus", "audio/webm"), ("mp4", "aac", "audio/mp4")],
)
async def test_other_accepted_containers_are_read_too(
    fmt: str, codec: str, content_type: str
) -> None:
    audio = muxed(fmt, codec, 2.0)
    assert await cut.estimated_seconds(audio, content_type) == pytest.approx(2.0, abs=0.1)


async def test_an_hour_of_audio_is_read_without_decoding_it() -> None:
    """Decoding an hour of FLAC (resampled to count it) took ~1 s of CPU here, an hour of
    8-channel 192 kHz ~20 s; its header says its length in milliseconds. Counted as this
    process's CPU, not wall time, so a busy machine does not fail it."""
    audio = muxed("flac", "flac", 3600.0, rate=8_000)
    began = time.process_time()
    assert await cut.estimated_seconds(audio, "audio/flac") == pytest.approx(3600.0, abs=1)
    assert time.process_time() - began < 0.5


async def test_the_demuxer_is_the_validated_type_s() -> None:
    """A concat list sent as audio/ogg is not read as one (it would open local files): it
    is counted by its size."""
    listing = b"ffconcat version 1.0\nfile local.wav\n"
    seconds = await cut.estimated_seconds(listing, "audio/ogg")
    assert seconds == cut.size_estimate(len(listing), "ogg")
    assert seconds < 0.01


async def test_audio_longer_than_the_cap_counts_as_the_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cut, "MAX_ESTIMATED_SECONDS", 1.0)
    paid = await cut.transcription_cut_off(
        "openai", "whisper-1", encode_tone(3.0, fmt="ogg"), "audio/ogg"
    )
    assert paid.audio_seconds == 1.0


async def test_unreadable_audio_is_counted_by_its_size() -> None:
    audio = b"OggS" + bytes(64_000)
    paid = await cut.transcription_cut_off("openai", "whisper-1", audio, "audio/ogg")
    assert paid.estimated
    assert paid.audio_seconds == pytest.approx(len(audio) * 8 / cut.COMPRESSED_BITRATE, abs=0.01)


def test_the_size_estimate_is_a_floor_for_voice_recordings() -> None:
    """A minute of 32 kbps Opus, of 16-bit 48 kHz WAV: neither counted longer than it is."""
    assert cut.size_estimate(60 * 32_000 // 8, "ogg") <= 60
    assert cut.size_estimate(60 * 48_000 * 2, "wav") <= 60
    assert cut.size_estimate(10**12, "ogg") == cut.MAX_ESTIMATED_SECONDS


async def test_a_slow_estimate_gives_way_to_the_size_estimate_in_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The reply's error never waits for the estimate past ESTIMATE_TIME_LIMIT."""
    release = threading.Event()

    def stuck(audio: bytes, demuxer: str, time_limit: float) -> float:
        release.wait(10)
        return 99.0

    monkeypatch.setattr(cut, "_duration", stuck)
    monkeypatch.setattr(cut, "ESTIMATE_TIME_LIMIT", 0.3)
    audio = encode_tone(1.0, fmt="ogg")
    began = time.monotonic()
    try:
        seconds = await cut.estimated_seconds(audio, "audio/ogg")
    finally:
        release.set()
    assert time.monotonic() - began < 2.0
    assert seconds == cut.size_estimate(len(audio), "ogg")


async def test_estimates_run_on_their_own_thread_not_the_default_pool(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Many failures at once never hold the default executor (lorebook matching, pages)."""
    release = threading.Event()
    names: list[str] = []

    def slow(audio: bytes, demuxer: str, time_limit: float) -> float:
        names.append(threading.current_thread().name)
        release.wait(5)
        return 1.0

    monkeypatch.setattr(cut, "_duration", slow)
    monkeypatch.setattr(cut, "ESTIMATE_TIME_LIMIT", 1.0)
    estimates = [asyncio.create_task(cut.estimated_seconds(b"x", "audio/ogg")) for _ in range(8)]
    try:
        began = time.monotonic()
        await asyncio.wait_for(asyncio.to_thread(lambda: None), 0.5)  # not queued behind them
        assert time.monotonic() - began < 0.5
        await asyncio.gather(*estimates)
    finally:
        release.set()
    assert names
    assert all(name.startswith("transcription-estimate") for name in names)
    assert len(names) == 1  # one thread; the queued ones were dropped at their time limit


def unknown_codec_wav() -> bytes:
    """A WAV whose format tag (0x007c) FFmpeg has no decoder for: PyAV gives its stream no
    codec context (review 686 M1's crash.py)."""
    wav = bytearray(encode_tone(1.0, fmt="wav"))
    assert wav[20:22] == struct.pack("<H", 1)  # PCM
    wav[20:22] = struct.pack("<H", 0x007C)
    return bytes(wav)


async def test_a_stream_without_a_decoder_is_counted_by_its_size() -> None:
    with pytest.raises(AudioError):
        header_duration(unknown_codec_wav(), "wav", max_seconds=3600, time_limit=1.0)
    audio = unknown_codec_wav()
    assert await cut.estimated_seconds(audio, "audio/wav") == cut.size_estimate(len(audio), "wav")


@pytest.mark.parametrize(
    "fails",
    [
        pytest.param(None, id="no codec context"),
        pytest.param(RuntimeError("a bug in the reader"), id="any error of the reader"),
    ],
)
async def test_the_estimate_never_replaces_the_reply_s_error(
    fails: Exception | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever the reader does, the provider's error goes on, with the size estimate."""
    if fails is not None:

        def broken(audio: bytes, demuxer: str, time_limit: float) -> float:
            raise fails

        monkeypatch.setattr(cut, "_duration", broken)
    audio = unknown_codec_wav()
    unheard: list[PaidCall] = []
    steps = transcribed(
        Transcribing(
            Provider("openai", "https://api.test/v1"),
            SecretStr("k"),
            "whisper-1",
            Downloaded(audio, "audio/wav"),
            "voice.wav",
        ),
        Unanswered(),
        RetryPolicy(),
        index=0,
        unheard=unheard,
    )
    with pytest.raises(NoAnswerInTime):
        _ = [step async for step in steps]
    assert [paid.audio_seconds for paid in unheard] == [cut.size_estimate(len(audio), "wav")]


class Unanswered:
    """Takes the whole upload, then no answer comes in time."""

    async def transcribe(
        self,
        provider: Provider,
        api_key: SecretStr,
        *,
        model: str,
        audio: bytes,
        filename: str,
        content_type: str,
        time_limit: float | None = None,
        on_sent: Callable[[], None] | None = None,
    ) -> Transcript:
        assert on_sent is not None
        on_sent()
        raise NoAnswerInTime("openai did not answer in time", reason=UNREACHED)


def forged_flac(total_samples: int) -> bytes:
    """Two seconds of FLAC whose STREAMINFO declares `total_samples` (review 686 L4)."""
    flac = bytearray(encode_tone(2.0, fmt="flac"))
    at = flac.index(b"fLaC") + 8 + 10  # STREAMINFO's rate, channels, bits and total samples
    packed = int.from_bytes(flac[at : at + 8], "big") & ~((1 << 36) - 1) | total_samples
    flac[at : at + 8] = packed.to_bytes(8, "big")
    return bytes(flac)


async def test_a_header_declaring_more_than_the_file_holds_is_checked_by_its_packets() -> None:
    """2 s of FLAC whose header says 2^36 - 1 samples (an hour and more, in 32 KB: far
    below MIN_BITRATE): its packets say 2 s."""
    lying = forged_flac((1 << 36) - 1)
    assert len(lying) * 8 / MIN_BITRATE < 3600
    declared = header_duration(lying, "flac", max_seconds=3600, time_limit=1.0)
    assert declared.duration_secs == pytest.approx(2.0, abs=0.05)
    assert await cut.estimated_seconds(lying, "audio/flac") == pytest.approx(2.0, abs=0.05)


async def test_past_max_pending_estimates_the_size_estimate_comes_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A reader stuck in FFmpeg holds the thread: MAX_PENDING estimates wait for it, the next
    is counted by its size without waiting (nor queueing its audio); once the stuck one ends,
    estimates are read again."""
    release = threading.Event()

    def stuck(audio: bytes, demuxer: str, time_limit: float) -> float:
        release.wait(10)
        return 99.0

    monkeypatch.setattr(cut, "_duration", stuck)
    monkeypatch.setattr(cut, "ESTIMATE_TIME_LIMIT", 3.0)
    audio = encode_tone(1.0, fmt="ogg")
    waiting = [
        asyncio.create_task(cut.estimated_seconds(audio, "audio/ogg"))
        for _ in range(cut.MAX_PENDING)
    ]
    try:
        await asyncio.sleep(0.1)  # all of them queued, the first one stuck
        began = time.monotonic()
        seconds = await cut.estimated_seconds(audio, "audio/ogg")
        assert time.monotonic() - began < 0.5
        assert seconds == cut.size_estimate(len(audio), "ogg")
    finally:
        release.set()
    assert await asyncio.gather(*waiting) == [99.0] * cut.MAX_PENDING  # read in their time
    monkeypatch.undo()
    assert await cut.estimated_seconds(audio, "audio/ogg") == pytest.approx(1.0, abs=0.05)
