"""The bounded tool loop: the model may call skills, their results go back, it is asked again.

- Skills are offered as OpenAI tools. When an answer carries `tool_calls`, every call of that
  round runs at once (they are independent by construction: the model asked for them
  together), each within its own time limit and the loop's remaining time (never past the
  reply's deadline, LoopTarget.deadline: a skill still running then would be cut off by the
  caller with the reply's report, its refused keys, unsent); the results,
  cut to a token budget, are appended as `tool` messages and the model is asked again.
  A call with less of the budget left than its skill's `min_seconds` is refused unstarted
  (the model reads why), so a paid call is never started only to be cancelled.
- Files (generated images) are paid for only when the answer can carry them (files.py): a
  skill that makes them is offered while one more fits, and a call starts only when the most
  it can make fits.
- Usage: a skill's paid calls (an image drawn, on the image model; a Brave search) are each
  reported after their round as a usage event of their own (UsageSpent, under that provider
  and model), also a call that failed after paying, or one cut off by its time limit once its
  request went out (failed: the provider may have billed it). The answer's own rounds are
  metered as each is paid (answer's `meter`): a reply that ends in an error reports them just
  before it raises (UsageSpent, failed), one that finishes in its LoopResult's usage. A round
  the provider broke off mid-answer is reported by answer() as it broke, estimated (UsageSpent,
  failed, estimated), never metered: so also when the reply then finishes (the note below).
  Each request is announced once the provider began answering it, at its first event
  (PromptSent, from answer(); never one refused or unanswered), and after each skill round
  (and as answer() abandons a silent attempt, its prompt estimated into the meter)
  what the rounds were billed so far (RoundsBilled, the meter: provisional, superseded by
  the LoopResult's usage or the failed report, `all_rounds`): a reply cancelled meanwhile can
  report nothing, and the gateway estimates it from these.
- When the final answer fails after skills made files or paid for images, the answer is a
  short note instead of the error: the files are delivered and the usage recorded.
- After `max_steps` rounds, `max_calls` calls, or when the time budget is spent, one last
  call offers the tools with `tool_choice: "none"`: the model must answer with text. All
  rounds share one deadline (LoopTarget.deadline: the caller's, or the answer's total_timeout
  from the reply's start); a round with less than its floor left is forced so too
  (answering.py).
- Only the final answer streams. Text of a round that may still turn into tool calls is
  held back (up to HOLD_TOOL_TEXT characters) until the round ends or clearly is the answer.
- A provider that refuses tools for the model (ToolsUnsupported) is remembered for a while
  (not when the request carried the user's own routing, which may be the cause), and the
  same question is asked again without tools.
- While a skill runs, a SkillActivity event tells the client the personality is working.
- A skill's service that refuses the key it was given (401: the image model's, Brave's) is
  said at once (KeyRefused, once per provider), while the round's other calls still run:
  the reply's later report may never come (inference killed, its loop stalled).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable, Coroutine, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import structlog
from pydantic import SecretStr

from tzurot.inference.answering import Answer, AnswerSettings, ToolOffer, answer
from tzurot.inference.cleanup import CompiledRule
from tzurot.inference.domain import (
    GeneratedFile,
    KeyRefused,
    PaidCall,
    PromptSent,
    RoundsBilled,
    SkillActivity,
    SkillStep,
    TextDelta,
    TokenUsage,
    ToolCall,
    UsageMeter,
    UsageSpent,
)
from tzurot.inference.params import AdvancedParameters
from tzurot.inference.ports import LanguageModel
from tzurot.inference.prompt import ChatMessage
from tzurot.inference.providers import Provider
from tzurot.inference.skills.base import MemoryWriter, Skill, SkillContext, SkillError, Spending
from tzurot.inference.skills.files import ANSWER_FILE_BYTES, FileRoom
from tzurot.inference.skills.registry import ToolSupport, parse_arguments, short, tool_definition
from tzurot.inference.tokens import TokenCounter
from tzurot.inference.tool_refusal import ToolsUnsupported
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
    max_file_bytes: int = ANSWER_FILE_BYTES


@dataclass(frozen=True)
class LoopResult:
    answer: Answer
    usage: TokenUsage
    steps: tuple[SkillStep, ...] = ()
    files: tuple[GeneratedFile, ...] = ()


LoopEvent = (
    TextDelta | SkillActivity | UsageSpent | PromptSent | RoundsBilled | KeyRefused | LoopResult
)


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
    deadline: float | None = None
    """When every round must be done (time.monotonic; the caller's deadline or the answer's
    total_timeout from the reply's start); None: total_timeout from the loop's start."""


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
        self._tools = tuple(tool_definition(s) for s in self._skills.values())
        self._ctx = ctx
        self._settings = settings
        self._support = support
        self._counter = counter
        self._memory = memory
        self._room = room_tokens if room_tokens is not None else settings.result_tokens * 4
        self._clock = clock
        self.refused_keys: set[str] = set()
        """Providers (and wallet services) whose key refused a skill's call: the reply does
        not report them as used (that would make a refused key active again)."""
        self._refused_now: asyncio.Queue[str] = asyncio.Queue()
        """Those refused since run() last said so (KeyRefused)."""

    async def run(
        self, target: LoopTarget, messages: Sequence[ChatMessage]
    ) -> AsyncGenerator[LoopEvent, None]:
        """Yields the final answer's text deltas, SkillActivity while skills run, UsageSpent
        for each skill call that paid, PromptSent as the provider begins answering each
        request (its first event), RoundsBilled after each skill round (what the rounds were
        billed so far), KeyRefused as a skill's service refuses its key, then one
        LoopResult.

        When it fails instead, what the answer's rounds were billed so far goes out first, as
        one UsageSpent (failed; request_type "": the reply's own kind, under its provider and
        model): no ReplyFinished will carry it. A LoopResult's usage carries it otherwise,
        so it is never counted twice."""
        meter = UsageMeter()
        try:
            async with aclosing(self._rounds(target, messages, meter)) as rounds:
                async for event in rounds:
                    yield event
        except TzurotError:
            if meter:
                usage = meter.usage
                spent = PaidCall(
                    "", target.provider.name, target.model, usage, estimated=usage.estimated
                )
                yield UsageSpent((spent,), failed=True, all_rounds=True)
            raise

    async def _rounds(
        self, target: LoopTarget, messages: Sequence[ChatMessage], meter: UsageMeter
    ) -> AsyncGenerator[LoopEvent, None]:
        """run()'s rounds; every answer call adds what it was billed to `meter`."""
        conversation = list(messages)
        target = _with_deadline(target)
        # The skills' budget, never past the reply's deadline: a skill still running then
        # would be cut by the caller with the reply's report (refused keys) unsent.
        assert target.deadline is not None  # _with_deadline sets it
        deadline = min(self._clock() + self._settings.time_budget, target.deadline)
        offered = bool(self._tools) and self._support.allows(target.provider.name, target.model)
        steps: list[SkillStep] = []
        room = FileRoom(self._settings.max_files, self._settings.max_file_bytes)
        calls = rounds = paid_images = 0
        while True:
            forced = (
                rounds >= self._settings.max_steps
                or calls >= self._settings.max_calls
                or self._clock() >= deadline
            )
            offer = self._offer(room, forced=forced) if offered else None
            try:
                final: Answer | None = None
                async with aclosing(self._ask(target, conversation, offer, meter)) as asked:
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
            except TzurotError as err:
                if not room.files and not paid_images:
                    raise
                # Paid for and ready: delivered with a note, not lost with the failed answer.
                log.warning("skills.answer_failed_after_files", reason=err.reason)
                final = _fallback(err, files=len(room.files))
            assert final is not None  # answer() ends with one or raises
            if not final.tool_calls:
                # Every round's calls (a failed last one's too); images are rows of their own.
                yield LoopResult(final, meter.usage, tuple(steps), tuple(room.files))
                return
            # Billed now: a reply cancelled while its skills run still counts this round.
            yield RoundsBilled(target.provider.name, target.model, meter.usage)
            rounds += 1
            wanted = final.tool_calls
            allowed = max(self._settings.max_calls - calls, 0)
            calls += len(wanted)
            refusals = [
                self._refusal(call, room, deadline, over_limit=index >= allowed)
                for index, call in enumerate(wanted)
            ]
            started = [c for c, why in zip(wanted, refusals, strict=True) if why is None]
            round_events = self._round(
                [SkillActivity(skill=call.name, step=rounds) for call in started],
                partial(
                    self._run_round,
                    wanted,
                    refusals,
                    step=rounds,
                    deadline=deadline,
                    room=room,
                    conversation=conversation,
                    steps=steps,
                ),
            )
            async with aclosing(round_events):
                async for said in round_events:
                    if isinstance(said, UsageSpent):
                        paid_images += sum(call.usage.images for call in said.paid)
                    yield said

    async def _round(
        self,
        activity: Sequence[SkillActivity],
        calls: Callable[[], Coroutine[object, object, list[UsageSpent]]],
    ) -> AsyncGenerator[SkillActivity | KeyRefused | UsageSpent, None]:
        """A round's `calls` run (started once `activity` was said: a caller gone by then
        starts none): each key a skill's service refuses, as it does (the round's other calls
        may run for long), then what they paid for, reported now (a later round's failure does
        not lose them)."""
        for started in activity:
            yield started
        running = asyncio.ensure_future(calls())
        try:
            async for refused in self._refusals_during(running):
                yield refused
            spent = running.result()
        finally:
            if not running.done():  # the reply was cancelled (or closed) meanwhile
                running.cancel()
                await asyncio.wait({running})
        for paid in spent:
            yield paid

    async def _refusals_during(
        self, running: asyncio.Future[list[UsageSpent]]
    ) -> AsyncGenerator[KeyRefused, None]:
        """Each key refused while `running` (a round's calls) runs, as it is refused, then
        those refused as it ended."""
        while not running.done():
            refused = asyncio.ensure_future(self._refused_now.get())
            either: tuple[asyncio.Future[Any], ...] = (running, refused)
            try:
                await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
            finally:
                refused.cancel()  # none taken: the key stays queued
            if refused.done() and not refused.cancelled():
                yield KeyRefused(refused.result())
        while not self._refused_now.empty():
            yield KeyRefused(self._refused_now.get_nowait())

    def _key_refused(self, name: str) -> None:
        """`name`'s key refused a skill's call: said once (KeyRefused), kept for the report."""
        if name not in self.refused_keys:
            self.refused_keys.add(name)
            self._refused_now.put_nowait(name)

    async def _run_round(  # the round's state, kept by run()
        self,
        wanted: Sequence[ToolCall],
        refusals: Sequence[str | None],
        *,
        step: int,
        deadline: float,
        room: FileRoom,
        conversation: list[ChatMessage],
        steps: list[SkillStep],
    ) -> list[UsageSpent]:
        """Runs (or refuses) the round's calls at once; their results join the conversation,
        their files the answer. Returns what they paid for."""
        budget = self._result_budget(len(wanted))
        outcomes = await asyncio.gather(
            *(
                self._refuse(call, step, why)
                if why is not None
                else self._call(call, step, deadline, budget)
                for call, why in zip(wanted, refusals, strict=True)
            )
        )
        room.keep(made for _, _, made, _ in outcomes)
        conversation.append(_assistant_calls(wanted))
        for call, (record, text, _, _) in zip(wanted, outcomes, strict=True):
            steps.append(record)
            conversation.append({"role": "tool", "tool_call_id": call.id, "content": text})
            self._room -= self._counter.count(text)
        return [spent for _, _, _, paid in outcomes for spent in paid]

    def _offer(self, room: FileRoom, *, forced: bool) -> ToolOffer:
        """The tools of a round: all of them uncallable when the answer is forced (or when
        none is left), else those whose files the answer could still carry."""
        tools = tuple(
            tool_definition(skill) for skill in self._skills.values() if room.offers(skill)
        )
        if forced or not tools:
            return ToolOffer(self._tools, "none")
        return ToolOffer(tools, "auto")

    def _refusal(
        self, call: ToolCall, room: FileRoom, deadline: float, *, over_limit: bool
    ) -> str | None:
        """Why the call is refused unstarted, or None (then room is held for its files)."""
        if over_limit:
            return "skill call limit reached for this answer"
        if self._starts_too_late(call, deadline):
            return f"too little time left to start {call.name}"
        if not room.hold(self._skills.get(call.name), call.arguments):
            return room.refusal()
        return None

    async def _ask(
        self,
        target: LoopTarget,
        conversation: list[ChatMessage],
        offer: ToolOffer | None,
        meter: UsageMeter,
    ) -> AsyncGenerator[TextDelta | UsageSpent | PromptSent | RoundsBilled | Answer, None]:
        """One round: the answer's deltas (held while it may become tool calls), then Answer;
        a broken-off attempt's estimate (UsageSpent), each request's PromptSent and the rounds
        billed once a silent attempt is abandoned (RoundsBilled) go out at once, never held."""
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
            deadline=target.deadline,
            meter=meter,
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
                if not holding or isinstance(event, UsageSpent | PromptSent | RoundsBilled):
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
    ) -> tuple[SkillStep, str, tuple[GeneratedFile, ...], tuple[UsageSpent, ...]]:
        """The call's record, its result for the model, its files and what it paid for
        (noted by the skill as it paid: also when it failed or was cut off)."""
        started = self._clock()
        skill = self._skills.get(call.name)
        files: tuple[GeneratedFile, ...] = ()
        spending = Spending()
        stealth = skill.stealth if skill is not None else False
        limit = 0.0
        try:
            if skill is None:
                raise SkillError(f"no skill named {call.name!r} is available")
            args = parse_arguments(skill, call.arguments)
            limit = max(min(skill.timeout, deadline - self._clock()), 1.0)
            ctx = replace(self._ctx, retry=self._ctx.retry.within(limit), spending=spending)
            async with asyncio.timeout(limit):
                output = await skill.run(args, ctx)
            if skill.auto_memorize and output.memorize and self._memory is not None:
                await self._remember(output.memorize, output.memorize_tags)
            ok, text, summary, files = True, output.text, output.summary, output.files
        except SkillError as exc:
            ok, text, summary = False, f"error: {exc}", f"error: {exc}"
            if exc.refused_key:
                self._key_refused(exc.refused_key)
        except TimeoutError:
            message = f"error: {call.name} took longer than {limit:g} s"
            ok, text, summary = False, message, message
        except TzurotError as err:  # typed errors say nothing secret (no provider text)
            ok, text, summary = False, f"error: {err.message}", f"error: {err.reason}"
            if err.reason == "INVALID_API_KEY" and err.metadata.get("provider"):
                self._key_refused(err.metadata["provider"])  # the image model's key
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
        return step_record, self._cut(text, budget), files, tuple(spending.spent)

    async def _refuse(
        self, call: ToolCall, step: int, why: str
    ) -> tuple[SkillStep, str, tuple[GeneratedFile, ...], tuple[UsageSpent, ...]]:
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
        return record, f"error: {why}; answer with what you have", (), ()

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


def _with_deadline(target: LoopTarget) -> LoopTarget:
    """The target with one deadline for all its rounds, never a fresh one for each."""
    if target.deadline is not None:
        return target
    return replace(target, deadline=time.monotonic() + target.settings.total_timeout)


def _fallback(err: TzurotError, *, files: int) -> Answer:
    """The answer when the model failed after skills made files or paid for images."""
    made = "; here is what was made" if files else ""
    return Answer(
        content=f"*The answer could not be finished ({err.message}){made}.*",
        reasoning="",
        usage=TokenUsage(0, 0),
        finish_reason="error",
        attempts=1,
    )


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
