"""The bounded tool loop: the model may call skills, their results go back, it is asked again.

- Skills are offered as OpenAI tools. When an answer carries `tool_calls`, every call of that
  round runs at once (they are independent by construction: the model asked for them
  together), each within its own time limit and the loop's remaining time; the results,
  cut to a token budget, are appended as `tool` messages and the model is asked again.
  A call with less of the budget left than its skill's `min_seconds` is refused unstarted
  (the model reads why), so a paid call is never started only to be cancelled.
- After `max_steps` rounds, `max_calls` calls, or when the time budget is spent, one last
  call offers the tools with `tool_choice: "none"`: the model must answer with text.
- Only the final answer streams. Text of a round that may still turn into tool calls is
  held back (up to HOLD_TOOL_TEXT characters) until the round ends or clearly is the answer.
- A provider that refuses tools for the model (ToolsUnsupported) is remembered for a while
  (not when the request carried the user's own routing, which may be the cause), and the
  same question is asked again without tools.
- While a skill runs, a SkillActivity event tells the client the personality is working.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field

import structlog
from pydantic import SecretStr

from tzurot.inference.answering import Answer, AnswerSettings, ToolOffer, answer
from tzurot.inference.cleanup import CompiledRule
from tzurot.inference.domain import (
    GeneratedFile,
    SkillActivity,
    SkillStep,
    TextDelta,
    TokenUsage,
    ToolCall,
)
from tzurot.inference.llm import ToolsUnsupported
from tzurot.inference.params import AdvancedParameters
from tzurot.inference.ports import LanguageModel
from tzurot.inference.prompt import ChatMessage
from tzurot.inference.providers import Provider
from tzurot.inference.skills.base import MemoryWriter, Skill, SkillContext, SkillError
from tzurot.inference.skills.registry import ToolSupport, parse_arguments, short, tool_definition
from tzurot.inference.tokens import TokenCounter
from tzurot.runtime.errors import TzurotError

log = structlog.get_logger(__name__)

HOLD_TOOL_TEXT = 200
"""Characters of a round's text held back while the round may still become tool calls."""
MIN_RESULT_TOKENS = 64
CUT_NOTE = "\n[cut: the result was longer]"


@dataclass(frozen=True)
class LoopSettings:
    max_steps: int = 3
    time_budget: float = 60.0
    max_calls: int = 8
    result_tokens: int = 1500
    max_files: int = 4


@dataclass(frozen=True)
class LoopResult:
    answer: Answer
    usage: TokenUsage
    steps: tuple[SkillStep, ...] = ()
    files: tuple[GeneratedFile, ...] = ()


@dataclass(frozen=True)
class LoopTarget:
    """The reply's model call: who answers, with which key and parameters."""

    llm: LanguageModel
    provider: Provider
    api_key: SecretStr = field(repr=False)
    model: str
    params: AdvancedParameters
    name: str
    recent: Sequence[str]
    rules: Sequence[CompiledRule]
    settings: AnswerSettings


class ToolLoop:
    def __init__(  # the loop's collaborators, all keyword-only
        self,
        *,
        skills: Sequence[Skill],
        ctx: SkillContext,
        settings: LoopSettings,
        support: ToolSupport,
        counter: TokenCounter,
        memory: MemoryWriter | None = None,
        room_tokens: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._skills = {skill.name: skill for skill in skills}
        self._ctx = ctx
        self._settings = settings
        self._support = support
        self._counter = counter
        self._memory = memory
        self._room = room_tokens if room_tokens is not None else settings.result_tokens * 4
        self._clock = clock

    async def run(
        self, target: LoopTarget, messages: Sequence[ChatMessage]
    ) -> AsyncGenerator[TextDelta | SkillActivity | LoopResult, None]:
        """Yields the final answer's text deltas, SkillActivity while skills run, then one
        LoopResult."""
        conversation = list(messages)
        deadline = self._clock() + self._settings.time_budget
        tools = tuple(tool_definition(s) for s in self._skills.values())
        offered = bool(tools) and self._support.allows(target.provider.name, target.model)
        steps: list[SkillStep] = []
        files: list[GeneratedFile] = []
        input_tokens = output_tokens = calls = rounds = 0
        while True:
            forced = (
                rounds >= self._settings.max_steps
                or calls >= self._settings.max_calls
                or self._clock() >= deadline
            )
            offer = ToolOffer(tools, "none" if forced else "auto") if offered else None
            try:
                final: Answer | None = None
                async with aclosing(self._ask(target, conversation, offer)) as asked:
                    async for event in asked:
                        if isinstance(event, Answer):
                            final = event
                        else:
                            yield event
            except ToolsUnsupported as refusal:
                if not offered:
                    raise
                log.info(
                    "skills.tools_refused",
                    provider=target.provider.name,
                    model=target.model,
                    routed=refusal.routed,
                )
                if not refusal.routed:  # the user's routing may be what excluded tool use
                    self._support.refused(target.provider.name, target.model)
                offered = False
                continue
            assert final is not None  # answer() ends with one or raises
            input_tokens += final.usage.input_tokens
            output_tokens += final.usage.output_tokens
            if not final.tool_calls:
                usage = TokenUsage(input_tokens, output_tokens, images=len(files))
                yield LoopResult(final, usage, tuple(steps), tuple(files))
                return
            rounds += 1
            wanted = final.tool_calls
            allowed = max(self._settings.max_calls - calls, 0)
            calls += len(wanted)
            late = [self._starts_too_late(call, deadline) for call in wanted]
            for call, too_late in zip(wanted[:allowed], late, strict=False):
                if not too_late:
                    yield SkillActivity(skill=call.name, step=rounds)
            budget = self._result_budget(len(wanted))
            outcomes = await asyncio.gather(
                *(
                    self._refuse(call, rounds, "skill call limit reached for this answer")
                    if index >= allowed
                    else self._refuse(call, rounds, f"too little time left to start {call.name}")
                    if late[index]
                    else self._call(call, rounds, deadline, budget)
                    for index, call in enumerate(wanted)
                )
            )
            conversation.append(_assistant_calls(wanted))
            for call, (step, text, made) in zip(wanted, outcomes, strict=True):
                steps.append(step)
                room = self._settings.max_files - len(files)
                files.extend(made[: max(room, 0)])
                conversation.append({"role": "tool", "tool_call_id": call.id, "content": text})
                self._room -= self._counter.count(text)

    async def _ask(
        self, target: LoopTarget, conversation: list[ChatMessage], offer: ToolOffer | None
    ) -> AsyncGenerator[TextDelta | Answer, None]:
        """One round: the answer's deltas (held while it may become tool calls), then Answer."""
        events = answer(
            target.llm,
            target.provider,
            target.api_key,
            model=target.model,
            params=target.params,
            messages=conversation,
            name=target.name,
            recent=target.recent,
            rules=target.rules,
            settings=target.settings,
            tools=offer,
        )
        holding = offer is not None and offer.callable
        held: list[TextDelta] = []
        async with aclosing(events):
            async for event in events:
                if isinstance(event, Answer):
                    if not event.tool_calls:
                        for delta in held:
                            yield delta
                    yield event
                    return
                if not holding:
                    yield event
                    continue
                held.append(event)
                if sum(len(d.text) for d in held) >= HOLD_TOOL_TEXT:
                    holding = False
                    for delta in held:
                        yield delta
                    held.clear()

    def _starts_too_late(self, call: ToolCall, deadline: float) -> bool:
        """Whether less of the budget is left than the skill needs to be worth starting."""
        skill = self._skills.get(call.name)
        return skill is not None and deadline - self._clock() < skill.min_seconds

    def _result_budget(self, calls: int) -> int:
        share = self._room // max(calls, 1)
        return max(MIN_RESULT_TOKENS, min(self._settings.result_tokens, share))

    async def _call(
        self, call: ToolCall, step: int, deadline: float, budget: int
    ) -> tuple[SkillStep, str, tuple[GeneratedFile, ...]]:
        started = self._clock()
        skill = self._skills.get(call.name)
        files: tuple[GeneratedFile, ...] = ()
        stealth = skill.stealth if skill is not None else False
        limit = 0.0
        try:
            if skill is None:
                raise SkillError(f"no skill named {call.name!r} is available")
            args = parse_arguments(skill, call.arguments)
            limit = max(min(skill.timeout, deadline - self._clock()), 1.0)
            async with asyncio.timeout(limit):
                output = await skill.run(args, self._ctx)
            if skill.auto_memorize and output.memorize and self._memory is not None:
                await self._remember(output.memorize, output.memorize_tags)
            ok, text, summary, files = True, output.text, output.summary, output.files
        except SkillError as exc:
            ok, text, summary = False, f"error: {exc}", f"error: {exc}"
        except TimeoutError:
            message = f"error: {call.name} took longer than {limit:g} s"
            ok, text, summary = False, message, message
        except TzurotError as err:  # typed errors say nothing secret (no provider text)
            ok, text, summary = False, f"error: {err.message}", f"error: {err.reason}"
        except Exception:
            log.exception("skills.failed", skill=call.name)
            ok, text, summary = False, "error: the skill failed", "error: the skill failed"
        step_record = SkillStep(
            step=step,
            skill=call.name,
            arguments=short(call.arguments),
            summary=short(summary or text),
            duration_ms=round((self._clock() - started) * 1000),
            ok=ok,
            stealth=stealth,
        )
        return step_record, self._cut(text, budget), files

    async def _refuse(
        self, call: ToolCall, step: int, why: str
    ) -> tuple[SkillStep, str, tuple[GeneratedFile, ...]]:
        skill = self._skills.get(call.name)
        record = SkillStep(
            step=step,
            skill=call.name,
            arguments=short(call.arguments),
            summary=f"error: {why}",
            duration_ms=0,
            ok=False,
            stealth=skill.stealth if skill is not None else False,
        )
        return record, f"error: {why}; answer with what you have", ()

    async def _remember(self, text: str, tags: tuple[str, ...]) -> None:
        assert self._memory is not None
        try:
            await self._memory.remember(
                self._ctx.personality_id, text, tags=tags, on_behalf_of=self._ctx.user_id
            )
        except TzurotError as err:  # the answer still stands; the memory is lost, and said so
            log.warning("skills.memorize_failed", reason=err.reason)

    def _cut(self, text: str, budget: int) -> str:
        """`text` within `budget` tokens, marked when it was cut."""
        if self._counter.count(text) <= budget:
            return text
        text = text[: budget * 8]
        low, high = 0, len(text)
        limit = budget - self._counter.count(CUT_NOTE)
        while low < high:
            middle = (low + high + 1) // 2
            if self._counter.count(text[:middle]) <= limit:
                low = middle
            else:
                high = middle - 1
        return text[:low] + CUT_NOTE


def _assistant_calls(calls: Sequence[ToolCall]) -> ChatMessage:
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments or "{}"},
                # Only where the provider sent it (Gemini 3 refuses the round without it).
                **({"extra_content": dict(call.extra_content)} if call.extra_content else {}),
            }
            for call in calls
        ],
    }
