"""The tool loop's overhead per step (issue 18), against the fake provider.

Inference's use-case runs in-process with the real `openai` client talking HTTP to the fake
provider on loopback. Three kinds of turns:
- `skills_turn_no_tools`: a personality without skills (one provider call, no tools);
- `skills_turn_offered`: skills offered, the model answers directly (one call with tools);
- `skills_turn_<N>_steps`: a model that keeps calling a trivial skill, stopped by
  MAX_STEPS = N, then forced to answer (N + 1 provider calls).
`skills_step_overhead` is (N-step turn - offered turn) / N, per turn: what one round adds
(the extra provider round trip, argument validation, the skill call, the messages); its
`loop_own_ms` note subtracts one no-tools turn (a provider call and the prompt), leaving
the loop's own bookkeeping.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from pydantic import SecretStr

from bench.results import Figure, summarise
from tzurot.inference.domain import Character, ModelChoice, ReplyFinished, ReplyRequest
from tzurot.inference.keys import KeyResolver
from tzurot.inference.llm import LlmClient
from tzurot.inference.providers import ProviderRegistry
from tzurot.inference.reply_settings import ReplySettings, SkillRuntime
from tzurot.inference.service import Inference
from tzurot.inference.skills.base import SkillContext, SkillOutput
from tzurot.inference.skills.loop import LoopSettings
from tzurot.inference.skills.registry import SkillRegistry
from tzurot.testing.fake_provider import FakeProvider
from tzurot.testing.fake_tools import ToolCallSpec

KEY = "sk-bench-skills"
REQUEST = ReplyRequest(
    job_id="bench",
    user_id="bench-user",
    author_name="Ann",
    channel_id="bench-channel",
    character=Character(id="bench-p", name="Lilith", system_prompt="You are Lilith."),
    model=ModelChoice(provider="fakeai", model="fake/echo"),
    content="What time is it on the moon?",
    skills=("clock",),
)


class ClockSkill:
    """A trivial skill, so the figure measures the loop and not the skill."""

    name = "clock"
    description = "Tells the time."
    parameters: Mapping[str, Any] = {
        "type": "object",
        "properties": {"zone": {"type": "string", "maxLength": 40}},
        "additionalProperties": False,
    }
    stealth = False
    auto_memorize = False
    timeout = 5.0
    min_seconds = 0.0

    async def run(self, args: Mapping[str, Any], ctx: SkillContext) -> SkillOutput:
        return SkillOutput(text=f"It is 12:00 in {args.get('zone', 'UTC')}.")


class _Vault:
    async def decrypt(self, user_id: str, provider: str) -> SecretStr | None:
        return SecretStr(KEY)


class _History:
    async def recent_turns(
        self, channel_id: str, personality_id: str, limit: int, *, whole_channel: bool = False
    ) -> list[Any]:
        return []


def run(quick: bool) -> list[Figure]:
    return asyncio.run(_run(30 if quick else 200))


async def _turn(inference: Inference, request: ReplyRequest) -> float:
    started = time.perf_counter()
    finished = None
    async for event in inference.generate_reply(request):
        if isinstance(event, ReplyFinished):
            finished = event
    assert finished is not None
    return (time.perf_counter() - started) * 1000


async def _run(turns: int) -> list[Figure]:
    steps = 3
    async with FakeProvider(valid_keys={KEY}) as fake:
        llm = LlmClient(timeout_seconds=30.0)
        try:
            inference = Inference(
                providers=ProviderRegistry({"fakeai": fake.base_url}),
                keys=KeyResolver(_Vault()),
                history=_History(),
                llm=llm,
                settings=ReplySettings(),
                skills=SkillRuntime(
                    registry=SkillRegistry([ClockSkill()]),
                    loop=LoopSettings(max_steps=steps),
                ),
                clock=lambda: datetime(2026, 12, 2, 12, 0, tzinfo=UTC),
            )
            fake.reply = "It is noon on the moon, mortal."
            for _ in range(5):  # warm: connections, encodings
                await _turn(inference, REQUEST)
            plain: list[float] = []
            offered: list[float] = []
            looped: list[float] = []
            calling = ToolCallSpec("clock", {"zone": "Mare Tranquillitatis"})
            for _ in range(turns):  # interleaved, so a busy machine skews all three alike
                fake.keep_calling = None
                plain.append(await _turn(inference, replace(REQUEST, skills=())))
                offered.append(await _turn(inference, REQUEST))
                fake.keep_calling = calling
                looped.append(await _turn(inference, REQUEST))
            calls = len(fake.chat_requests())
        finally:
            await llm.aclose()
    per_step = [(loop - base) / steps for loop, base in zip(looped, offered, strict=True)]
    plain_p50 = summarise("p", plain).p50
    step = summarise("skills_step_overhead", per_step)
    step.extra.update(steps=steps, loop_own_ms=round(step.p50 - plain_p50, 2), provider_calls=calls)
    return [
        summarise("skills_turn_no_tools", plain),
        summarise("skills_turn_offered", offered),
        summarise(f"skills_turn_{steps}_steps", looped),
        step,
    ]
