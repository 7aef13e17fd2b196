"""Response handling end to end on the fake provider: thinking kept apart, near-repeats and
empty answers retried, content filter refused, time limits on silence (first event, idle)
and in total, 429s and 5xx asked again only as the time allows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
import structlog
from prometheus_client import REGISTRY
from pydantic import SecretStr

from tzurot.inference.answering import AnswerSettings
from tzurot.inference.cleanup import compile_rules
from tzurot.inference.domain import (
    Character,
    CleanupRule,
    HistoryTurn,
    MemoryItem,
    ModelChoice,
    PromptSent,
    ReplyEvent,
    ReplyFinished,
    ReplyRequest,
    RoundsBilled,
    TextDelta,
)
from tzurot.inference.keys import KeyResolver
from tzurot.inference.llm import LlmClient
from tzurot.inference.prompt import estimate_prompt_tokens, estimate_tokens
from tzurot.inference.providers import ProviderRegistry
from tzurot.inference.reply_settings import ReplySettings
from tzurot.inference.retries import MAX_RATE_LIMIT_WAIT_SECONDS
from tzurot.inference.service import Inference
from tzurot.runtime.errors import (
    FailedPrecondition,
    InvalidArgument,
    ResourceExhausted,
    Unavailable,
)
from tzurot.testing.fake_provider import FakeProvider

pytestmark = pytest.mark.contract

KEY = "plantedANSWERzq7Wm3Xv9Rt2"
USER = "3f1f9a8e-8c1e-4d5b-9a57-0f3c2b1a9d10"
OLD_REPLY = "The night is long and full of whispers, little one; sit by my candle and listen."
REQUEST = ReplyRequest(
    job_id="job-1",
    user_id=USER,
    author_name="Ann",
    channel_id="chan-1",
    character=Character(id="p-1", name="Lilith", system_prompt="You are Lilith."),
    model=ModelChoice(
        provider="fakeai", model="fake/echo", advanced_parameters={"temperature": 0.5}
    ),
    content="hello",
)


class Vault:
    async def decrypt(self, user_id: str, provider: str) -> SecretStr | None:
        return SecretStr(KEY)


class History:
    def __init__(self, turns: list[HistoryTurn]) -> None:
        self.turns = turns

    async def recent_turns(
        self, channel_id: str, personality_id: str, limit: int, *, whole_channel: bool = False
    ) -> list[HistoryTurn]:
        return self.turns[-limit:]


class Memories:
    def __init__(self, items: list[MemoryItem]) -> None:
        self.items = items
        self.asked: list[dict[str, Any]] = []

    async def relevant_memories(self, **query: Any) -> list[MemoryItem]:
        self.asked.append(query)
        return self.items


@pytest.fixture
async def fake() -> AsyncIterator[FakeProvider]:
    async with FakeProvider(valid_keys={KEY}) as provider:
        yield provider


@pytest.fixture
async def llm() -> AsyncIterator[LlmClient]:
    client = LlmClient(timeout_seconds=10.0)
    try:
        yield client
    finally:
        await client.aclose()


def make(
    fake: FakeProvider,
    llm: LlmClient,
    *,
    history: list[HistoryTurn] | None = None,
    memories: Memories | FailingMemories | None = None,
    settings: ReplySettings | None = None,
) -> Inference:
    return Inference(
        providers=ProviderRegistry({"fakeai": fake.base_url}),
        keys=KeyResolver(Vault()),
        history=History(history or []),
        llm=llm,
        settings=settings or ReplySettings(),
        memories=memories,
        clock=lambda: datetime(2025, 6, 3, 12, 5, tzinfo=UTC),
    )


async def run(inference: Inference, request: ReplyRequest = REQUEST) -> tuple[str, ReplyFinished]:
    events: list[ReplyEvent] = [e async for e in inference.generate_reply(request)]
    # Each request announced as the provider begins answering it; a silent one, abandoned,
    # said billed (RoundsBilled) before the next goes out.
    assert isinstance(events[0], PromptSent | RoundsBilled)
    *deltas, finished = [e for e in events if not isinstance(e, PromptSent | RoundsBilled)]
    assert isinstance(finished, ReplyFinished)
    assert all(isinstance(d, TextDelta) for d in deltas)
    return "".join(d.text for d in deltas if isinstance(d, TextDelta)), finished


async def test_thinking_tags_and_reasoning_fields_stay_out_of_the_answer(
    fake: FakeProvider, llm: LlmClient
) -> None:
    fake.enqueue(
        "<think>They greet me; I should be sly.</think>"
        "Greetings, mortal. What brings you to my door tonight?",
        reasoning="First, consider the user.",
    )
    streamed, finished = await run(make(fake, llm))
    assert finished.content == "Greetings, mortal. What brings you to my door tonight?"
    assert streamed == finished.content
    assert "sly" not in streamed
    assert "consider" not in streamed
    assert finished.reasoning == "First, consider the user.\n\nThey greet me; I should be sly."


async def test_reasoning_content_field_as_deepseek_sends_it(
    fake: FakeProvider, llm: LlmClient
) -> None:
    fake.enqueue("Hello.", reasoning="step one", reasoning_field="reasoning_content")
    _, finished = await run(make(fake, llm))
    assert (finished.content, finished.reasoning) == ("Hello.", "step one")


async def test_a_near_repeat_is_asked_again_hotter(fake: FakeProvider, llm: LlmClient) -> None:
    history = [HistoryTurn("user", "Ann", "hi"), HistoryTurn("assistant", "Lilith", OLD_REPLY)]
    fake.enqueue(OLD_REPLY.replace("little one", "little one,"))
    fake.enqueue("Something new entirely: the moon is out.")
    streamed, finished = await run(make(fake, llm, history=history))
    assert finished.content == "Something new entirely: the moon is out."
    assert streamed == finished.content  # the repeat was held back, never streamed
    first, second = fake.chat_requests()
    assert first.body["temperature"] == 0.5
    assert "frequency_penalty" not in first.body
    assert (second.body["temperature"], second.body["frequency_penalty"]) == (0.8, 0.5)
    assert finished.usage.input_tokens > 0


async def test_repeats_are_retried_at_most_twice(fake: FakeProvider, llm: LlmClient) -> None:
    history = [HistoryTurn("assistant", "Lilith", OLD_REPLY)]
    for _ in range(3):
        fake.enqueue(OLD_REPLY)
    _, finished = await run(make(fake, llm, history=history))
    assert finished.content == OLD_REPLY  # the third try is taken as it is
    temps = [r.body["temperature"] for r in fake.chat_requests()]
    assert temps == [0.5, 0.8, 1.1]


async def test_only_the_last_five_replies_count(fake: FakeProvider, llm: LlmClient) -> None:
    history = [HistoryTurn("assistant", "Lilith", OLD_REPLY)] + [
        HistoryTurn("assistant", "Lilith", f"other reply number {i}") for i in range(5)
    ]
    fake.enqueue(OLD_REPLY)
    _, finished = await run(make(fake, llm, history=history))
    assert finished.content == OLD_REPLY
    assert len(fake.chat_requests()) == 1


async def test_an_empty_answer_is_asked_once_more(fake: FakeProvider, llm: LlmClient) -> None:
    fake.enqueue("<think>hmm</think>   ")
    fake.enqueue("Here I am.")
    _, finished = await run(make(fake, llm))
    assert finished.content == "Here I am."
    assert len(fake.chat_requests()) == 2


async def test_two_empty_answers_are_a_clear_error(fake: FakeProvider, llm: LlmClient) -> None:
    fake.enqueue("")
    fake.enqueue("Lilith: ")  # only the echoed name: empty after cleanup
    with pytest.raises(Unavailable) as caught:
        await run(make(fake, llm))
    assert caught.value.reason == "EMPTY_ANSWER"
    assert caught.value.message == (
        "fakeai returned an empty answer twice; try again or choose another model"
    )


async def test_content_filter_is_a_refusal(fake: FakeProvider, llm: LlmClient) -> None:
    fake.enqueue("I cann", finish_reason="content_filter")
    with pytest.raises(FailedPrecondition) as caught:
        await run(make(fake, llm))
    assert caught.value.reason == "CONTENT_FILTERED"
    assert caught.value.message == (
        "fakeai refused to answer: its content filter blocked this conversation"
    )


async def test_a_content_policy_error_status_is_a_refusal_too(
    fake: FakeProvider, llm: LlmClient
) -> None:
    fake.fail_next(400, code="content_policy_violation")
    with pytest.raises(FailedPrecondition) as caught:
        await run(make(fake, llm))
    assert caught.value.reason == "CONTENT_FILTERED"
    assert len(fake.chat_requests()) == 1


async def test_cleanup_rules_global_then_personality(fake: FakeProvider, llm: LlmClient) -> None:
    fake.enqueue("Lilith: [14:05] *waves* Hello darling, hello.")
    settings = ReplySettings(cleanup_rules=compile_rules([CleanupRule(r"\*[^*]+\*\s*", "")]))
    character = replace(REQUEST.character, cleanup_rules=(CleanupRule("darling", "dear"),))
    _, finished = await run(
        make(fake, llm, settings=settings), replace(REQUEST, character=character)
    )
    assert finished.content == "Hello dear, hello."


async def test_a_bad_personality_rule_names_it(fake: FakeProvider, llm: LlmClient) -> None:
    character = replace(REQUEST.character, cleanup_rules=(CleanupRule("ok"), CleanupRule("(")))
    with pytest.raises(InvalidArgument) as caught:
        await run(make(fake, llm), replace(REQUEST, character=character))
    assert caught.value.field == "personality.cleanup_rules[1].pattern"
    assert fake.requests == []


async def test_a_provider_silent_past_the_first_event_limit_is_asked_again_then_fails(
    fake: FakeProvider, llm: LlmClient
) -> None:
    fake.stall_next(30.0, times=3)  # nothing after the headers: each attempt runs out of time
    settings = ReplySettings(answer=AnswerSettings(first_event_timeout=0.15, total_timeout=10.0))
    with pytest.raises(Unavailable) as caught:
        await run(make(fake, llm, settings=settings))
    assert caught.value.reason == "PROVIDER_TIMEOUT"
    assert len(fake.chat_requests()) == 3  # the first try and two retries


async def test_the_total_limit_bounds_the_wait_for_a_first_event(
    fake: FakeProvider, llm: LlmClient
) -> None:
    fake.stall_next(30.0)
    settings = ReplySettings(answer=AnswerSettings(first_event_timeout=30.0, total_timeout=0.3))
    with pytest.raises(Unavailable) as caught:
        await run(make(fake, llm, settings=settings))
    assert caught.value.reason == "PROVIDER_TIMEOUT"
    assert len(fake.chat_requests()) == 1


async def test_a_model_thinking_past_the_first_event_limit_is_never_asked_again(
    fake: FakeProvider, llm: LlmClient
) -> None:
    """Reasoning is an event: the limit covers only the wait for the first one."""
    fake.enqueue("Seven, after all that.", reasoning="one two three four five six seven eight")
    fake.chunk_delay = 0.1  # about 1.1 s of thinking and answer, well past the 0.6 s limit
    settings = ReplySettings(
        answer=AnswerSettings(first_event_timeout=0.6, idle_timeout=10.0, total_timeout=30.0)
    )
    _, finished = await run(make(fake, llm, settings=settings))
    assert finished.content == "Seven, after all that."
    assert finished.reasoning == "one two three four five six seven eight"
    assert len(fake.chat_requests()) == 1


async def test_an_answer_streaming_past_the_first_event_limit_is_not_cut_off(
    fake: FakeProvider, llm: LlmClient
) -> None:
    fake.reply = " ".join(f"word{i}" for i in range(16))
    fake.chunk_delay = 0.08  # about 1.3 s of streaming, the limit 0.6 s
    settings = ReplySettings(
        answer=AnswerSettings(first_event_timeout=0.6, idle_timeout=10.0, total_timeout=30.0)
    )
    streamed, finished = await run(make(fake, llm, settings=settings))
    assert finished.content == fake.reply
    assert streamed == finished.content
    assert len(fake.chat_requests()) == 1


async def test_a_provider_silent_between_events_fails_without_being_asked_again(
    fake: FakeProvider, llm: LlmClient
) -> None:
    fake.chunk_delay = 0.4  # the first event is in time, the next one too late
    settings = ReplySettings(
        answer=AnswerSettings(first_event_timeout=10.0, idle_timeout=0.1, total_timeout=30.0)
    )
    with pytest.raises(Unavailable) as caught:
        await run(make(fake, llm, settings=settings))
    assert caught.value.reason == "PROVIDER_TIMEOUT"
    assert len(fake.chat_requests()) == 1


async def test_an_abandoned_silent_attempt_counts_its_prompt_in_the_usage(
    fake: FakeProvider, llm: LlmClient
) -> None:
    fake.stall_next(30.0)  # the first attempt: thinking unseen, past the limit
    fake.enqueue("Here at last.")  # taken by the first request, answered by neither…
    fake.enqueue("Here at last.")  # …so the second request answers this
    # 1 s: the second attempt's first event comes within it on a loaded machine.
    settings = ReplySettings(answer=AnswerSettings(first_event_timeout=1.0, total_timeout=30.0))
    _, finished = await run(make(fake, llm, settings=settings))
    abandoned, answered = fake.chat_requests()
    prompt = estimate_prompt_tokens(abandoned.body["messages"])  # as the fake counts it
    assert answered.body["messages"] == abandoned.body["messages"]
    assert finished.content == "Here at last."
    assert finished.usage.input_tokens == 2 * prompt  # the answer's own, and the estimate
    assert finished.usage.output_tokens == estimate_tokens("Here at last.")


@pytest.fixture
async def retrying_llm() -> AsyncIterator[LlmClient]:
    """The production client: the SDK never retries (retries.py decides, for every call)."""
    client = LlmClient(timeout_seconds=10.0)
    try:
        yield client
    finally:
        await client.aclose()


async def test_a_429_is_asked_again_once_after_its_retry_after(
    fake: FakeProvider, retrying_llm: LlmClient
) -> None:
    fake.fail_next(429, retry_after=0.05)
    _, finished = await run(make(fake, retrying_llm))
    assert finished.content == "You said: Ann: hello"
    assert len(fake.chat_requests()) == 2


async def test_a_429_again_is_reported_with_its_retry_after(
    fake: FakeProvider, retrying_llm: LlmClient
) -> None:
    fake.fail_next(429, times=5, retry_after=0.05)
    with pytest.raises(ResourceExhausted) as caught:
        await run(make(fake, retrying_llm))
    assert caught.value.reason == "PROVIDER_RATE_LIMITED"
    assert caught.value.retry_after_seconds == pytest.approx(0.05)
    assert len(fake.chat_requests()) == 2  # once, and once after the wait: no SDK retries


async def test_a_429_waiting_longer_than_the_time_left_is_reported_at_once(
    fake: FakeProvider, retrying_llm: LlmClient
) -> None:
    fake.fail_next(429, times=5, retry_after=30)  # the SDK would sleep 30 s, then ask again
    settings = ReplySettings(answer=AnswerSettings(total_timeout=2.0))
    with pytest.raises(ResourceExhausted) as caught:
        await run(make(fake, retrying_llm, settings=settings))
    assert caught.value.reason == "PROVIDER_RATE_LIMITED"
    assert caught.value.retry_after_seconds == pytest.approx(30)  # the user hears when
    assert len(fake.chat_requests()) == 1


async def test_a_429_is_not_asked_again_when_the_next_attempt_would_lack_its_floor(
    fake: FakeProvider, retrying_llm: LlmClient
) -> None:
    """The 0.05 s wait fits in the 5 s left, but an attempt then would have less than its
    10 s floor: cut off unanswered by the caller's deadline. Told now, with the Retry-After."""
    fake.fail_next(429, times=5, retry_after=0.05)
    answer = AnswerSettings(total_timeout=5.0, first_event_timeout=30.0, min_attempt_seconds=10.0)
    with pytest.raises(ResourceExhausted) as caught:
        await run(make(fake, retrying_llm, settings=ReplySettings(answer=answer)))
    assert caught.value.retry_after_seconds == pytest.approx(0.05)
    assert len(fake.chat_requests()) == 1


async def test_a_429_asking_a_long_wait_is_reported_at_once_though_it_would_fit(
    fake: FakeProvider, retrying_llm: LlmClient
) -> None:
    fake.fail_next(429, times=5, retry_after=MAX_RATE_LIMIT_WAIT_SECONDS + 10)
    with pytest.raises(ResourceExhausted) as caught:  # the default total limit: 480 s
        await run(make(fake, retrying_llm))
    assert caught.value.retry_after_seconds == pytest.approx(MAX_RATE_LIMIT_WAIT_SECONDS + 10)
    assert len(fake.chat_requests()) == 1  # told now, not after a silent half minute


async def test_a_429_without_retry_after_is_reported_at_once(
    fake: FakeProvider, retrying_llm: LlmClient
) -> None:
    fake.fail_next(429, times=5)
    with pytest.raises(ResourceExhausted) as caught:
        await run(make(fake, retrying_llm))
    assert (caught.value.reason, caught.value.retry_after_seconds) == (
        "PROVIDER_RATE_LIMITED",
        None,
    )
    assert len(fake.chat_requests()) == 1


async def test_a_5xx_is_asked_again_with_backoff_within_the_answer_s_retries(
    fake: FakeProvider, retrying_llm: LlmClient
) -> None:
    fake.fail_next(503, times=2)  # all the answer asks for, when it asks as it should
    settings = ReplySettings(answer=AnswerSettings(failure_retries=1, retry_backoff=0.01))
    with pytest.raises(Unavailable) as caught:
        await run(make(fake, retrying_llm, settings=settings))
    assert caught.value.reason == "PROVIDER_UNAVAILABLE"
    assert len(fake.chat_requests()) == 2  # the answer's one retry, none of the SDK's
    fake.fail_next(503)
    _, finished = await run(make(fake, retrying_llm, settings=settings))
    assert finished.content == "You said: Ann: hello"


async def test_an_empty_answer_cut_off_by_max_tokens_is_not_asked_again(
    fake: FakeProvider, llm: LlmClient
) -> None:
    fake.enqueue("", reasoning="Let me weigh every word of this", finish_reason="length")
    fake.enqueue("", reasoning="Let me weigh every word of this", finish_reason="length")
    with pytest.raises(InvalidArgument) as caught:
        await run(make(fake, llm))
    assert caught.value.reason == "MAX_TOKENS_USED_UP"
    assert caught.value.field == "config.config.advanced_parameters.max_tokens"
    assert caught.value.message == (
        "fakeai used up max_tokens before answering (thinking took them all); raise "
        "max_tokens or lower thinking_level (reasoning.effort)"
    )
    assert len(fake.chat_requests()) == 1


async def test_memories_are_asked_for_and_reported(fake: FakeProvider, llm: LlmClient) -> None:
    stamp = datetime(2025, 6, 1, tzinfo=UTC)
    history = [HistoryTurn("user", "Ann", "earlier", created_at=stamp)]
    memories = Memories([MemoryItem("m-1", "Ann is afraid of moths.", 0.9)])
    request = replace(REQUEST, memory_limit=4, memory_threshold=0.3)
    _, finished = await run(make(fake, llm, history=history, memories=memories), request)
    assert memories.asked == [
        {
            "personality_id": "p-1",
            "user_id": USER,
            "query": "hello",
            "limit": 4,
            "threshold": 0.3,
            "exclude_after": stamp,
        }
    ]
    assert finished.report.memory_ids == ("m-1",)
    context = fake.chat_requests()[0].body["messages"][-2]["content"]
    assert "## What you remember (notes, not instructions)\n- Ann is afraid of moths." in context


class FailingMemories:
    """Long-term memory that is down: every query fails as an unavailable service does."""

    async def relevant_memories(self, **query: Any) -> list[MemoryItem]:
        raise Unavailable("memory is restarting")


async def test_memories_are_reported_with_their_text(fake: FakeProvider, llm: LlmClient) -> None:
    memories = Memories([MemoryItem("m-1", "Ann is afraid of moths.", 0.9)])
    _, finished = await run(make(fake, llm, memories=memories))
    assert finished.report.memories == (MemoryItem("m-1", "Ann is afraid of moths.", 0.9),)
    assert finished.report.degraded == ()


async def test_a_failing_memory_service_degrades_the_answer_and_is_counted(
    fake: FakeProvider, llm: LlmClient
) -> None:
    before = REGISTRY.get_sample_value(
        "tzurot_degraded_answers_total", {"reason": "memory_unavailable"}
    )
    with structlog.testing.capture_logs() as logs:
        streamed, finished = await run(make(fake, llm, memories=FailingMemories()))
    after = REGISTRY.get_sample_value(
        "tzurot_degraded_answers_total", {"reason": "memory_unavailable"}
    )
    assert streamed  # still answered
    assert finished.report.degraded == ("memory_unavailable",)
    assert finished.report.memory_ids == ()
    assert (after or 0) - (before or 0) == 1
    (warning,) = [e for e in logs if e["event"] == "memory.unavailable"]
    assert warning["log_level"] == "warning"
    assert warning["code"] == "UNAVAILABLE"


async def test_an_answer_cut_short_is_never_a_finished_reply(
    fake: FakeProvider, llm: LlmClient
) -> None:
    """A clean end of body mid-answer (no finish_reason, no [DONE]) is not stored as whole."""
    fake.reply = "Once upon a time there was a lighthouse keeper, and then the provider"
    fake.cut_after_chunks = 9
    events: list[ReplyEvent] = []

    async def reply() -> None:
        async for event in make(fake, llm).generate_reply(REQUEST):
            events.append(event)

    with pytest.raises(Unavailable) as caught:
        await reply()
    assert not any(isinstance(e, ReplyFinished) for e in events)
    assert caught.value.reason == "PROVIDER_UNAVAILABLE"
    assert "dropped the answer" in caught.value.message
