"""Files made by skills (generated images) against the fake provider: an image is drawn (and
paid for) only when the answer can carry it, every image drawn is delivered and counted, one
that cannot be used is counted all the same (each drawing a usage row of its own, UsageSpent,
under the image model), and an answer failing after a drawing still delivers it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from pydantic import SecretStr

from tzurot.inference.answering import AnswerSettings
from tzurot.inference.domain import IMAGE_GENERATION, UsageSpent
from tzurot.inference.llm import LlmClient
from tzurot.inference.params import parse_advanced_parameters
from tzurot.inference.prompt import ChatMessage
from tzurot.inference.providers import Provider, ProviderRegistry
from tzurot.inference.skills.base import Skill, SkillContext, SkillOutput
from tzurot.inference.skills.egress import EgressPolicy, SafeFetcher
from tzurot.inference.skills.files import ANSWER_FILE_BYTES, MIB
from tzurot.inference.skills.generate_image import GenerateImageSkill, ImageSettings
from tzurot.inference.skills.loop import LoopResult, LoopSettings, LoopTarget, ToolLoop
from tzurot.inference.skills.registry import ToolSupport
from tzurot.inference.tokens import TokenCounter
from tzurot.testing.fake_provider import FakeProvider
from tzurot.testing.fake_tools import ToolCallSpec

pytestmark = pytest.mark.contract

KEY = "sk-filesZq7Wm3Xv9Rt2"


@dataclass
class Drawing:
    fake: FakeProvider
    llm: LlmClient
    provider: Provider
    spent: list[UsageSpent] = field(default_factory=list)
    """What the loop reported paid (UsageSpent), in order."""


@pytest.fixture
async def drawing() -> AsyncIterator[Drawing]:
    async with FakeProvider(valid_keys={KEY}, models=("fake/echo", "fake/draw")) as fake:
        fake.image_models.add("fake/draw")
        llm = LlmClient(timeout_seconds=10.0)
        try:
            yield Drawing(fake, llm, ProviderRegistry({"fakeai": fake.base_url}).get("fakeai"))
        finally:
            await llm.aclose()


class Noop:
    """A skill that makes no file (it stays on offer when the answer is full)."""

    name = "noop"
    description = "Does nothing."
    parameters: Mapping[str, Any] = {"type": "object", "properties": {}}
    stealth = False
    auto_memorize = False
    timeout = 5.0
    min_seconds = 0.0

    async def run(self, args: Mapping[str, Any], ctx: SkillContext) -> SkillOutput:
        return SkillOutput(text="done")


def painter(d: Drawing, max_bytes: int = 5 * MIB) -> GenerateImageSkill:
    fetcher = SafeFetcher(EgressPolicy(allow=frozenset(), timeout=3.0, max_bytes=MIB))
    settings = ImageSettings(provider="fakeai", model="fake/draw", max_bytes=max_bytes)
    return GenerateImageSkill(d.llm, settings, fetcher)


async def run_loop(
    d: Drawing, skills: list[Skill], settings: LoopSettings | None = None
) -> LoopResult:
    async def key_for(name: str, model: str) -> tuple[Provider, SecretStr]:
        return d.provider, SecretStr(KEY)

    loop = ToolLoop(
        skills=skills,
        ctx=SkillContext(user_id="u-1", personality_id="p-1", provider_key=key_for),
        settings=settings or LoopSettings(),
        support=ToolSupport(),
        counter=TokenCounter("fake/echo"),
    )
    target = LoopTarget(
        llm=d.llm,
        provider=d.provider,
        api_key=SecretStr(KEY),
        model="fake/echo",
        params=parse_advanced_parameters(None),
        name="Lilith",
        recent=(),
        rules=(),
        settings=AnswerSettings(retry_backoff=0.0),
    )
    messages: list[ChatMessage] = [{"role": "user", "content": "Ann: draw me six moons"}]
    *events, result = [event async for event in loop.run(target, messages)]
    assert isinstance(result, LoopResult)
    d.spent.extend(e for e in events if isinstance(e, UsageSpent))
    return result


def images_paid(d: Drawing) -> int:
    """Images reported paid, each under the image model (never in the answer's usage)."""
    calls = [call for spent in d.spent for call in spent.paid]
    assert all((c.request_type, c.model) == (IMAGE_GENERATION, "fake/draw") for c in calls)
    return sum(c.usage.images for c in calls)


def drawn(d: Drawing) -> int:
    """Image calls the provider answered (each one paid for)."""
    return len([r for r in d.fake.chat_requests() if r.body.get("modalities")])


def draw(n: int) -> ToolCallSpec:
    return ToolCallSpec("generate_image", {"prompt": f"moon number {n}"})


async def test_parallel_drawings_start_only_as_many_as_the_answer_can_carry(
    drawing: Drawing,
) -> None:
    """Six at once, room for three (5 MiB each within the answer's 15 MiB): three are drawn,
    three refused unstarted, and every image drawn is a file of the answer and counted."""
    assert 3 * 5 * MIB <= ANSWER_FILE_BYTES < 4 * 5 * MIB
    drawing.fake.enqueue_tool_calls(*(draw(n) for n in range(6)))
    drawing.fake.enqueue("Here are your moons.")
    result = await run_loop(drawing, [painter(drawing)], LoopSettings(max_files=4))
    assert drawn(drawing) == len(result.files) == images_paid(drawing) == 3
    assert result.usage.images == 0
    refused = [s for s in result.steps if not s.ok]
    assert len(refused) == 3
    assert all("cannot carry more files" in s.summary for s in refused)
    told = [m for m in drawing.fake.chat_requests()[-1].body["messages"] if m["role"] == "tool"]
    assert sum("It is attached to your answer." in m["content"] for m in told) == 3


async def test_the_file_count_limits_drawing_too(drawing: Drawing) -> None:
    drawing.fake.enqueue_tool_calls(*(draw(n) for n in range(6)))
    drawing.fake.enqueue("Here are your moons.")
    small = painter(drawing, max_bytes=MIB)
    result = await run_loop(drawing, [small], LoopSettings(max_files=4))
    assert drawn(drawing) == len(result.files) == images_paid(drawing) == 4


async def test_a_full_answer_no_longer_offers_drawing(drawing: Drawing) -> None:
    drawing.fake.enqueue_tool_calls(draw(1))
    drawing.fake.enqueue("One moon.")
    await run_loop(drawing, [painter(drawing), Noop()], LoopSettings(max_files=1))
    first, second = (r.body for r in drawing.fake.chat_requests() if not r.body.get("modalities"))
    assert [t["function"]["name"] for t in first["tools"]] == ["generate_image", "noop"]
    assert [t["function"]["name"] for t in second["tools"]] == ["noop"]
    assert second["tool_choice"] == "auto"


async def test_an_image_too_large_to_post_is_counted_and_not_called_attached(
    drawing: Drawing,
) -> None:
    drawing.fake.image_bytes = 2 * MIB
    drawing.fake.enqueue_tool_calls(draw(1))
    drawing.fake.enqueue("It did not work out.")
    result = await run_loop(drawing, [painter(drawing, max_bytes=MIB)])
    assert result.files == ()
    assert images_paid(drawing) == 1  # paid for all the same
    (step,) = result.steps
    assert not step.ok
    assert "larger than 1 MiB; nothing to attach" in step.summary


async def test_an_answer_failing_after_a_drawing_still_delivers_it(drawing: Drawing) -> None:
    """An image drawn, then the model answers nothing twice (EMPTY_ANSWER): the answer is a
    short note carrying the image, and the image is counted."""
    drawing.fake.enqueue_tool_calls(draw(1))
    drawing.fake.enqueue("")
    drawing.fake.enqueue("")
    result = await run_loop(drawing, [painter(drawing)])
    (image,) = result.files
    assert image.data.startswith(b"\x89PNG")
    assert images_paid(drawing) == 1
    assert result.answer.content.startswith("*The answer could not be finished (")
    assert result.answer.content.endswith("; here is what was made.*")
    assert result.answer.finish_reason == "error"
