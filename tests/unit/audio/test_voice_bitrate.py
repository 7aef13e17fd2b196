"""A voice message's size is its bitrate times its duration, whatever it sounds like.

libopus' default, unconstrained VBR, treats the bitrate as an average over typical content:
on tonal sound it spent 44 kbps (a 220 Hz tone), up to 65 kbps (a chord), against the 32 kbps
asked, so 40 minutes came out at 13.2 MB, past Discord's 10 MiB. Constrained VBR keeps every
frame within the target (less on pauses). The bound: the bitrate's bytes plus the OGG pages'
overhead (~0.64 kbps at 20 ms packets and 1 s pages) and the encoder's one-frame reservoir.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable

import pytest

from tzurot.audio import VOICE_MESSAGE_BITRATE, encode_tone, voice_message

SECONDS = 30.0
RATE = 48_000
UPPER = 1.05
"""At most 5 % over the bitrate's bytes: measured 1.3-3.4 % (OGG pages, encoder reservoir)."""
LOWER = 0.95
"""Dense sound (no pauses) fills the bitrate: a rate far below it would be another bug."""


def chord(seconds: float) -> bytes:
    """Raw s16le mono at RATE: four steady sines, the content VBR overspent on most."""
    return array(
        "h",
        (
            int(
                4_000
                * sum(math.sin(2 * math.pi * f * n / RATE) for f in (261.6, 329.6, 392.0, 3136.0))
            )
            for n in range(int(seconds * RATE))
        ),
    ).tobytes()


@pytest.mark.parametrize(
    ("sound", "pcm_rate"),
    [
        (lambda: encode_tone(SECONDS, fmt="wav", rate=RATE), None),
        (lambda: chord(SECONDS), RATE),
    ],
    ids=["tone", "chord"],
)
def test_a_voice_message_is_as_large_as_its_bitrate_says(
    sound: Callable[[], bytes], pcm_rate: int | None
) -> None:
    message = voice_message(sound(), pcm_rate=pcm_rate)
    size = len(message.ogg)
    expected = VOICE_MESSAGE_BITRATE / 8 * message.duration_secs
    assert message.duration_secs == pytest.approx(SECONDS, abs=0.05)
    kbps = size * 8 / message.duration_secs / 1000
    assert LOWER * expected <= size <= UPPER * expected, f"{kbps:.1f} kbps"
