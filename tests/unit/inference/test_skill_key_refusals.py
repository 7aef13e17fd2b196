"""A wallet key a skill's service refused while the reply went on is reported refused
(PromptReport.refused_key_providers), so gateway marks it inactive; never reported used.
Only a key taken from the user's wallet is reported so: never one the reply did not take."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr

from tzurot.inference.dialects import ProviderCall
from tzurot.inference.domain import (
    Character,
    Completion,
    ModelChoice,
    ReplyFinished,
    ReplyRequest,
    StreamEvent,
    TextDelta,
    TokenUsage,
    ToolCall,
    ToolCallStarted,
    Transcript,
)
from tzurot.inference.keys import KeyResolver
from tzurot.inference.providers import Provider, ProviderRegistry
from tzurot.inference.service import Inference, SkillRuntime
from tzurot.inference.skills.base import SkillContext, SkillError, SkillOutput
from tzurot.inference.skills.registry import SkillRegistry
from tzurot.runtime.errors import FailedPrecondition

USER = "3f1f9a8e-8c1e-4d5b-9a57-0f3c2b1a9d10"
REQUEST = ReplyRequest(
    job_id="job-1",
    user_id=USER,
    author_name="Ann",
    channel_id="chan-1",
    character=Character(id="p-1", name="Lilith", system_prompt="You are Lilith."),
    model=ModelChoice(provider="openrouter", model="m/one"),
    content="search and draw, please",
    skills=("search", "draw", "unkeyed"),
)


class Vault:
    """Alice's wallet: an OpenRouter key (the answer's), a Brave key, an OpenAI key."""

    async def decrypt(self, user_id: str, provider: str) -> SecretStr | None:
        known = {"openrouter", "brave", "openai"}
        return SecretStr(f"sk-{provider}-alice") if provider in known else None


@dataclass
class RefusedSkill:
    """A skill whose service refuses the key it took: `how` says which way it says so."""

    name: str
    how: str
    description: str = "a skill"
    parameters: Mapping[str, Any] = field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )
    stealth: bool = False
    auto_memorize: bool = False
    timeout: float = 5.0
    min_seconds: float = 0.0

    async def run(self, args: Mapping[str, Any], ctx: SkillContext) -> SkillOutput:
        if self.how == "wallet":  # a service key of the wallet (Brave's 401/422)
            assert ctx.wallet_key is not None
            assert await ctx.wallet_key("brave") is not None
            raise SkillError("Brave Search refused the key (HTTP 401)", refused_key="brave")
        if self.how == "provider":  # a model on the user's key for its provider (a 401)
            assert ctx.provider_key is not None
            await ctx.provider_key("openai", "fake/draw")
            raise FailedPrecondition(
                "openai rejected the API key",
                reason="INVALID_API_KEY",
                metadata={"provider": "openai"},
            )
        # Says a key was refused that this reply never took from the wallet.
        raise SkillError("refused", refused_key="elsewhere")


class ToolModel:
    """Asks for every skill of the request at once, then answers."""

    def __init__(self, calls: tuple[str, ...]) -> None:
        self.calls = calls
        self.asked = 0

    async def stream_chat(
        self,
        provider: Provider,
        api_key: SecretStr,
        *,
        model: str,
        call: ProviderCall,
        request_timeout: float | None = None,
        max_retries: int | None = None,
    ) -> AsyncGenerator[StreamEvent, None]:
        self.asked += 1
        if self.asked == 1 and self.calls:
            yield ToolCallStarted()
            tool_calls = tuple(ToolCall(f"c{n}", name, "{}") for n, name in enumerate(self.calls))
            yield Completion("", TokenUsage(10, 2), "tool_calls", tool_calls=tool_calls)
            return
        yield TextDelta("Answered without them.")
        yield Completion("Answered without them.", TokenUsage(20, 4), "stop")

    async def count_models(self, provider: Provider, api_key: SecretStr) -> int:
        return 1

    async def transcribe(
        self,
        provider: Provider,
        api_key: SecretStr,
        *,
        model: str,
        audio: bytes,
        filename: str,
        content_type: str,
    ) -> Transcript:
        raise AssertionError("not used here")


class NoHistory:
    async def recent_turns(
        self, channel_id: str, personality_id: str, limit: int, *, whole_channel: bool = False
    ) -> list[Any]:
        return []


async def finished_reply(*calls: str) -> ReplyFinished:
    skills = [
        RefusedSkill("search", "wallet"),
        RefusedSkill("draw", "provider"),
        RefusedSkill("unkeyed", "none"),
    ]
    inference = Inference(
        providers=ProviderRegistry(),
        keys=KeyResolver(Vault()),
        history=NoHistory(),
        llm=ToolModel(calls),
        skills=SkillRuntime(registry=SkillRegistry(skills)),
    )
    events = [event async for event in inference.generate_reply(REQUEST)]
    finished = events[-1]
    assert isinstance(finished, ReplyFinished)
    assert finished.content == "Answered without them."
    return finished


async def test_keys_a_skills_service_refused_are_reported_refused_not_used() -> None:
    finished = await finished_reply("search", "draw")
    assert [step.ok for step in finished.report.skill_steps] == [False, False]
    assert finished.report.refused_key_providers == ("brave", "openai")
    assert finished.report.user_key_providers == ("openrouter",)  # the answer's own key


async def test_a_refusal_of_a_key_the_reply_never_took_from_the_wallet_is_not_reported() -> None:
    finished = await finished_reply("unkeyed")
    assert finished.report.refused_key_providers == ()


async def test_a_reply_that_called_no_skill_reports_no_refusal() -> None:
    finished = await finished_reply()
    assert finished.report.refused_key_providers == ()
    assert finished.report.user_key_providers == ("openrouter",)
