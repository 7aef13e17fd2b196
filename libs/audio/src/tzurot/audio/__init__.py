"""Audio for voice: decoding what a user or a provider sent, and Discord voice messages.

PyAV (FFmpeg's libraries, libopus and LAME bundled in its wheels) does every codec; nothing
here parses a container by hand. `probe` decodes a file frame by frame, counting samples, to
learn its real container and duration (the name and declared type are never trusted), and stops
at a `max_seconds` (AudioTooLong): a few MB of low-bitrate audio may hold hours. `voice_message`
turns any decodable audio into what Discord's voice bubble wants: one channel, 48 kHz Opus in
an OGG container, with its duration and a waveform of at most 256 one-byte samples.
`header_duration` reads a duration without decoding, with the demuxer the caller names.
"""

from tzurot.audio._codec import (
    VOICE_MESSAGE_BITRATE,
    AudioError,
    AudioInfo,
    AudioTooLong,
    VoiceMessage,
    encode_tone,
    probe,
    voice_message,
)
from tzurot.audio._duration import DEMUXERS, MIN_BITRATE, header_duration
from tzurot.audio._waveform import MAX_WAVEFORM_SAMPLES, waveform

__all__ = [
    "DEMUXERS",
    "MAX_WAVEFORM_SAMPLES",
    "MIN_BITRATE",
    "VOICE_MESSAGE_BITRATE",
    "AudioError",
    "AudioInfo",
    "AudioTooLong",
    "VoiceMessage",
    "encode_tone",
    "header_duration",
    "probe",
    "voice_message",
    "waveform",
]
