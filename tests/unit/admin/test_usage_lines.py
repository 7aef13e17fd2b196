"""`tzurot admin usage`: one line per user, provider, model and kind of request, speech in
the characters it is billed by and the requests paid for but not delivered whole."""

from __future__ import annotations

from tzurot.admin.commands import usage_line
from tzurot.v1 import gateway_pb2 as gw


def test_speech_is_shown_in_characters_with_what_was_paid_but_not_delivered() -> None:
    line = usage_line(
        gw.UsageTotal(
            user_id="100",
            provider="elevenlabs",
            model="eleven_multilingual_v2",
            requests=3,
            request_type="speech",
            characters=5400,
            failed_requests=1,
        )
    )
    assert line.split() == [
        "100",
        "elevenlabs",
        "eleven_multilingual_v2",
        "speech",
        "3",
        "requests",
        "5400",
        "characters",
        "(1",
        "paid,",
        "not",
        "delivered)",
    ]


def test_answers_are_shown_in_tokens_and_their_kind() -> None:
    chat = usage_line(
        gw.UsageTotal(
            provider="openrouter", model="m", requests=2, input_tokens=1000, output_tokens=50
        )
    )
    assert chat.split() == [
        "-",
        "openrouter",
        "m",
        "chat",
        "2",
        "requests",
        "1000",
        "in",
        "50",
        "out",
    ]
    cleanup = usage_line(
        gw.UsageTotal(
            provider="openrouter", model="m", requests=1, request_type="transcript_cleanup"
        )
    )
    assert "transcript_cleanup" in cleanup.split()
    assert "characters" not in cleanup


def test_estimated_requests_are_counted_on_the_line() -> None:
    line = usage_line(
        gw.UsageTotal(
            provider="openrouter",
            model="m",
            requests=2,
            input_tokens=10,
            output_tokens=40,
            failed_requests=1,
            estimated_requests=1,
        )
    )
    assert line.endswith("(1 paid, not delivered) (1 estimated)")
    assert "estimated" not in usage_line(gw.UsageTotal(provider="p", model="m", requests=1))
