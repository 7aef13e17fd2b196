"""A failed transcription's estimate: only a failure after the provider may have processed
the audio counts (a timeout once sent, a connection dropped after sending, a 5xx, an
unreadable answer), never a refusal (any 4xx, 408 and 409 included) nor a request never
sent; it counts the audio's decoded duration, failed calls' request type, estimated."""

from __future__ import annotations

import pytest

from tzurot.audio import encode_tone
from tzurot.inference import transcription_cut_off as cut
from tzurot.inference.domain import TRANSCRIPTION, TokenUsage
from tzurot.inference.retries import NoAnswerInTime, NotSent
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
        (unavailable(status="503"), True),
        (unavailable(status="408"), False),
        (unavailable(status="409"), False),
        (NotSent("x", reason=UNREACHED), False),
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


async def test_the_estimate_is_the_audio_s_duration() -> None:
    paid = await cut.transcription_cut_off("openai", "whisper-1", encode_tone(1.5, fmt="mp3"))
    assert (paid.request_type, paid.provider, paid.model) == (TRANSCRIPTION, "openai", "whisper-1")
    assert paid.estimated
    assert paid.usage == TokenUsage(0, 0)
    assert paid.audio_seconds == pytest.approx(1.5, abs=0.05)


async def test_audio_longer_than_decoded_counts_as_the_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cut, "MAX_ESTIMATED_SECONDS", 1.0)
    paid = await cut.transcription_cut_off("openai", "whisper-1", encode_tone(3.0, fmt="ogg"))
    assert paid.audio_seconds == 1.0


async def test_undecodable_audio_is_counted_with_its_length_unknown() -> None:
    paid = await cut.transcription_cut_off("openai", "whisper-1", b"OggS" + bytes(300))
    assert paid.estimated
    assert paid.audio_seconds == 0.0
