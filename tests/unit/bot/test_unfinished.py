"""What a dead bot's half-posted answer becomes when the gateway could not produce it again."""

from tzurot.bot.unfinished import failure_notice
from tzurot.v1 import common_pb2 as common


def test_the_failure_notice_speaks_in_the_personality_voice_and_says_what_to_do() -> None:
    lilith = common.Personality(error_message="*Lilith's candle gutters.* @everyone")
    notice = failure_notice(lilith, "PROVIDER_UNAVAILABLE")
    voice, why = notice.split("\n")
    assert voice == "*Lilith's candle gutters.* @\u200beveryone"  # shown, never a ping
    assert why == (
        "-# This answer was cut off when the bot restarted (PROVIDER_UNAVAILABLE); try again."
    )


def test_without_an_error_message_or_reason() -> None:
    notice = failure_notice(common.Personality(), "")
    assert notice == (
        "I couldn't answer that.\n-# This answer was cut off when the bot restarted; try again."
    )
