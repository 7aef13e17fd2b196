"""A wallet key a skill's service refused while the reply went on is reported refused
(PromptReport.refused_key_providers), so gateway marks it inactive; never reported used.
Only a key taken from the user's wallet is reported so: never one the reply did not take.
A reply that fails after such a refusal names those keys in its error instead (metadata
`refused_key_providers`): no ReplyFinished will carry them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from pydantic import SecretStr

from tests.unit.inference.fake_models import NoHistory, ToolModel
from tzurot.inference.answering import AnswerSettings
from tzurot.inference.domain import (
    Character,
    ModelChoice,
    ReplyFinished,
    ReplyRequest,
)
from tzurot.inference.keys import KeyResolver
from tzurot.inference.providers import ProviderRegistry
from tzurot.inference.reply_settings import ReplySettings, SkillRuntime
from tzurot.inference.service import Inference
from tzurot.inference.skills.base import SkillContext, SkillError, SkillOutput
from tzurot.inference.skills.registry import SkillRegistry
from tzurot.runtime.errors import FailedPrecondition, TzurotError, Unavailable

USER = "3f1f9a8e-8c1e-4d5b-9a57-0f3c2b1a9d10"
REQUEST = ReplyRequest(
    job_id="job-1",
    user_id=USER,
    author_name="Ann",
    channel_id="chan-1",
    character=Character(id="p-1", name="Lilith", system_prompt="You are Lilith."),
    model=ModelChoice(provider="openrouter", model="m/one"),
    content="search and draw, please",
    skills=("search", "draw", "unkeyed", "draw_here"),
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
    provider: str = "openai"

    async def run(self, args: Mapping[str, Any], ctx: SkillContext) -> SkillOutput:
        if self.how == "wallet":  # a service key of the wallet (Brave's 401/422)
            assert ctx.wallet_key is not None
            assert await ctx.wallet_key("brave") is not None
            raise SkillError("Brave Search refused the key (HTTP 401)", refused_key="brave")
        if self.how == "provider":  # a model on the user's key for its provider (a 401)
            assert ctx.provider_key is not None
            await ctx.provider_key(self.provider, "fake/draw")
            raise FailedPrecondition(
                f"{self.provider} rejected the API key",
                reason="INVALID_API_KEY",
                metadata={"provider": self.provider},
            )
        # Says a key was refused that this reply never took from the wallet.
        raise SkillError("refused", refused_key="elsewhere")


def inference_with(*calls: str, failure: Exception | None = None) -> Inference:
    skills = [
        RefusedSkill("search", "wallet"),
        RefusedSkill("draw", "provider"),
        RefusedSkill("unkeyed", "none"),
        RefusedSkill("draw_here", "provider", provider="openrouter"),
    ]
    return Inference(
        providers=ProviderRegistry(),
        keys=KeyResolver(Vault()),
        history=NoHistory(),
        llm=ToolModel(calls, failure, answer="Answered without them."),
        # No retry of a failed round: it fails the reply at once.
        settings=ReplySettings(answer=AnswerSettings(failure_retries=0)),
        skills=SkillRuntime(registry=SkillRegistry(skills)),
    )


async def finished_reply(*calls: str) -> ReplyFinished:
    inference = inference_with(*calls)
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


async def failed_reply(*calls: str, failure: Exception) -> BaseException:
    """The error the reply raised when the round after its skills failed with `failure`."""
    inference = inference_with(*calls, failure=failure)
    events: list[object] = []
    with pytest.raises(type(failure)) as raised:
        await collect(inference.generate_reply(REQUEST), events)
    assert not any(isinstance(event, ReplyFinished) for event in events)
    return raised.value


async def collect(stream: AsyncIterator[object], into: list[object]) -> None:
    async for event in stream:
        into.append(event)


def provider_down() -> Unavailable:
    return Unavailable(
        "openrouter is failing (HTTP 502)",
        reason="PROVIDER_UNAVAILABLE",
        metadata={"provider": "openrouter"},
    )


def content_filtered() -> FailedPrecondition:
    return FailedPrecondition(
        "openrouter refused to answer: its content filter blocked this conversation",
        reason="CONTENT_FILTERED",
        metadata={"provider": "openrouter"},
    )


@pytest.mark.parametrize("failure", [provider_down(), content_filtered()])
async def test_a_reply_failing_after_a_skill_refused_wallet_keys_names_them_in_its_error(
    failure: TzurotError,
) -> None:
    err = await failed_reply("search", "draw", "unkeyed", failure=failure)
    assert isinstance(err, TzurotError)
    assert err.reason == failure.reason  # the failure itself, as it was
    assert err.metadata == {
        "provider": "openrouter",
        # Only keys taken from her wallet: never "elsewhere" (no key of hers was used).
        "refused_key_providers": "brave,openai",
    }
    assert "sk-" not in f"{err} {err!r} {err.metadata}"  # names, never a key


async def test_the_answers_own_key_is_not_named_though_a_skill_refused_it() -> None:
    """The image model on her OpenRouter key refused (401), though the answer's first round
    was accepted with that same key: it works, as for a finished reply (gateway)."""
    err = await failed_reply("draw_here", "search", failure=provider_down())
    assert isinstance(err, TzurotError)
    assert err.metadata["refused_key_providers"] == "brave"


async def test_a_reply_failing_without_a_refusal_says_nothing_of_keys() -> None:
    err = await failed_reply("unkeyed", failure=provider_down())
    assert isinstance(err, TzurotError)
    assert "refused_key_providers" not in err.metadata
    err = await failed_reply(failure=provider_down())  # no skill called at all
    assert isinstance(err, TzurotError)
    assert "refused_key_providers" not in err.metadata


async def test_a_bug_after_a_refusal_is_raised_as_it_is() -> None:
    """Not a TzurotError: nothing to carry the names (the gateway fails the job as a bug)."""
    bug = RuntimeError("a bug")
    err = await failed_reply("search", failure=bug)
    assert err is bug
