"""A speech's provider audio, collected whole within its reservation, which grows with it.

A speech reserves its estimated seconds before the provider is paid (tzurot.inference.voice).
Audio that runs longer than the estimate (a slow voice) would hold more than that reservation
covers, its raw bytes while they stream and its samples while converting, so the reservation
is topped up as the bytes arrive: the moment they pass what it covers, more is taken, without
waiting (a wait here would come after the payment: a deadline passing in it would leave a paid
speech unsent) and never ahead of a reservation queued for the budget. When the budget cannot
give it, the audio is kept all the same (it is paid for: dropping it would lose what the user
paid, to protect a bound a few speeches' worth of memory wide), and logged
`voice.over_budget` once, with the figures.

Seconds are read from bytes at AUDIO_BYTES_PER_SECOND, the bitrate ElevenLabs sends as asked
(`mp3_44100_128`, constant); a provider sending less a second is under-counted by that ratio,
which the audio's real length, logged after its conversion (`voice.longer_than_reserved`),
shows.
"""

from __future__ import annotations

import math

import structlog

from tzurot.inference.voice_budget import Reservation
from tzurot.runtime.errors import Unavailable

log = structlog.get_logger(__name__)

AUDIO_BYTES_PER_SECOND = 128_000 // 8
"""Provider audio (MP3 at 128 kbps) taken as one second, one unit of a speech's weight."""


class ReservedAudio:
    """The provider's audio bytes (at most `max_bytes`, beyond which it is Unavailable), within
    `hold`, which is topped up as they pass what it covers: by `step` at least, to `most` at
    most (a whole unit: the largest work there is)."""

    def __init__(
        self, hold: Reservation, *, provider: str, max_bytes: int, step: int, most: int
    ) -> None:
        self._hold = hold
        self._provider = provider
        self._max_bytes = max_bytes
        self._step, self._most = step, most
        self._reserved = hold.weight
        self._audio = bytearray()
        self.over_budget = False
        """The budget could not give what the audio needed (logged once)."""

    def add(self, piece: bytes) -> None:
        self._audio += piece
        if len(self._audio) > self._max_bytes:
            raise Unavailable(f"{self._provider} sent more audio than expected")
        self._cover()

    def take(self) -> bytes:
        """The audio whole, no longer held here (one copy held while converting, not two)."""
        data = bytes(self._audio)
        self._audio.clear()
        return data

    def _cover(self) -> None:
        held = self._hold.weight
        seconds = math.ceil(len(self._audio) / AUDIO_BYTES_PER_SECOND)
        needed = min(seconds, self._most)
        if needed <= held:
            return
        # By a step at once (a few top-ups a speech, not one a chunk); else what is needed now.
        if self._hold.top_up(min(max(needed - held, self._step), self._most - held)):
            return
        if self._hold.top_up(needed - held) or self.over_budget:
            return
        self.over_budget = True
        log.warning(
            "voice.over_budget",
            provider=self._provider,
            estimated_secs=self._reserved,
            reserved_secs=held,
            audio_secs=seconds,
            audio_bytes=len(self._audio),
        )
