"""Decoding and encoding with PyAV: probe a file, make a voice message, make test audio.

PyAV is imported by the functions that use it, not with the module: gateway and inference
import this for their voice features, and loading FFmpeg's bindings is CPU their start does
not need (`tests/unit/cli/test_lazy_start.py`).
"""

from __future__ import annotations

import io
import math
from array import array
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tzurot.audio._waveform import waveform

if TYPE_CHECKING:
    import av

_VOICE_RATE = 48_000
_VOICE_BITRATE = 32_000
_RAW_PCM = "pcm"
_FORMATS = {
    "mp3": ("mp3", "libmp3lame"),
    "wav": ("wav", "pcm_s16le"),
    "ogg": ("ogg", "libopus"),
    "flac": ("flac", "flac"),
    "aac": ("adts", "aac"),
}


class AudioError(ValueError):
    """The bytes are not audio this code can decode (the message says why, for a user)."""


@dataclass(frozen=True)
class AudioInfo:
    container: str
    """FFmpeg's demuxer name: "mp3", "wav", "ogg", …"""
    codec: str
    duration_secs: float
    sample_rate: int
    channels: int


@dataclass(frozen=True)
class VoiceMessage:
    ogg: bytes
    duration_secs: float
    waveform: str
    """Base64, one byte per point, at most 256 points."""


def _open(data: bytes, pcm_rate: int | None) -> av.container.InputContainer:
    import av  # noqa: PLC0415 - see the module's docstring
    import av.error  # noqa: PLC0415

    try:
        if pcm_rate is not None:  # raw signed 16-bit little-endian mono has no header
            return av.open(
                io.BytesIO(data),
                mode="r",
                format="s16le",
                options={"sample_rate": str(pcm_rate), "ch_layout": "mono"},
            )
        return av.open(io.BytesIO(data), mode="r")
    except (av.error.FFmpegError, ValueError) as exc:
        raise AudioError("not a readable audio file") from exc


def _mono_s16(data: bytes, rate: int, pcm_rate: int | None) -> tuple[array[int], AudioInfo]:
    """Every sample of the first audio stream, as signed 16-bit mono at `rate`."""
    import av  # noqa: PLC0415 - see the module's docstring
    import av.error  # noqa: PLC0415

    container = _open(data, pcm_rate)
    with container:
        if not container.streams.audio:
            raise AudioError("the file has no audio stream")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
        samples: array[int] = array("h")
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    samples.frombytes(bytes(out.planes[0])[: out.samples * 2])
            for out in resampler.resample(None):
                samples.frombytes(bytes(out.planes[0])[: out.samples * 2])
        except (av.error.FFmpegError, ValueError) as exc:
            raise AudioError("the audio could not be decoded") from exc
        info = AudioInfo(
            container=_RAW_PCM if pcm_rate is not None else container.format.name,
            codec=stream.codec_context.name,
            duration_secs=len(samples) / rate,
            sample_rate=stream.codec_context.sample_rate or rate,
            channels=stream.codec_context.channels or 1,
        )
    if not samples:
        raise AudioError("the file holds no sound")
    return samples, info


def probe(data: bytes) -> AudioInfo:
    """Decodes the whole file: its real container, codec and duration. AudioError if it is
    not audio, or holds none."""
    return _mono_s16(data, _VOICE_RATE, None)[1]


def voice_message(data: bytes, *, pcm_rate: int | None = None) -> VoiceMessage:
    """Any decodable audio (or raw s16le mono at `pcm_rate`) as a Discord voice message:
    1-channel 48 kHz Opus (32 kbps) in OGG, its duration and its waveform."""
    import av  # noqa: PLC0415 - see the module's docstring

    samples, _ = _mono_s16(data, _VOICE_RATE, pcm_rate)
    out = io.BytesIO()
    with av.open(out, mode="w", format="ogg") as container:
        stream = container.add_stream("libopus", rate=_VOICE_RATE, layout="mono")
        stream.bit_rate = _VOICE_BITRATE
        _encode(container, stream, samples, _VOICE_RATE)
    return VoiceMessage(
        ogg=out.getvalue(),
        duration_secs=round(len(samples) / _VOICE_RATE, 3),
        waveform=waveform(samples, _VOICE_RATE),
    )


def _encode(
    container: av.container.OutputContainer,
    stream: av.audio.stream.AudioStream,
    samples: array[int],
    rate: int,
) -> None:
    import av  # noqa: PLC0415 - see the module's docstring

    resampler = av.AudioResampler(
        format=stream.codec_context.format.name, layout="mono", rate=stream.codec_context.rate
    )
    step = rate // 50  # 20 ms frames
    for start in range(0, len(samples), step):
        part = samples[start : start + step]
        frame = av.AudioFrame(format="s16", layout="mono", samples=len(part))
        frame.planes[0].update(part.tobytes())
        frame.sample_rate = rate
        for converted in resampler.resample(frame):
            container.mux(stream.encode(converted))
    for converted in resampler.resample(None):
        container.mux(stream.encode(converted))
    container.mux(stream.encode(None))


def encode_tone(
    seconds: float, *, fmt: str = "mp3", rate: int = 44_100, frequency: float = 220.0
) -> bytes:
    """A real, decodable recording of a tone with a rising and falling loudness: "mp3",
    "wav", "ogg" (Opus), "flac", "aac" (ADTS) or "pcm" (raw s16le mono). For fakes and
    tests."""
    import av  # noqa: PLC0415 - see the module's docstring

    count = max(1, int(seconds * rate))
    samples = array(
        "h",
        (
            int(
                12_000
                * math.sin(math.pi * n / count)
                * math.sin(2 * math.pi * frequency * n / rate)
            )
            for n in range(count)
        ),
    )
    if fmt == _RAW_PCM:
        return samples.tobytes()
    muxer, codec = _FORMATS.get(fmt, ("", ""))
    if not codec:
        raise ValueError(f"unknown format {fmt}")
    out = io.BytesIO()
    with av.open(out, mode="w", format=muxer) as container:
        stream_rate = _VOICE_RATE if codec == "libopus" else rate
        stream = container.add_stream(codec, rate=stream_rate, layout="mono")
        assert isinstance(stream, av.audio.stream.AudioStream)
        _encode(container, stream, samples, rate)
    return out.getvalue()
