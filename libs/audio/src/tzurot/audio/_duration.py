"""A file's duration without decoding it: the container's header, else its packets' own.

`probe` decodes every frame, so its CPU grows with sample rate, channels and duration (an hour
of 8-channel 192 kHz FLAC silence fits in 1.4 MB and takes ~20 s). Reading the duration the
container declares costs a header read; a container that declares none (a WebM from a
browser's recorder) is demuxed, never decoded, adding up its packets' durations (an hour of
Opus in 20 ms packets: ~0.5 s of CPU). The demuxer is the caller's, never guessed from the
bytes: FFmpeg's probing would also pick demuxers that open other files (`concat`, `hls`).
"""

from __future__ import annotations

import io
import time
from typing import TYPE_CHECKING

from tzurot.audio._codec import AudioError, AudioInfo

if TYPE_CHECKING:
    import av

DEMUXERS = frozenset({"ogg", "mp3", "wav", "flac", "mp4", "webm"})
"""The FFmpeg demuxers `header_duration` opens (voice notes and audio attachments): none reads
anything but the bytes it is given."""
MAX_SAMPLE_RATE = 384_000
MAX_CHANNELS = 8
"""Beyond these a stream is no recording anyone speaks into: AudioError (its duration is not
taken from a header that says so)."""
MIN_BITRATE = 6_000
"""Bits a second below which speech is not encoded (Opus's lowest rate): a header that
declares more seconds than the file holds at this rate is not believed without its packets."""
_AV_TIME_BASE = 1_000_000


def header_duration(data: bytes, fmt: str, *, max_seconds: float, time_limit: float) -> AudioInfo:
    """The first audio stream's duration, read with the demuxer `fmt` (one of DEMUXERS)
    without decoding: the stream's or container's declared duration, else its packets'
    durations added up, stopping at `max_seconds` (the result is then `max_seconds`). A
    declared duration longer than `data` holds at MIN_BITRATE is checked against the packets
    (the smaller is taken). AudioError if `fmt` is not allowed, the bytes are not that format,
    the stream has no decoder here, its sample rate or channels are implausible, no duration
    can be read, or the packets are not read within `time_limit` seconds of the call (opening
    the file counts; FFmpeg's own parsing of a header cannot be stopped midway, only checked
    after)."""
    deadline = time.monotonic() + time_limit
    if fmt not in DEMUXERS:
        raise AudioError(f"no demuxer {fmt!r} here")
    import av  # noqa: PLC0415 - PyAV loads lazily (see _codec.py)
    import av.error  # noqa: PLC0415

    try:
        with av.open(io.BytesIO(data), mode="r", format=fmt) as container:
            if not container.streams.audio:
                raise AudioError("the file has no audio stream")
            stream = container.streams.audio[0]
            codec = stream.codec_context  # None when FFmpeg has no decoder for its codec tag
            if codec is None:
                raise AudioError("the audio stream's codec is unknown")
            rate = codec.sample_rate or 0
            channels = codec.channels or 0
            if not 0 < rate <= MAX_SAMPLE_RATE or not 0 < channels <= MAX_CHANNELS:
                raise AudioError("not a plausible recording (sample rate or channels)")
            seconds = _declared(container, stream)
            if seconds is None or seconds > len(data) * 8 / MIN_BITRATE:
                # None declared, or more than the file likely holds (a corrupt or lying
                # header, or digital silence): its packets say, and the header no more.
                counted = _demuxed(container, stream, max_seconds, deadline)
                seconds = counted if seconds is None else min(seconds, counted)
            return AudioInfo(
                container=container.format.name,
                codec=codec.name,
                duration_secs=min(seconds, max_seconds),
                sample_rate=rate,
                channels=channels,
            )
    except (av.error.FFmpegError, ValueError, EOFError) as exc:
        if isinstance(exc, AudioError):
            raise
        raise AudioError("not a readable audio file") from exc


def _declared(
    container: av.container.InputContainer, stream: av.audio.stream.AudioStream
) -> float | None:
    """What the stream's header (else the container's) says, when it says anything."""
    if stream.duration and stream.time_base and stream.duration > 0:
        return float(stream.duration * stream.time_base)
    if container.duration and container.duration > 0:
        return container.duration / _AV_TIME_BASE
    return None


def _demuxed(
    container: av.container.InputContainer,
    stream: av.audio.stream.AudioStream,
    max_seconds: float,
    deadline: float,
) -> float:
    """The packets' durations added up (their timestamps' span where they carry none)."""
    if stream.time_base is None:
        raise AudioError("the stream has no time base")
    base = float(stream.time_base)
    total = 0
    first: int | None = None
    end = 0
    for count, packet in enumerate(container.demux(stream)):
        if packet.duration:
            total += packet.duration
        if packet.pts is not None:
            first = packet.pts if first is None else min(first, packet.pts)
            end = max(end, packet.pts + (packet.duration or 0))
        seconds = total * base or (end - (first or 0)) * base
        if seconds > max_seconds:
            return max_seconds
        if count % 256 == 0 and time.monotonic() > deadline:
            raise AudioError("reading the packets took too long")
    seconds = total * base or (end - (first or 0)) * base
    if seconds <= 0:
        raise AudioError("the file declares no duration")
    return seconds
