"""A wallet key a skill's service refuses (401) is said the moment it is (KeyRefused), while
the round's other calls still run and long before the reply ends: gateway marks it inactive
then, so a reply that never ends (inference killed, its loop stalled) does not leave it
active. Once per provider a reply; only a key taken from the user's wallet, never the answer's
own; the report still names it. Sent only to a gateway that reads it (`accepts_key_refused`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr

from tests.unit.inference.fake_models import NoHistory, ToolModel
from tzurot.inference import convert
from tzurot.inference.answering import AnswerSettings
from tzurot.inference.domain import (
    Character,
    KeyRefused,
    ModelChoice,
    PromptSent,
    ReplyFinished,
    ReplyRequest,
    TextDelta,
)
from tzurot.inference.keys import KeyResolver
from tzurot.inference.providers import ProviderRegistry
from tzurot.inference.reply_settings import ReplySettings, SkillRuntime
from tzurot.inference.server import _accepts
from tzurot.inference.service import Inference
from tzurot.inference.skills.base import SkillContext, SkillError, SkillOutput
from tzurot.inference.skills.registry import SkillRegistry
from tzurot.runtime.errors import FailedPrecondition
from tzurot.v1 import inference_pb2 as inf

USER = "3f1f9a8e-8c1e-4d5b-9a57-0f3c2b1a9d10"


def reply_request(*skills: str) -> ReplyRequest:
    return ReplyRequest(
        job_id="job-1",
        user_id=USER,
        author_name="Ann",
        channel_id="chan-1",
        character=Character(id="p-1", name="Lilith", system_prompt="You are Lilith."),
        model=ModelChoice(provider="openrouter", model="m/one"),
        content="search and draw, please",
        skills=skills,
    )


class Vault:
    """Ann's wallet: an OpenRouter key (the answer's), a Brave key, an OpenAI key."""

    async def decrypt(self, user_id: str, provider: str) -> SecretStr | None:
        known = {"openrouter", "brave", "openai"}
        return SecretStr(f"sk-{provider}-ann") if provider in known else None


@dataclass
class Refusing:
    """A skill whose service refuses its key (`how`: "wallet" Brave, "provider" a model, "none"
    a key never taken from the wallet), or, with `release`, one that works until released."""

    name: str
    how: str = "none"
    provider: str = "openai"
    release: asyncio.Event | None = None
    description: str = "a skill"
    parameters: Mapping[str, Any] = field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )
    stealth: bool = False
    auto_memorize: bool = False
    timeout: float = 30.0
    min_seconds: float = 0.0

    async def run(self, args: Mapping[str, Any], ctx: SkillContext) -> SkillOutput:
        if self.release is not None:  # an image model at work
            await self.release.wait()
            return SkillOutput(text="done")
        if self.how == "wallet":
            assert ctx.wallet_key is not None
            await ctx.wallet_key("brave")
            raise SkillError("Brave Search refused the key (HTTP 401)", refused_key="brave")
        if self.how == "provider":
            assert ctx.provider_key is not None
            await ctx.provider_key(self.provider, "fake/draw")
            raise FailedPrecondition(
                f"{self.provider} rejected the API key",
                reason="INVALID_API_KEY",
                metadata={"provider": self.provider},
            )
        raise SkillError("refused", refused_key="elsewhere")


def inference(calls: tuple[str, ...], *skills: Refusing) -> Inference:
    return Inference(
        providers=ProviderRegistry(),
        keys=KeyResolver(Vault()),
        history=NoHistory(),
        llm=ToolModel(calls),
        settings=ReplySettings(answer=AnswerSettings(failure_retries=0)),
        skills=SkillRuntime(registry=SkillRegistry(list(skills))),
    )


async def events_of(calls: tuple[str, ...], *skills: Refusing) -> list[object]:
    reply = inference(calls, *skills).generate_reply(reply_request(*(s.name for s in skills)))
    return [event async for event in reply]


async def test_each_wallet_key_refused_is_said_once_before_the_reply_ends() -> None:
    events = await events_of(
        ("search", "draw", "search_again", "unkeyed", "draw_here"),
        Refusing("search", "wallet"),
        Refusing("draw", "provider"),
        Refusing("search_again", "wallet"),  # Brave again: said once
        Refusing("unkeyed"),  # a key this reply never took from the wallet
        Refusing("draw_here", "provider", provider="openrouter"),  # the answer's own key
    )
    refused = [event.provider for event in events if isinstance(event, KeyRefused)]
    assert sorted(refused) == ["brave", "openai"]
    finished = events[-1]
    assert isinstance(finished, ReplyFinished)
    last_refusal = max(i for i, e in enumerate(events) if isinstance(e, KeyRefused))
    first_text = min(i for i, e in enumerate(events) if isinstance(e, TextDelta))
    assert last_refusal < first_text  # before the next round answered, not with the report
    # Named again in the report (gateway leaves out the answer's own key, used).
    assert {"brave", "openai"} <= set(finished.report.refused_key_providers)


async def test_a_refusal_is_said_while_the_rounds_other_call_still_runs() -> None:
    release = asyncio.Event()
    reply = inference(
        ("draw", "slow"), Refusing("draw", "provider"), Refusing("slow", release=release)
    ).generate_reply(reply_request("draw", "slow"))
    seen: list[object] = []
    async with asyncio.timeout(5):
        async for event in reply:
            seen.append(event)
            if isinstance(event, KeyRefused):
                break
    assert seen[-1] == KeyRefused("openai")
    assert not release.is_set()  # the other call is still at work
    release.set()
    rest = [event async for event in reply]
    assert isinstance(rest[-1], ReplyFinished)
    assert not any(isinstance(event, KeyRefused) for event in rest)


async def test_a_reply_closed_while_a_round_runs_leaves_no_call_behind() -> None:
    release = asyncio.Event()
    slow = Refusing("slow", release=release)
    reply = inference(("draw", "slow"), Refusing("draw", "provider"), slow).generate_reply(
        reply_request("draw", "slow")
    )
    async for event in reply:
        if isinstance(event, KeyRefused):
            break
    await reply.aclose()  # the caller went away: the round's calls are cancelled
    before = {t for t in asyncio.all_tasks() if not t.done()}
    assert all("_run_round" not in repr(t.get_coro()) for t in before)


async def test_no_refusal_no_event() -> None:
    events = await events_of(())
    assert not any(isinstance(event, KeyRefused) for event in events)


def request_flags(
    *, usage: bool = False, progress: bool = False, key_refused: bool = False
) -> inf.GenerateReplyRequest:
    return inf.GenerateReplyRequest(
        accepts_usage_spent=usage,
        accepts_answer_progress=progress,
        accepts_key_refused=key_refused,
    )


def test_only_a_gateway_that_reads_it_is_sent_it() -> None:
    refused = KeyRefused("brave")
    assert _accepts(request_flags(key_refused=True), refused)
    # A gateway that reads answer progress but not this (its code older than the field).
    assert not _accepts(request_flags(usage=True, progress=True), refused)
    assert not _accepts(request_flags(), refused)
    # The other events keep their own flags.
    sent = PromptSent("openrouter", "m/one", 10)
    assert not _accepts(request_flags(key_refused=True), sent)


def test_it_travels_as_its_provider_name_only() -> None:
    wire = convert.reply_event(KeyRefused("brave"))
    assert wire.WhichOneof("event") == "key_refused"
    assert wire.key_refused.provider == "brave"
    assert wire.key_refused.ListFields()[0][0].name == "provider"
    assert len(wire.key_refused.ListFields()) == 1
