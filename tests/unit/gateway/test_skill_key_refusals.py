"""A wallet key a skill's service refused while the reply went on (inference's
PromptReport.refused_key_providers) is read by this gateway and marked inactive, as a refused
answer's key is; a key the answer itself was then accepted with is marked used instead."""

from __future__ import annotations

from tzurot.gateway import convert
from tzurot.gateway.domain import PromptReport, ReplyFinished, Usage
from tzurot.gateway.service import user_keys_refused, user_keys_used
from tzurot.inference import convert as inference_convert
from tzurot.inference import domain as i
from tzurot.v1 import inference_pb2 as inf


def finished(report: PromptReport | None, provider: str = "openrouter") -> ReplyFinished:
    return ReplyFinished(
        content="Answered.",
        usage=Usage(provider, "m/one", 10, 2),
        finish_reason="stop",
        report=report,
    )


def test_the_refused_keys_are_read_from_the_report() -> None:
    wire = inf.GenerateReplyResponse(
        finished=inf.ReplyFinished(
            content="Answered.",
            report=inf.PromptReport(
                key_source="user", user_key_providers=["openai"], refused_key_providers=["brave"]
            ),
        )
    )
    read = convert.reply_event(wire)
    assert isinstance(read, ReplyFinished)
    assert read.report is not None
    assert read.report.refused_key_providers == ("brave",)
    assert read.report.user_key_providers == ("openai",)


def test_the_refused_keys_cross_both_converters() -> None:
    sent = i.ReplyFinished(
        content="Answered.",
        provider="openrouter",
        model="m/one",
        usage=i.TokenUsage(10, 2),
        finish_reason="stop",
        report=i.PromptReport(
            prompt_tokens_estimate=50,
            history_turns=0,
            key_source="user",
            refused_key_providers=("brave", "openai"),
        ),
    )
    read = convert.reply_event(inference_convert.reply_event(sent))
    assert isinstance(read, ReplyFinished)
    assert user_keys_refused(read) == ["brave", "openai"]
    assert user_keys_used(read) == ["openrouter"]


def test_a_skills_refused_key_is_marked_refused_not_used() -> None:
    report = PromptReport(
        key_source="user", user_key_providers=("openai",), refused_key_providers=("brave",)
    )
    assert user_keys_refused(finished(report)) == ["brave"]
    assert user_keys_used(finished(report)) == ["openai", "openrouter"]


def test_the_answers_own_key_is_used_though_a_skill_refused_it() -> None:
    """The image model on the user's OpenRouter key refused (401), then the answer was
    accepted with that same key: it works, and is marked used, not inactive."""
    report = PromptReport(key_source="user", refused_key_providers=("openrouter",))
    assert user_keys_refused(finished(report)) == []
    assert user_keys_used(finished(report)) == ["openrouter"]
    on_system_key = PromptReport(key_source="system", refused_key_providers=("openrouter",))
    assert user_keys_refused(finished(on_system_key)) == ["openrouter"]


def test_no_report_and_an_older_inference_refuse_nothing() -> None:
    assert user_keys_refused(finished(None)) == []
    older = convert.reply_event(
        inf.GenerateReplyResponse(
            finished=inf.ReplyFinished(content="Hi.", report=inf.PromptReport(key_source="user"))
        )
    )
    assert isinstance(older, ReplyFinished)
    assert user_keys_refused(older) == []
