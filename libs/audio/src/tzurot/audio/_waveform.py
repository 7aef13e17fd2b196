"""The voice message's waveform preview: one byte per point, at most 256 points.

Discord's clients sample the recording at most once per 100 ms and downsample to at most 256
points (discord-api-docs, "Voice Messages"); each point here is the peak of its span of
samples, scaled to 0-255.
"""

from __future__ import annotations

import base64
import math
from array import array

MAX_WAVEFORM_SAMPLES = 256
_POINT_SECONDS = 0.1
_FULL_SCALE = 32768


def waveform(samples: array[int], sample_rate: int) -> str:
    """Base64 of the peak amplitudes of equal spans of signed 16-bit mono `samples`."""
    if not samples:
        return base64.b64encode(bytes([0])).decode()
    duration = len(samples) / sample_rate
    points = max(1, min(MAX_WAVEFORM_SAMPLES, math.ceil(duration / _POINT_SECONDS)))
    span = len(samples) / points
    peaks = bytearray()
    for index in range(points):
        start = int(index * span)
        end = max(int((index + 1) * span), start + 1)
        part = samples[start:end]
        peak = max(max(part), -min(part))  # noqa: PLW3301  # one pass each over a C array
        peaks.append(min(255, peak * 255 // _FULL_SCALE))
    return base64.b64encode(bytes(peaks)).decode()
