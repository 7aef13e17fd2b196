"""Estimated usage: inference's estimate of a broken-off round reaches the gateway as
estimated (an older inference's never is), and what the gateway estimates for a reply
cancelled mid-answer is what no report of inference carries yet: the prompts of the requests
it sent (PromptSent) as input, the rounds it reported billed (RoundsBilled), and the text
relayed, about four characters a token."""

from __future__ import annotations

from dataclasses import replace

from tzurot.gateway import convert as gateway_convert
from tzurot.gateway import domain as g
from tzurot.gateway.cancelled_usage import RelayedAnswer
from tzurot.inference import convert as inference_convert
from tzurot.inference.domain import (
    PaidCall,
    PromptReport,
    ReplyFinished,
    TokenUsage,
    UsageSpent,
)
from tzurot.inference.domain import PromptSent as PromptSentIn
from tzurot.inference.domain import RoundsBilled as RoundsBilledIn
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import inference_pb2 as inf

BROKEN = g.Usage("openrouter", "x/chat", 1800, 37, estimated=True)


def test_an_estimated_round_reaches_the_gateway_as_estimated() -> None:
    paid = PaidCall("", "openrouter", "x/chat", TokenUsage(1800, 37), estimated=True)
    wire = inference_convert.reply_event(UsageSpent((paid,), failed=True))
    assert wire.usage_spent.usage[0].estimated
    assert gateway_convert.reply_event(wire) == g.UsageSpent((BROKEN,), failed=True)


def test_a_finished_answer_s_estimated_usage_reaches_the_gateway_as_estimated() -> None:
    """An answer whose stream had no usage chunk: ReplyFinished.usage says it is estimated."""
    finished = ReplyFinished(
        content="Hi",
        provider="openrouter",
        model="x/chat",
        usage=TokenUsage(1800, 2, estimated=True),
        finish_reason="stop",
        report=PromptReport(prompt_tokens_estimate=1800, history_turns=0, key_source="user"),
    )
    wire = inference_convert.reply_event(finished)
    assert wire.finished.usage.estimated
    usage = gateway_convert.reply_event(wire).usage  # type: ignore[union-attr]  # ReplyFinished
    assert usage == g.Usage("openrouter", "x/chat", 1800, 2, estimated=True)
    counted = replace(finished, usage=TokenUsage(1800, 2))
    assert not gateway_convert.reply_event(inference_convert.reply_event(counted)).usage.estimated  # type: ignore[union-attr]  # ReplyFinished


def test_an_older_inference_s_usage_is_the_provider_s_count() -> None:
    old = inf.GenerateReplyResponse(
        usage_spent=inf.UsageSpent(
            usage=[common.Usage(provider="openrouter", model="x/chat", input_tokens=9)],
            failed=True,
        )
    )
    (usage,) = gateway_convert.reply_event(old).paid  # type: ignore[union-attr]  # a UsageSpent
    assert not usage.estimated


def test_nothing_relayed_is_no_estimate() -> None:
    assert RelayedAnswer().estimate("openrouter", "x/chat") is None


def test_the_estimate_is_the_text_relayed_four_characters_a_token() -> None:
    relayed = RelayedAnswer()
    relayed.relayed("The moon is ")
    relayed.relayed("full")
    assert relayed.estimate("openrouter", "x/chat") == g.Usage(
        "openrouter", "x/chat", 0, 4, estimated=True
    )
    relayed.relayed("!")
    assert relayed.estimate("openrouter", "x/chat") == g.Usage(
        "openrouter", "x/chat", 0, 5, estimated=True
    )


def test_inference_s_report_of_the_answer_s_calls_counts_what_came_before() -> None:
    relayed = RelayedAnswer()
    relayed.relayed("counted by inference")
    relayed.reported(g.UsageSpent((BROKEN,), failed=True))
    assert relayed.estimate("openrouter", "x/chat") is None
    relayed.relayed("then more")
    assert relayed.estimate("openrouter", "x/chat") == g.Usage(
        "openrouter", "x/chat", 0, 3, estimated=True
    )


def test_a_skill_s_paid_call_does_not_count_the_answer_s_text() -> None:
    relayed = RelayedAnswer()
    relayed.relayed("half an answer")
    image = g.Usage("openrouter", "x/draw", 10, 1290, images=1, request_type="image_generation")
    relayed.reported(g.UsageSpent((image,)))
    relayed.reported(g.UsageSpent((image,), failed=True))
    assert relayed.estimate("openrouter", "x/chat") == g.Usage(
        "openrouter", "x/chat", 0, 4, estimated=True
    )


PROMPT = g.PromptSent("openrouter", "x/chat", 1800)


def test_a_prompt_sent_is_the_estimate_s_input() -> None:
    """Cancelled while the provider answered: the prompt sent is input, the text relayed
    output; the row says it is an estimate."""
    relayed = RelayedAnswer()
    relayed.prompt_sent(PROMPT)
    relayed.relayed("The moon is full")
    assert relayed.estimate("openrouter", "x/chat") == g.Usage(
        "openrouter", "x/chat", 1800, 4, estimated=True
    )


def test_a_prompt_sent_counts_before_any_text_came() -> None:
    relayed = RelayedAnswer()
    relayed.prompt_sent(PROMPT)
    assert relayed.estimate("openrouter", "x/chat") == g.Usage(
        "openrouter", "x/chat", 1800, 0, estimated=True
    )


def test_each_round_s_prompt_counts_until_a_report_carries_it() -> None:
    relayed = RelayedAnswer()
    relayed.prompt_sent(PROMPT)
    relayed.prompt_sent(g.PromptSent("openrouter", "x/chat", 1900))  # sent again after silence
    assert relayed.estimate("openrouter", "x/chat") == g.Usage(
        "openrouter", "x/chat", 3700, 0, estimated=True
    )
    relayed.reported(g.UsageSpent((BROKEN,), failed=True))  # inference's estimate of the round
    assert relayed.estimate("openrouter", "x/chat") is None


def test_the_rounds_billed_replace_their_prompts_and_count_with_the_next_round() -> None:
    """Round 1 billed (the provider's count) while its skill runs: a cancel now records that
    count as it came; round 2's prompt and text add to it, estimated."""
    relayed = RelayedAnswer()
    relayed.prompt_sent(PROMPT)
    relayed.relayed("held text that came out")
    relayed.rounds_billed(g.RoundsBilled(g.Usage("openrouter", "x/chat", 1750, 12)))
    assert relayed.estimate("openrouter", "x/chat") == g.Usage("openrouter", "x/chat", 1750, 12)
    relayed.prompt_sent(g.PromptSent("openrouter", "x/chat", 2100))
    relayed.relayed("The moon")
    assert relayed.estimate("openrouter", "x/chat") == g.Usage(
        "openrouter", "x/chat", 3850, 14, estimated=True
    )


def test_a_broken_round_s_report_keeps_the_rounds_billed_the_failed_reply_s_does_not() -> None:
    relayed = RelayedAnswer()
    relayed.rounds_billed(g.RoundsBilled(g.Usage("openrouter", "x/chat", 1750, 12)))
    relayed.prompt_sent(g.PromptSent("openrouter", "x/chat", 2100))
    relayed.relayed("The moon")
    relayed.reported(g.UsageSpent((BROKEN,), failed=True))  # round 2's estimate only
    assert relayed.estimate("openrouter", "x/chat") == g.Usage("openrouter", "x/chat", 1750, 12)
    rounds = g.Usage("openrouter", "x/chat", 1750, 12)
    relayed.reported(g.UsageSpent((rounds,), failed=True, all_rounds=True))
    assert relayed.estimate("openrouter", "x/chat") is None


def test_an_estimated_round_billed_keeps_the_row_estimated() -> None:
    relayed = RelayedAnswer()
    relayed.rounds_billed(g.RoundsBilled(g.Usage("openrouter", "x/chat", 1750, 0, estimated=True)))
    assert relayed.estimate("openrouter", "x/chat") == g.Usage(
        "openrouter", "x/chat", 1750, 0, estimated=True
    )


def test_the_answer_s_progress_crosses_both_converters() -> None:
    sent = inference_convert.reply_event(PromptSentIn("openrouter", "x/chat", 1800))
    assert gateway_convert.known_reply_event(sent)
    assert gateway_convert.reply_event(sent) == PROMPT
    billed = inference_convert.reply_event(
        RoundsBilledIn("openrouter", "x/chat", TokenUsage(1750, 12, estimated=True))
    )
    assert gateway_convert.reply_event(billed) == g.RoundsBilled(
        g.Usage("openrouter", "x/chat", 1750, 12, estimated=True)
    )
    paid = PaidCall("", "openrouter", "x/chat", TokenUsage(1750, 12))
    wire = inference_convert.reply_event(UsageSpent((paid,), failed=True, all_rounds=True))
    assert gateway_convert.reply_event(wire) == g.UsageSpent(
        (g.Usage("openrouter", "x/chat", 1750, 12),), failed=True, all_rounds=True
    )


def test_an_event_this_gateway_does_not_know_is_skipped() -> None:
    """What a newer inference adds reaches an older gateway as an empty oneof: skipped."""
    unknown = inf.GenerateReplyResponse()
    unknown.ParseFromString(b"\x62\x00")  # field 12, an event added later
    assert not gateway_convert.known_reply_event(unknown)
