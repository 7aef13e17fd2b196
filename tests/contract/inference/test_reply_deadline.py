"""A reply ends a grace before its caller's deadline (`ReplySettings.report_grace_seconds`),
so that its error, with the failed usage and the wallet keys refused on the way, reaches the
caller before the caller's own cut loses it: an answer still streaming then is cut off
(DEADLINE_EXCEEDED ANSWER_TIME_LIMIT, after its estimate), and a skill is never started to
outlast it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
from pydantic import SecretStr

from tzurot.inference.answering import AnswerSettings
from tzurot.inference.domain import (
    Character,
    ModelChoice,
    ReplyEvent,
    ReplyRequest,
    TextDelta,
    UsageSpent,
)
from tzurot.inference.keys import KeyResolver
from tzurot.inference.llm import LlmClient
from tzurot.inference.params import parse_advanced_parameters
from tzurot.inference.providers import ProviderRegistry
from tzurot.inference.reply_settings import ReplySettings
from tzurot.inference.service import Inference
from tzurot.inference.skills.base import SkillContext, SkillOutput
from tzurot.inference.skills.loop import LoopResult, LoopSettings, LoopTarget, ToolLoop
from tzurot.inference.skills.registry import ToolSupport
from tzurot.inference.tokens import TokenCounter
from tzurot.runtime.errors import DeadlineExceeded
from tzurot.testing.fake_provider import FakeProvider
from tzurot.testing.fake_tools import ToolCallSpec

pytestmark = pytest.mark.contract

KEY = "plantedDEADLINEzq7Wm3Xv9Rt2"
REQUEST = ReplyRequest(
    job_id="job-1",
    user_id="3f1f9a8e-8c1e-4d5b-9a57-0f3c2b1a9d10",
    author_name="Ann",
    channel_id="chan-1",
    character=Character(id="p-1", name="Lilith", system_prompt="You are Lilith."),
    model=ModelChoice(provider="fakeai", model="fake/echo"),
    content="hello",
)


class Vault:
    async def decrypt(self, user_id: str, provider: str) -> SecretStr | None:
        return SecretStr(KEY)


class NoHistory:
    async def recent_turns(self, *_: object, **__: object) -> list[object]:
        return []


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


def make(fake: FakeProvider, llm: LlmClient, grace: float) -> Inference:
    return Inference(
        providers=ProviderRegistry({"fakeai": fake.base_url}),
        keys=KeyResolver(Vault()),
        history=NoHistory(),  # type: ignore[arg-type]  # no turns: only the call shape matters
        llm=llm,
        settings=ReplySettings(
            answer=AnswerSettings(min_attempt_seconds=0.1),
            report_grace_seconds=grace,
            stream_interval_seconds=0,
        ),
    )


async def collect(events: AsyncIterator[ReplyEvent], into: list[ReplyEvent]) -> None:
    async for event in events:
        into.append(event)


async def test_an_answer_still_streaming_is_cut_a_grace_before_the_callers_deadline(
    fake: FakeProvider, llm: LlmClient
) -> None:
    fake.enqueue(" ".join(["moon"] * 120))
    fake.chunk_delay = 0.05  # 6 s of answer
    events: list[ReplyEvent] = []
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded) as cut:
        await collect(make(fake, llm, grace=1.0).generate_reply(REQUEST, time_limit=4.0), events)
    took = time.monotonic() - started
    assert 2.7 < took < 3.8  # at the caller's deadline less the grace, not at its deadline
    assert cut.value.reason == "ANSWER_TIME_LIMIT"
    assert "took too long" in cut.value.message
    assert any(isinstance(e, TextDelta) for e in events)  # it was answering
    spent = [e for e in events if isinstance(e, UsageSpent)]
    assert spent  # what it was billed goes out first
    assert all(s.failed for s in spent)
    assert KEY not in cut.value.message


async def test_without_a_caller_deadline_nothing_is_taken_off(
    fake: FakeProvider, llm: LlmClient
) -> None:
    fake.enqueue("Good evening.")
    events = [e async for e in make(fake, llm, grace=5.0).generate_reply(REQUEST)]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Good evening."


class SlowSearch:
    """A skill worth starting only with 10 s left (as web_research: a paid search)."""

    name = "slow_search"
    description = "Searches slowly."
    parameters: Mapping[str, Any] = {"type": "object", "properties": {}}
    stealth = False
    auto_memorize = False
    timeout = 30.0
    min_seconds = 10.0

    def __init__(self) -> None:
        self.runs = 0

    async def run(self, args: Mapping[str, Any], ctx: SkillContext) -> SkillOutput:
        self.runs += 1
        return SkillOutput(text="found nothing")


async def test_a_skill_is_not_started_past_the_replys_deadline(
    fake: FakeProvider, llm: LlmClient
) -> None:
    """The loop's own budget (60 s) has room, the reply's deadline (5 s away) has not: the
    call is refused unstarted, never run to be cut off with the reply's report unsent."""
    fake.enqueue_tool_calls(ToolCallSpec("slow_search", {}))
    fake.enqueue("Nothing, darling.")
    skill = SlowSearch()
    loop = ToolLoop(
        skills=[skill],
        ctx=SkillContext(user_id=REQUEST.user_id, personality_id="p-1"),
        settings=LoopSettings(time_budget=60.0),
        support=ToolSupport(),
        counter=TokenCounter("fake/echo"),
    )
    target = LoopTarget(
        llm=llm,
        provider=ProviderRegistry({"fakeai": fake.base_url}).get("fakeai"),
        api_key=SecretStr(KEY),
        model="fake/echo",
        params=parse_advanced_parameters(None),
        name="Lilith",
        recent=(),
        rules=(),
        settings=AnswerSettings(min_attempt_seconds=0.1),
        deadline=time.monotonic() + 5.0,
    )
    events = [e async for e in loop.run(target, [{"role": "user", "content": "Ann: search"}])]
    result = events[-1]
    assert isinstance(result, LoopResult)
    assert skill.runs == 0
    (step,) = result.steps
    assert "too little time left to start slow_search" in step.summary
