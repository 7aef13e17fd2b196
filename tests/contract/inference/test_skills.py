"""The tool loop and the built-in skills against the fake provider and loopback pages:
the real `openai` client streams tool calls, skills run, results go back, the loop stays
within its bounds, models without tools get none."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import httpx2 as httpx
import pytest
from pydantic import SecretStr

from tzurot.inference.answering import AnswerSettings
from tzurot.inference.domain import (
    IMAGE_GENERATION,
    WEB_SEARCH,
    Character,
    MemoryItem,
    ModelChoice,
    PaidCall,
    ReplyEvent,
    ReplyFinished,
    ReplyRequest,
    SkillActivity,
    TextDelta,
    TokenUsage,
    UsageSpent,
)
from tzurot.inference.keys import KeyResolver
from tzurot.inference.llm import LlmClient
from tzurot.inference.params import parse_advanced_parameters
from tzurot.inference.prompt import ChatMessage
from tzurot.inference.providers import ProviderRegistry
from tzurot.inference.reply_settings import ReplySettings, SkillRuntime
from tzurot.inference.retries import MAX_RATE_LIMIT_WAIT_SECONDS
from tzurot.inference.service import Inference
from tzurot.inference.skills.base import SkillContext, SkillOutput
from tzurot.inference.skills.egress import EgressPolicy, SafeFetcher
from tzurot.inference.skills.generate_image import GenerateImageSkill, ImageSettings
from tzurot.inference.skills.loop import LoopResult, LoopSettings, LoopTarget, ToolLoop
from tzurot.inference.skills.memory_search import MemorySearchSkill
from tzurot.inference.skills.read_url import ReadUrlSkill
from tzurot.inference.skills.registry import REFUSAL_MEMORY_SECONDS, SkillRegistry, ToolSupport
from tzurot.inference.skills.search import BraveSearch, SearxngSearch
from tzurot.inference.skills.web_research import WebResearchSkill
from tzurot.inference.tokens import TokenCounter
from tzurot.runtime.errors import InvalidArgument, ResourceExhausted, TzurotError
from tzurot.testing.fake_provider import FakeProvider, ScriptedReply
from tzurot.testing.fake_tools import ToolCallSpec
from tzurot.testing.fake_web import FakeBrave, FakeSearxng, LocalPages

pytestmark = pytest.mark.contract

KEY = "sk-skillsZq7Wm3Xv9Rt2"
BRAVE_KEY = "BSAfakeBraveKey123"
USER = "3f1f9a8e-8c1e-4d5b-9a57-0f3c2b1a9d10"
REQUEST = ReplyRequest(
    job_id="job-1",
    user_id=USER,
    author_name="Ann",
    channel_id="chan-1",
    character=Character(id="p-1", name="Lilith", system_prompt="You are Lilith."),
    model=ModelChoice(provider="fakeai", model="fake/echo"),
    content="What happened on the moon?",
    skills=("read_url", "memory_search", "web_research", "generate_image"),
)


class Vault:
    def __init__(self) -> None:
        self.keys = {"fakeai": KEY, "openrouter": KEY, "brave": BRAVE_KEY}

    async def decrypt(self, user_id: str, provider: str) -> SecretStr | None:
        key = self.keys.get(provider)
        return SecretStr(key) if key else None


class History:
    async def recent_turns(
        self, channel_id: str, personality_id: str, limit: int, *, whole_channel: bool = False
    ) -> list[Any]:
        return []


@dataclass
class Memories:
    items: list[MemoryItem] = field(default_factory=list)
    asked: list[dict[str, Any]] = field(default_factory=list)
    stored: list[tuple[str, str, tuple[str, ...]]] = field(default_factory=list)
    on_behalf_of: list[str] = field(default_factory=list)

    async def relevant_memories(self, **query: Any) -> list[MemoryItem]:
        self.asked.append(query)
        return self.items

    async def remember(
        self, personality_id: str, text: str, *, tags: tuple[str, ...], on_behalf_of: str
    ) -> str:
        self.stored.append((personality_id, text, tags))
        self.on_behalf_of.append(on_behalf_of)
        return "m-1"


@dataclass
class Web:
    fake: FakeProvider
    pages: LocalPages
    searx: FakeSearxng
    brave: FakeBrave
    llm: LlmClient
    http: httpx.AsyncClient
    memories: Memories
    vault: Vault


@pytest.fixture
async def web() -> AsyncIterator[Web]:
    async with (
        FakeProvider(valid_keys={KEY}, models=("fake/echo", "fake/draw")) as fake,
        LocalPages(huge_bytes=3 * 1024 * 1024, slow_seconds=5.0) as pages,
        FakeSearxng() as searx,
        FakeBrave({BRAVE_KEY}) as brave,
    ):
        llm = LlmClient(timeout_seconds=10.0)
        http = httpx.AsyncClient(timeout=5.0)
        try:
            yield Web(fake, pages, searx, brave, llm, http, Memories(), Vault())
        finally:
            await llm.aclose()
            await http.aclose()


def fetcher(web: Web, **policy: Any) -> SafeFetcher:
    base = {"allow": frozenset({web.pages.origin}), "timeout": 3.0, "max_bytes": 1024 * 1024}
    return SafeFetcher(EgressPolicy(**{**base, **policy}))


def make(
    web: Web,
    *,
    loop: LoopSettings | None = None,
    support: ToolSupport | None = None,
    brave: bool = False,
    extra: tuple[Any, ...] = (),
    settings: ReplySettings | None = None,
) -> Inference:
    fetch = fetcher(web)
    backend = (
        BraveSearch(web.http, web.brave.base_url)
        if brave
        else SearxngSearch(web.http, web.searx.base_url)
    )
    skills = [
        MemorySearchSkill(web.memories),
        ReadUrlSkill(fetch),
        WebResearchSkill(backend, fetch, clock=lambda: datetime(2026, 12, 2, 7, 0, tzinfo=UTC)),
        GenerateImageSkill(
            web.llm, ImageSettings(provider="fakeai", model="fake/draw", endpoint="chat"), fetch
        ),
        *extra,
    ]
    return Inference(
        # "openrouter" too: its dialect sends the user's routing (`provider.only`…).
        providers=ProviderRegistry({"fakeai": web.fake.base_url, "openrouter": web.fake.base_url}),
        keys=KeyResolver(web.vault),
        history=History(),
        llm=web.llm,
        settings=settings or ReplySettings(),
        memories=web.memories,
        skills=SkillRuntime(
            registry=SkillRegistry(skills),
            loop=loop or LoopSettings(),
            support=support or ToolSupport(),
            memory=web.memories,
        ),
        clock=lambda: datetime(2026, 12, 2, 7, 0, tzinfo=UTC),
    )


async def run(
    inference: Inference, request: ReplyRequest = REQUEST
) -> tuple[str, list[SkillActivity], ReplyFinished]:
    events: list[ReplyEvent] = [e async for e in inference.generate_reply(request)]
    *rest, finished = events
    assert isinstance(finished, ReplyFinished)
    text = "".join(e.text for e in rest if isinstance(e, TextDelta))
    return text, [e for e in rest if isinstance(e, SkillActivity)], finished


def tool_messages(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [m for m in body["messages"] if m.get("role") == "tool"]


async def test_a_read_url_call_streams_deltas_runs_and_only_the_final_answer_streams(
    web: Web,
) -> None:
    url = f"{web.pages.base_url}/article"
    web.fake.enqueue_tool_calls(ToolCallSpec("read_url", {"url": url}), text="Let me look.")
    web.fake.enqueue("The first lunar research base opened with a crew of six, darling.")
    streamed, activity, finished = await run(make(web))
    assert (
        streamed
        == finished.content
        == ("The first lunar research base opened with a crew of six, darling.")
    )
    assert [a.skill for a in activity] == ["read_url"]
    first, second = web.fake.chat_requests()
    assert {t["function"]["name"] for t in first.body["tools"]} == set(REQUEST.skills) - {
        "web_research"
    } | {"web_research"}
    assert first.body["tool_choice"] == "auto"
    (result,) = tool_messages(second.body)
    assert "crew of six" in result["content"]
    assert "Home | About" not in result["content"]  # trafilatura kept the article only
    (step,) = finished.report.skill_steps
    assert (step.step, step.skill, step.ok, step.stealth) == (1, "read_url", True, False)
    assert url in step.arguments
    assert "Moon base opens" in step.summary


async def test_a_model_that_keeps_calling_tools_is_stopped_after_max_steps(web: Web) -> None:
    web.fake.keep_calling = ToolCallSpec("memory_search", {"query": "moon"})
    web.fake.reply = "Enough searching; here is my answer."
    _, activity, finished = await run(make(web, loop=LoopSettings(max_steps=2)))
    requests = web.fake.chat_requests()
    assert len(requests) == 3  # two rounds of calls, then the forced answer
    assert [r.body["tool_choice"] for r in requests] == ["auto", "auto", "none"]
    assert finished.content == "Enough searching; here is my answer."
    assert [s.step for s in finished.report.skill_steps] == [1, 2]
    assert len(activity) == 2


async def test_calls_beyond_the_per_answer_limit_are_refused_not_run(web: Web) -> None:
    calls = [ToolCallSpec("memory_search", {"query": f"q{n}"}) for n in range(3)]
    web.fake.enqueue_tool_calls(*calls)
    web.fake.enqueue("Done.")
    _, _, finished = await run(make(web, loop=LoopSettings(max_calls=2)))
    assert [q["query"] for q in web.memories.asked[1:]] == ["q0", "q1"]  # [0]: automatic
    steps = finished.report.skill_steps
    assert [s.ok for s in steps] == [True, True, False]
    assert "limit" in steps[2].summary
    assert web.fake.chat_requests()[-1].body["tool_choice"] == "none"


async def test_a_model_without_tool_support_is_asked_again_without_tools_and_remembered(
    web: Web,
) -> None:
    web.fake.no_tool_models.add("fake/echo")
    support = ToolSupport()
    inference = make(web, support=support)
    _, _, finished = await run(inference)
    first, second = web.fake.chat_requests()
    assert "tools" in first.body
    assert "tools" not in second.body
    assert finished.content.startswith("You said:")
    await run(inference)
    assert "tools" not in web.fake.chat_requests()[-1].body  # remembered: no refused call again
    assert len(web.fake.chat_requests()) == 3


async def test_the_operator_list_of_models_without_tools_offers_none(web: Web) -> None:
    await run(make(web, support=ToolSupport(["fake/*"])))
    assert "tools" not in web.fake.chat_requests()[0].body


async def test_a_personality_without_skills_offers_no_tools(web: Web) -> None:
    await run(make(web), replace(REQUEST, skills=()))
    assert "tools" not in web.fake.chat_requests()[0].body


class Rendezvous:
    """A skill whose calls finish only when two of them run at the same time."""

    name = "rendezvous"
    description = "Waits for a partner."
    parameters: Mapping[str, Any] = {"type": "object", "properties": {}}
    stealth = False
    auto_memorize = False
    timeout = 5.0
    min_seconds = 0.0

    def __init__(self) -> None:
        self.arrived = 0
        self.both = asyncio.Event()

    async def run(self, args: Mapping[str, Any], ctx: SkillContext) -> SkillOutput:
        self.arrived += 1
        if self.arrived == 2:
            self.both.set()
        await asyncio.wait_for(self.both.wait(), timeout=3.0)
        return SkillOutput(text="met")


async def test_independent_calls_of_one_round_run_in_parallel(web: Web) -> None:
    meeting = Rendezvous()
    web.fake.enqueue_tool_calls(ToolCallSpec("rendezvous"), ToolCallSpec("rendezvous"))
    web.fake.enqueue("We met.")
    request = replace(REQUEST, skills=("rendezvous",))
    _, _, finished = await run(make(web, extra=(meeting,)), request)
    assert [s.ok for s in finished.report.skill_steps] == [True, True]


async def test_results_are_cut_to_the_token_budget(web: Web) -> None:
    web.pages.articles["/article/long"] = ("Long", "word " * 5000)
    web.fake.enqueue_tool_calls(
        ToolCallSpec("read_url", {"url": f"{web.pages.base_url}/article/long"})
    )
    web.fake.enqueue("It is long.")
    await run(make(web, loop=LoopSettings(result_tokens=200)))
    (result,) = tool_messages(web.fake.chat_requests()[1].body)
    assert result["content"].endswith("[cut: the result was longer]")
    assert len(result["content"]) < 1500


async def test_bad_arguments_and_unknown_skills_are_errors_the_model_reads(web: Web) -> None:
    web.fake.enqueue_tool_calls(
        ToolCallSpec("read_url", raw_arguments='{"url": 12'),
        ToolCallSpec("read_url", {"link": "x"}),
        ToolCallSpec("format_disk", {}),
    )
    web.fake.enqueue("Sorry.")
    _, _, finished = await run(make(web))
    results = [m["content"] for m in tool_messages(web.fake.chat_requests()[1].body)]
    assert results[0] == "error: the arguments are not valid JSON"
    assert results[1].startswith("error: invalid")
    assert "no skill named 'format_disk'" in results[2]
    assert not any(s.ok for s in finished.report.skill_steps)


async def test_memory_search_uses_the_automatic_scope_and_is_stealth(web: Web) -> None:
    web.memories.items = [MemoryItem("m-9", "Ann's cat is called Pepper.", 0.9)]
    web.fake.enqueue_tool_calls(ToolCallSpec("memory_search", {"query": "cat name"}))
    web.fake.enqueue("Your cat is Pepper.")
    _, _, finished = await run(make(web), replace(REQUEST, memory_threshold=0.4))
    query = web.memories.asked[-1]
    assert (query["personality_id"], query["user_id"], query["query"]) == (
        "p-1",
        USER,
        "cat name",
    )
    assert query["threshold"] == 0.4
    (step,) = finished.report.skill_steps
    assert step.stealth
    assert "Pepper" in tool_messages(web.fake.chat_requests()[1].body)[0]["content"]


async def test_web_research_reads_the_top_results_cites_them_and_memorizes(web: Web) -> None:
    web.searx.add_result("Moon base opens", f"{web.pages.base_url}/article", "A base opened.")
    web.searx.add_result("Report", f"{web.pages.base_url}/report.pdf", "A report.")
    web.searx.add_result("Unreadable", f"{web.pages.base_url}/binary", "Snippet kept.")
    web.fake.enqueue_tool_calls(ToolCallSpec("web_research", {"query": "moon base"}))
    web.fake.enqueue("A base opened [1].")
    _, _, finished = await run(make(web))
    (result,) = tool_messages(web.fake.chat_requests()[1].body)
    content = result["content"]
    assert f"[1] Moon base opens: {web.pages.base_url}/article" in content
    assert "crew of six" in content
    assert "revenue grew by 12 percent" in content  # the PDF, read with pypdf
    assert "Snippet kept." in content  # a result that cannot be read keeps its snippet
    assert web.searx.queries == ["moon base"]
    ((personality, text, tags),) = web.memories.stored
    assert (personality, tags) == ("p-1", ("lore_research",))
    # USER's own memory (never the shared lore); memory refuses it while USER is incognito.
    assert web.memories.on_behalf_of == [USER]
    assert "2026-12-02" in text
    assert "crew of six" in text
    assert "/article" in text
    assert finished.report.skill_steps[0].summary.startswith("3 sources")


async def test_web_research_in_a_turn_without_a_user_remembers_nothing(web: Web) -> None:
    """A scheduled turn reads only the shared memories (memory_user_id ''): its research,
    drawn from the whole channel's words, would be shared lore for every user. Not kept."""
    web.searx.add_result("Moon base opens", f"{web.pages.base_url}/article", "A base opened.")
    web.fake.enqueue_tool_calls(ToolCallSpec("web_research", {"query": "moon base"}))
    web.fake.enqueue("A base opened [1].")
    request = replace(REQUEST, content="", directive="Say something.", shared_context=True)
    _, _, finished = await run(make(web), request)
    assert finished.report.skill_steps[0].ok  # researched all the same ...
    assert web.memories.stored == []  # ... and not remembered


async def test_web_research_through_brave_pays_with_the_users_wallet_key(web: Web) -> None:
    web.brave.add_result("Moon base opens", f"{web.pages.base_url}/article", "A base.")
    web.fake.enqueue_tool_calls(ToolCallSpec("web_research", {"query": "moon base"}))
    web.fake.enqueue("Answer.")
    _, _, finished = await run(make(web, brave=True))
    assert web.brave.queries == ["moon base"]
    assert finished.report.skill_steps[0].ok
    del web.vault.keys["brave"]
    web.fake.enqueue_tool_calls(ToolCallSpec("web_research", {"query": "moon base"}))
    web.fake.enqueue("Answer.")
    _, _, finished = await run(make(web, brave=True))
    step = finished.report.skill_steps[0]
    assert not step.ok
    assert "/wallet set brave" in step.summary
    web.vault.keys["brave"] = "BSAwrong"
    web.fake.enqueue_tool_calls(ToolCallSpec("web_research", {"query": "moon base"}))
    web.fake.enqueue("Answer.")
    _, _, finished = await run(make(web, brave=True))
    assert "refused the key (HTTP 422)" in finished.report.skill_steps[0].summary
    assert "BSAwrong" not in finished.report.skill_steps[0].summary


async def test_generate_image_through_chat_modalities_attaches_the_image(web: Web) -> None:
    web.fake.image_models.add("fake/draw")
    web.fake.enqueue_tool_calls(ToolCallSpec("generate_image", {"prompt": "a red moon"}))
    web.fake.enqueue("Here is the red moon I drew.")
    _, _, finished = await run(make(web))
    (file,) = finished.files
    assert file.content_type == "image/png"
    assert file.data.startswith(b"\x89PNG")
    assert file.description == "a red moon"
    assert finished.usage.images == 0  # a usage row of its own (UsageSpent), not the answer's
    draw = [r for r in web.fake.chat_requests() if r.body.get("modalities")]
    assert draw[0].body["modalities"] == ["image", "text"]
    assert draw[0].api_key == KEY


async def test_generate_image_through_the_images_endpoint(web: Web) -> None:
    web.fake.image_models.add("fake/draw")
    fetch = fetcher(web)
    skill = GenerateImageSkill(
        web.llm,
        ImageSettings(provider="fakeai", model="fake/draw", endpoint="images", max_count=2),
        fetch,
    )
    ctx = SkillContext(user_id=USER, personality_id="p-1", provider_key=_key_for(web))
    output = await skill.run({"prompt": "two cats", "count": 2, "size": "1024x1536"}, ctx)
    assert [f.filename for f in output.files] == ["image-1.png", "image-2.png"]
    (request,) = web.fake.image_requests()
    assert (request.body["n"], request.body["size"]) == (2, "1024x1536")


async def test_a_refused_image_is_a_readable_error_and_no_file(web: Web) -> None:
    web.fake.enqueue_tool_calls(ToolCallSpec("generate_image", {"prompt": "a red moon"}))
    web.fake.enqueue("I could not draw it.")
    _, _, finished = await run(make(web))  # fake/draw is not an image model here
    assert finished.files == ()
    assert finished.usage.images == 0
    (step,) = finished.report.skill_steps
    assert not step.ok
    assert step.summary == "error: MODEL_NOT_FOUND"  # OpenRouter: 404 for no image output


async def test_a_rate_limited_image_is_reported_after_one_request(web: Web) -> None:
    """Image generation is paid and slow: a 429 over the cap is the outcome at once, with its
    Retry-After (the SDK slept through it, twice); a short one is waited out once."""
    web.fake.image_models.add("fake/draw")
    settings = ImageSettings(provider="fakeai", model="fake/draw", endpoint="images")
    skill = GenerateImageSkill(web.llm, settings, fetcher(web))
    ctx = SkillContext(user_id=USER, personality_id="p-1", provider_key=_key_for(web))
    web.fake.fail_next(429, retry_after=MAX_RATE_LIMIT_WAIT_SECONDS + 10)
    with pytest.raises(ResourceExhausted) as caught:
        async with asyncio.timeout(10):
            await skill.run({"prompt": "two cats"}, ctx)
    assert caught.value.retry_after_seconds == pytest.approx(MAX_RATE_LIMIT_WAIT_SECONDS + 10)
    assert len(web.fake.image_requests()) == 1
    web.fake.fail_next(429, times=2, retry_after=0.05)  # the SDK asked a third time
    with pytest.raises(ResourceExhausted):
        await skill.run({"prompt": "two cats"}, ctx)
    assert len(web.fake.image_requests()) == 3
    web.fake.fail_next(429, retry_after=0.05)
    output = await skill.run({"prompt": "two cats"}, ctx)
    assert (len(output.files), len(web.fake.image_requests())) == (1, 5)


class TimeLeft:
    """A skill that reads how long its provider calls' retries may wait."""

    name = "time_left"
    description = "Says how long it may take."
    parameters: Mapping[str, Any] = {"type": "object", "properties": {}}
    stealth = False
    auto_memorize = False
    timeout = 7.0
    min_seconds = 0.0

    def __init__(self) -> None:
        self.seen: list[float] = []

    async def run(self, args: Mapping[str, Any], ctx: SkillContext) -> SkillOutput:
        self.seen.append(ctx.retry.time_left())
        return SkillOutput(text="plenty")


async def test_a_skill_s_retries_end_within_its_time_limit(web: Web) -> None:
    """No retry waits past the call's own limit: a Retry-After that does not fit is reported
    (with its delay), not cut off by the loop's timeout."""
    probe = TimeLeft()
    web.fake.enqueue_tool_calls(ToolCallSpec("time_left"))
    web.fake.enqueue("Done.")
    await run(make(web, extra=(probe,)), replace(REQUEST, skills=("time_left",)))
    [left] = probe.seen
    assert 6.0 < left <= TimeLeft.timeout


class Slow:
    """A skill that takes 1.5 s."""

    name = "slow"
    description = "Takes a while."
    parameters: Mapping[str, Any] = {"type": "object", "properties": {}}
    stealth = False
    auto_memorize = False
    timeout = 7.0
    min_seconds = 0.0

    async def run(self, args: Mapping[str, Any], ctx: SkillContext) -> SkillOutput:
        await asyncio.sleep(1.5)
        return SkillOutput(text="done")


async def test_a_tool_loop_s_rounds_share_one_deadline(web: Web) -> None:
    """Each round once got a fresh total_timeout, so round 2 could start (and be cut off by
    the caller) with the reply's time spent. One 3 s deadline for the whole reply: after a
    1.5 s skill less than the 2 s floor is left, so the model must answer now."""
    web.fake.enqueue_tool_calls(ToolCallSpec("slow"))
    web.fake.enqueue("Done.")
    settings = ReplySettings(
        answer=AnswerSettings(total_timeout=3.0, first_event_timeout=10.0, min_attempt_seconds=2.0)
    )
    inference = make(web, extra=(Slow(),), settings=settings)
    _, _, finished = await run(inference, replace(REQUEST, skills=("slow",)))
    first, second = web.fake.chat_requests()
    assert first.body["tool_choice"] == "auto"
    assert second.body["tool_choice"] == "none"  # no time for more skills and one more round
    assert finished.content == "Done."


def _key_for(web: Web) -> Any:
    registry = ProviderRegistry({"fakeai": web.fake.base_url})

    async def key_for(name: str, model: str) -> Any:
        return registry.get(name), SecretStr(KEY)

    return key_for


async def test_the_tool_messages_follow_openais_sequence_rules(web: Web) -> None:
    web.fake.enqueue_tool_calls(
        ToolCallSpec("memory_search", {"query": "a"}), ToolCallSpec("memory_search", {"query": "b"})
    )
    web.fake.enqueue("ok")
    await run(make(web))
    body = web.fake.chat_requests()[1].body
    calls = body["messages"][-3]["tool_calls"]
    assert [m["tool_call_id"] for m in tool_messages(body)] == [c["id"] for c in calls]
    assert all(isinstance(c["function"]["arguments"], str) for c in calls)
    assert json.loads(calls[0]["function"]["arguments"]) == {"query": "a"}


async def test_gemini_parallel_calls_without_index_stay_apart_and_echo_the_signature(
    web: Web,
) -> None:
    """Gemini's stream has no `index` on tool calls; Gemini 3 refuses the next round unless
    each step's thought signature (`extra_content`) comes back with its call."""
    web.fake.gemini_tool_models.add("fake/echo")
    web.fake.enqueue_tool_calls(
        ToolCallSpec("memory_search", {"query": "Paris"}),
        ToolCallSpec("memory_search", {"query": "Rome"}),
    )
    web.fake.enqueue("Paris and Rome, darling.")
    _, _, finished = await run(make(web))
    assert finished.content == "Paris and Rome, darling."
    assert [q["query"] for q in web.memories.asked[1:]] == ["Paris", "Rome"]  # [0]: automatic
    assert [s.ok for s in finished.report.skill_steps] == [True, True]
    body = web.fake.chat_requests()[1].body
    first, second = body["messages"][-3]["tool_calls"]
    assert first["id"] != second["id"]
    assert first["extra_content"]["google"]["thought_signature"]
    assert "extra_content" not in second
    assert [m["tool_call_id"] for m in tool_messages(body)] == [first["id"], second["id"]]


async def test_a_refusal_under_the_users_own_routing_is_not_remembered(web: Web) -> None:
    """OpenRouter's 404 "No endpoints found that support tool use" caused by one user's
    `provider.only`: that user's answer goes without tools, other users keep them."""
    web.fake.no_tool_hosts.add("TinyHost")
    support = ToolSupport()
    inference = make(web, support=support)
    routed = replace(
        REQUEST,
        model=ModelChoice(
            provider="openrouter",
            model="fake/echo",
            advanced_parameters={"provider": {"only": ["TinyHost"]}},
        ),
    )
    _, _, finished = await run(inference, routed)
    assert finished.content.startswith("You said:")
    refused, again = web.fake.chat_requests()
    assert "tools" in refused.body
    assert "tools" not in again.body
    assert support.allows("openrouter", "fake/echo")
    await run(inference, replace(REQUEST, model=ModelChoice("openrouter", "fake/echo")))
    assert "tools" in web.fake.chat_requests()[-1].body


async def test_a_remembered_refusal_expires(web: Web) -> None:
    now = [1000.0]
    support = ToolSupport(clock=lambda: now[0])
    inference = make(web, support=support)
    web.fake.no_tool_models.add("fake/echo")
    await run(inference)
    await run(inference)
    assert ["tools" in r.body for r in web.fake.chat_requests()] == [True, False, False]
    now[0] += REFUSAL_MEMORY_SECONDS - 1
    assert not support.allows("fakeai", "fake/echo")
    now[0] += 1
    web.fake.no_tool_models.clear()  # the provider added tool use meanwhile
    await run(inference)
    assert "tools" in web.fake.chat_requests()[-1].body


async def test_a_context_overflow_naming_functions_is_no_tool_refusal(web: Web) -> None:
    """OpenAI's overflow message says "…in the functions": an error, not "no tool use"."""
    support = ToolSupport()
    web.fake.fail_next(
        400,
        code="context_length_exceeded",
        message=(
            "This model's maximum context length is 8192 tokens. However, your messages "
            "resulted in 9000 tokens (8500 in the messages, 500 in the functions). Please "
            "reduce the length of the messages or functions."
        ),
    )
    with pytest.raises(InvalidArgument) as caught:
        await run(make(web, support=support))
    assert caught.value.reason == "CONTEXT_TOO_LONG"
    assert support.allows("fakeai", "fake/echo")
    assert len(web.fake.chat_requests()) == 1


async def test_a_paid_skill_is_not_started_when_too_little_time_is_left(web: Web) -> None:
    """A slow first round leaves 0.5 s of the budget: the image is refused unstarted (the
    model answers without it), never sent and then cancelled with the user paying for it."""
    web.fake.image_models.add("fake/draw")
    now = [0.0]
    draw = ToolCallSpec("generate_image", {"prompt": "a red moon"})

    def slow_first_round(body: dict[str, Any]) -> str | ScriptedReply:
        if len(web.fake.chat_requests()) == 1:
            now[0] += 59.5  # the model took 59.5 s of the loop's 60
            return ScriptedReply("", finish_reason="tool_calls", tool_calls=(draw,))
        return "No time to draw, darling."

    web.fake.reply = slow_first_round
    skill = GenerateImageSkill(
        web.llm, ImageSettings(provider="fakeai", model="fake/draw", endpoint="chat"), fetcher(web)
    )
    loop = ToolLoop(
        skills=[skill],
        ctx=SkillContext(user_id=USER, personality_id="p-1", provider_key=_key_for(web)),
        settings=LoopSettings(time_budget=60.0),
        support=ToolSupport(),
        counter=TokenCounter("fake/echo"),
        clock=lambda: now[0],
    )
    target = LoopTarget(
        llm=web.llm,
        provider=ProviderRegistry({"fakeai": web.fake.base_url}).get("fakeai"),
        api_key=SecretStr(KEY),
        model="fake/echo",
        params=parse_advanced_parameters(None),
        name="Lilith",
        recent=(),
        rules=(),
        settings=AnswerSettings(),
    )
    messages: list[ChatMessage] = [{"role": "user", "content": "Ann: draw me the moon"}]
    events = [event async for event in loop.run(target, messages)]
    *rest, result = events
    assert isinstance(result, LoopResult)
    assert not [r for r in web.fake.chat_requests() if r.body.get("modalities")]  # never sent
    assert result.files == ()
    assert not any(isinstance(e, SkillActivity) for e in rest)
    (step,) = result.steps
    assert not step.ok
    assert "too little time left to start generate_image" in step.summary
    (told,) = tool_messages(web.fake.chat_requests()[1].body)
    assert told["content"].endswith("answer with what you have")
    assert result.answer.content == "No time to draw, darling."


async def test_an_image_key_the_provider_refuses_is_not_reported_used(web: Web) -> None:
    # The image model runs on the user's OpenRouter key, which OpenRouter refuses (401): the
    # refusal is the tool's text, and the key must not be reported used (keyvault would
    # clear its rejection and make it active again).
    web.vault.keys["openrouter"] = "sk-or-revoked-key"  # not among the fake's valid keys
    web.fake.image_models.add("fake/draw")
    draw = GenerateImageSkill(
        web.llm, ImageSettings(provider="openrouter", model="fake/draw"), fetcher(web)
    )
    draw.name = "draw_on_openrouter"
    web.fake.enqueue_tool_calls(ToolCallSpec("draw_on_openrouter", {"prompt": "a red moon"}))
    web.fake.enqueue("I could not draw it.")
    request = replace(REQUEST, skills=("draw_on_openrouter",))
    _, _, finished = await run(make(web, extra=(draw,)), request)
    assert finished.report.skill_steps[0].summary == "error: INVALID_API_KEY"
    assert finished.report.user_key_providers == ("fakeai",)  # the answer's key only
    assert finished.report.refused_key_providers == ("openrouter",)  # gateway: inactive


async def test_a_brave_key_brave_refuses_is_not_reported_used(web: Web) -> None:
    web.brave.add_result("Moon base opens", f"{web.pages.base_url}/article", "A base.")
    web.fake.enqueue_tool_calls(ToolCallSpec("web_research", {"query": "moon base"}))
    web.fake.enqueue("Answer.")
    _, _, finished = await run(make(web, brave=True))
    assert "brave" in finished.report.user_key_providers  # a key that worked is used
    web.vault.keys["brave"] = "BSAwrong"
    web.fake.enqueue_tool_calls(ToolCallSpec("web_research", {"query": "moon base"}))
    web.fake.enqueue("Answer.")
    _, _, finished = await run(make(web, brave=True))
    assert "refused the key (HTTP 422)" in finished.report.skill_steps[0].summary
    assert "brave" not in finished.report.user_key_providers
    assert finished.report.refused_key_providers == ("brave",)


# ---- usage: what a reply paid for reaches the gateway whatever becomes of it ----


async def events_then_error(
    inference: Inference, request: ReplyRequest = REQUEST
) -> tuple[list[ReplyEvent], TzurotError]:
    events: list[ReplyEvent] = []
    with pytest.raises(TzurotError) as caught:
        await collect(inference.generate_reply(request), events)
    return events, caught.value


async def collect(
    stream: AsyncIterator[ReplyEvent], events: list[ReplyEvent], *, then: Any = None
) -> None:
    """Every event into `events` (kept when the stream raises); `then(event)` after each."""
    async for event in stream:
        events.append(event)
        if then is not None:
            then(event)


def spent_of(events: list[ReplyEvent]) -> list[UsageSpent]:
    return [e for e in events if isinstance(e, UsageSpent)]


def answer_spent(events: list[ReplyEvent]) -> UsageSpent:
    """The one report of the answer's own calls (request_type "", failed)."""
    (report,) = [s for s in spent_of(events) if any(p.request_type == "" for p in s.paid)]
    return report


async def test_rounds_paid_before_a_later_round_fails_are_reported(web: Web) -> None:
    """Round 1 asks for memory_search (billed); round 2 gets a 402. The error still comes,
    and before it what round 1 was billed, as paid and not delivered."""
    web.fake.enqueue_tool_calls(ToolCallSpec("memory_search", {"query": "moon"}))
    web.fake.enqueue("never sent")
    inference = make(web)
    events: list[ReplyEvent] = []

    def refuse_round_two(_: ReplyEvent) -> None:  # no credit left once round 1 was paid
        if len(web.fake.chat_requests()) == 1 and not web.fake._faults:
            web.fake.fail_next(402)

    with pytest.raises(TzurotError) as caught:
        await collect(inference.generate_reply(REQUEST), events, then=refuse_round_two)
    assert caught.value.reason == "PROVIDER_QUOTA_EXCEEDED"
    assert not any(isinstance(e, ReplyFinished) for e in events)
    report = answer_spent(events)
    assert report.failed
    (paid,) = report.paid
    assert (paid.provider, paid.model) == ("fakeai", "fake/echo")
    assert paid.usage.input_tokens > 0
    assert paid.usage.output_tokens > 0
    assert events[-1] is report  # the last word before the error


async def test_two_empty_answers_report_both_calls(web: Web) -> None:
    web.fake.enqueue("")
    web.fake.enqueue("")
    events, error = await events_then_error(make(web), replace(REQUEST, skills=()))
    assert error.reason == "EMPTY_ANSWER"
    (paid,) = answer_spent(events).paid
    one_prompt = web.fake.chat_requests()[0]
    assert len(web.fake.chat_requests()) == 2
    assert paid.usage.input_tokens >= 2 * len(one_prompt.body["messages"])  # both prompts


async def test_a_content_filtered_answer_is_reported_paid(web: Web) -> None:
    web.fake.enqueue("Something the filter cut.", finish_reason="content_filter")
    events, error = await events_then_error(make(web), replace(REQUEST, skills=()))
    assert error.reason == "CONTENT_FILTERED"
    (paid,) = answer_spent(events).paid
    assert paid.usage.output_tokens > 0


async def test_max_tokens_used_up_is_reported_paid(web: Web) -> None:
    web.fake.enqueue("", reasoning="thinking it all through", finish_reason="length")
    events, error = await events_then_error(make(web), replace(REQUEST, skills=()))
    assert error.reason == "MAX_TOKENS_USED_UP"
    assert answer_spent(events).failed


async def test_a_reply_that_finishes_reports_its_answer_once(web: Web) -> None:
    """No UsageSpent of the answer's own calls when ReplyFinished carries them."""
    web.fake.enqueue_tool_calls(ToolCallSpec("memory_search", {"query": "moon"}))
    web.fake.enqueue("The moon is fine.")
    events = [e async for e in make(web).generate_reply(REQUEST)]
    finished = events[-1]
    assert isinstance(finished, ReplyFinished)
    assert spent_of(events) == []
    assert finished.usage.input_tokens > 0


async def test_an_image_is_billed_to_the_image_model_with_its_tokens(web: Web) -> None:
    """The fake image answer bills 10 in / 1290 out (OpenRouter bills image output per token):
    a row of its own under fake/draw, not the chat model's images."""
    web.fake.image_models.add("fake/draw")
    web.fake.enqueue_tool_calls(ToolCallSpec("generate_image", {"prompt": "a red moon"}))
    web.fake.enqueue("Here is the red moon I drew.")
    events = [e async for e in make(web).generate_reply(REQUEST)]
    finished = events[-1]
    assert isinstance(finished, ReplyFinished)
    (image,) = spent_of(events)
    assert image == UsageSpent(
        (PaidCall(IMAGE_GENERATION, "fakeai", "fake/draw", TokenUsage(10, 1290, images=1)),)
    )
    assert (finished.model, finished.usage.images) == ("fake/echo", 0)
    assert finished.usage.output_tokens < 1290  # the image's tokens are not the answer's
    assert events.index(image) < events.index(finished)


async def test_an_answer_failing_after_a_drawing_reports_each_call_once(web: Web) -> None:
    """The drawing is delivered with a note when the answer after it fails: its row is
    reported as it was paid, the answer's calls (the failed round's too) in ReplyFinished,
    none of them twice."""
    web.fake.image_models.add("fake/draw")
    web.fake.enqueue_tool_calls(ToolCallSpec("generate_image", {"prompt": "a red moon"}))
    web.fake.enqueue("")
    web.fake.enqueue("")
    events = [e async for e in make(web).generate_reply(REQUEST)]
    finished = events[-1]
    assert isinstance(finished, ReplyFinished)
    assert finished.content.startswith("*The answer could not be finished (")
    (image,) = spent_of(events)
    assert image.paid[0].request_type == IMAGE_GENERATION
    rounds = [r for r in web.fake.chat_requests() if not r.body.get("modalities")]
    assert len(rounds) == 3  # the tool call, then two empty answers: all in the usage
    assert finished.usage.input_tokens >= 3 * len(rounds[0].body["messages"])


async def test_each_brave_search_is_a_paid_request(web: Web) -> None:
    web.fake.enqueue_tool_calls(ToolCallSpec("web_research", {"query": "moon base"}))
    web.fake.enqueue("Answer.")
    events = [e async for e in make(web, brave=True).generate_reply(REQUEST)]
    (search,) = spent_of(events)
    assert search == UsageSpent((PaidCall(WEB_SEARCH, "brave", "", TokenUsage(0, 0)),))


async def test_a_refused_brave_key_is_not_a_paid_request(web: Web) -> None:
    web.vault.keys["brave"] = "BSAwrong"
    web.fake.enqueue_tool_calls(ToolCallSpec("web_research", {"query": "moon base"}))
    web.fake.enqueue("Answer.")
    events = [e async for e in make(web, brave=True).generate_reply(REQUEST)]
    assert spent_of(events) == []
