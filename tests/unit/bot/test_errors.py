"""What users read when an answer fails: the personality's voice and an actionable reason."""

import grpc

from tzurot.bot.errors import DEFAULT_ERROR_MESSAGE, error_reply, personality_gone, reason_text
from tzurot.runtime.errors import (
    FailedPrecondition,
    NotFound,
    ResourceExhausted,
    TzurotError,
    Unavailable,
)
from tzurot.v1 import common_pb2 as common

LILITH = common.Personality(display_name="Lilith", error_message="*Lilith's candle gutters.*")


def test_no_key_says_how_to_add_one() -> None:
    err = FailedPrecondition("no key", reason="NO_API_KEY", metadata={"provider": "openrouter"})
    text = error_reply(LILITH, err)
    assert text.startswith("*Lilith's candle gutters.*")
    assert "/wallet set openrouter" in text


def test_rate_limit_says_when_to_retry() -> None:
    err = ResourceExhausted("slow down", retry_after_seconds=12.2, reason="PROVIDER_RATE_LIMITED")
    assert "try again in 13 seconds" in error_reply(LILITH, err)


def test_quota_and_provider_down() -> None:
    quota = ResourceExhausted("quota", reason="PROVIDER_QUOTA_EXCEEDED")
    assert "quota" in error_reply(LILITH, quota)
    down = Unavailable("down", reason="PROVIDER_UNAVAILABLE")
    assert "not reachable" in error_reply(LILITH, down)


def test_a_restarting_service_is_named_not_blamed_on_the_provider() -> None:
    restarting = Unavailable(
        "the inference is restarting; try again in a moment", reason="SERVICE_RESTARTING"
    )
    text = error_reply(LILITH, restarting)
    assert text.endswith("-# The inference is restarting; try again in a moment.")
    assert "provider" not in text


def test_internal_details_are_not_shown() -> None:
    err = TzurotError("stack trace with secrets", code=grpc.StatusCode.INTERNAL)
    text = error_reply(common.Personality(display_name="X"), err)
    assert "stack trace" not in text
    assert text.startswith(DEFAULT_ERROR_MESSAGE)


def test_an_owner_written_error_message_cannot_mention_anyone() -> None:
    voice = common.Personality(error_message="@everyone <@123456789012345678> it broke")
    text = error_reply(voice, TzurotError("x"))
    assert "@\u200beveryone" in text
    assert "<@\u200b123456789012345678>" in text


def test_a_personality_the_gateway_does_not_find_is_gone_nothing_else_is() -> None:
    gone = NotFound("no personality named 'wren'", reason="PERSONALITY_NOT_FOUND")
    assert personality_gone(gone)
    assert not personality_gone(NotFound("no model 'x'", reason="MODEL_NOT_FOUND"))
    assert not personality_gone(FailedPrecondition("no key", reason="NO_API_KEY"))


def test_a_refusal_the_user_can_act_on_is_told_in_its_words() -> None:
    """A provider's content filter, an answer still under way: the gateway's and inference's
    own words (never the provider's), not "something went wrong on our side"."""
    err = FailedPrecondition(
        "openrouter refused to answer: its content filter blocked this conversation",
        reason="CONTENT_FILTERED",
        metadata={"provider": "openrouter"},
    )
    assert reason_text(err) == err.message
