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
from itertools import chain
from typing import TYPE_CHECKING

from tzurot.audio._waveform import waveform

if TYPE_CHECKING:
    import av

_VOICE_RATE = 48_000
VOICE_MESSAGE_BITRATE = 32_000
"""A voice message's Opus bitrate, a ceiling (constrained VBR): at most this plus the OGG
pages' ~0.64 kbps and the encoder's one-frame reservoir, 33.1 kbps measured at worst; less
where the speech pauses. 40 minutes is then at most ~9.5 MiB."""
_VOICE_OPUS_OPTIONS = {"vbr": "constrained"}
"""libopus' default VBR (on, unconstrained) takes the bitrate as an average over typical
sound and overspends on tonal sound without bound: 44 kbps on a 220 Hz tone, 65 on a chord,
for 32 asked (13.2 MB for 40 minutes). Constrained keeps each frame within the target."""
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


class AudioTooLong(AudioError):
    """Decoding stopped as soon as the audio passed `max_seconds`, so a short file holding
    hours of sound costs neither the memory nor the CPU of decoding it all. `info` is what was
    read up to there: its container and codec, its duration just past the limit."""

    def __init__(self, info: AudioInfo, max_seconds: float) -> None:
        super().__init__(f"longer than {max_seconds:g} seconds")
        self.info = info
        self.max_seconds = max_seconds


def _mono_s16(
    data: bytes,
    rate: int,
    pcm_rate: int | None,
    *,
    max_seconds: float | None = None,
    keep: bool = True,
) -> tuple[array[int], AudioInfo]:
    """The first audio stream decoded frame by frame as signed 16-bit mono at `rate`: every
    sample when `keep`, else none (only counted). AudioTooLong the moment the count passes
    `max_seconds`, before that frame is kept: never more than the limit is held."""
    import av  # noqa: PLC0415 - see the module's docstring
    import av.error  # noqa: PLC0415

    container = _open(data, pcm_rate)
    with container:
        if not container.streams.audio:
            raise AudioError("the file has no audio stream")
        stream = container.streams.audio[0]

        def info(count: int) -> AudioInfo:
            return AudioInfo(
                container=_RAW_PCM if pcm_rate is not None else container.format.name,
                codec=stream.codec_context.name,
                duration_secs=count / rate,
                sample_rate=stream.codec_context.sample_rate or rate,
                channels=stream.codec_context.channels or 1,
            )

        resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
        samples: array[int] = array("h")
        count = 0
        try:
            for frame in chain(container.decode(stream), [None]):
                for out in resampler.resample(frame):  # None flushes the resampler
                    count += out.samples
                    if max_seconds is not None and count / rate > max_seconds:
                        raise AudioTooLong(info(count), max_seconds)
                    if keep:
                        samples.frombytes(bytes(out.planes[0])[: out.samples * 2])
        except AudioTooLong:  # a ValueError too: not to be taken for a decoding error
            raise
        except (av.error.FFmpegError, ValueError) as exc:
            raise AudioError("the audio could not be decoded") from exc
        found = info(count)
    if not count:
        raise AudioError("the file holds no sound")
    return samples, found


def probe(data: bytes, *, max_seconds: float | None = None) -> AudioInfo:
    """Decodes the file frame by frame, keeping no samples: its real container, codec and
    duration. AudioError if it is not audio, or holds none; AudioTooLong as soon as it passes
    `max_seconds` (memory stays flat whatever the length; CPU stops at the limit)."""
    return _mono_s16(data, _VOICE_RATE, None, max_seconds=max_seconds, keep=False)[1]


def voice_message(
    data: bytes, *, pcm_rate: int | None = None, max_seconds: float | None = None
) -> VoiceMessage:
    """Any decodable audio (or raw s16le mono at `pcm_rate`) as a Discord voice message:
    1-channel 48 kHz Opus (at most VOICE_MESSAGE_BITRATE) in OGG, its duration and its
    waveform: its size is bounded by its duration, whatever it sounds like. The samples are
    held while converting (96 KB a second): AudioTooLong as soon as they pass `max_seconds`."""
    import av  # noqa: PLC0415 - see the module's docstring

    samples, _ = _mono_s16(data, _VOICE_RATE, pcm_rate, max_seconds=max_seconds)
    out = io.BytesIO()
    with av.open(out, mode="w", format="ogg") as container:
        stream = container.add_stream(
            "libopus", rate=_VOICE_RATE, layout="mono", options=dict(_VOICE_OPUS_OPTIONS)
        )
        stream.bit_rate = VOICE_MESSAGE_BITRATE
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
