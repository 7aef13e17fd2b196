"""Inference's use-cases: generate a reply, validate a key. No gRPC here.

A reply: check the config's parameters, resolve whose key pays, read the recent history and
the relevant long-term memories, read the attachments, build the prompt within the model's
budget, stream the provider's answer (see answering.py), then report content, reasoning,
usage and which context was used.

The context is read in reply_context.py, attachments and facts by the helper models in
helper_models.py, the skills' loop set up in reply_skills.py, keys checked in key_checks.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from dataclasses import replace
from datetime import UTC, datetime

import structlog

from tzurot.inference.attachments import AttachmentReader, Prepared
from tzurot.inference.cleanup import BadRule, CompiledRule, compile_rules
from tzurot.inference.coalesce import coalesced
from tzurot.inference.concurrent import both
from tzurot.inference.domain import (
    PromptReport,
    ReplyEvent,
    ReplyFinished,
    ReplyRequest,
)
from tzurot.inference.group_view import answered_already, others
from tzurot.inference.helper_models import HelperModels
from tzurot.inference.key_checks import KeyChecks
from tzurot.inference.keys import (
    KeyResolver,
    refusal_names_key,
    refusals_named,
    track_user_key_uses,
)
from tzurot.inference.lore.macros import MacroContext, expand, expand_character
from tzurot.inference.lore.matching import LORE_REGEX_BUDGET_SPENT, RegexBudget
from tzurot.inference.lore.prompting import run_lore
from tzurot.inference.params import parse_advanced_parameters
from tzurot.inference.ports import (
    HistorySource,
    LanguageModel,
    MemorySource,
    ReplyContextSource,
)
from tzurot.inference.prompt import Budget, PromptInput
from tzurot.inference.prompt_build import build_prompt
from tzurot.inference.providers import ProviderRegistry
from tzurot.inference.reply_context import ContextReading, NoMemories
from tzurot.inference.reply_settings import ReplySettings, SkillRuntime
from tzurot.inference.reply_skills import SkillLoops, refusals_said, refused_before_failing
from tzurot.inference.retries import RetryPolicy
from tzurot.inference.skills.loop import LoopResult, LoopTarget
from tzurot.inference.tokens import TokenCounter
from tzurot.runtime import metrics
from tzurot.runtime.errors import InvalidArgument

RECENT_REPLIES = 5

log = structlog.get_logger(__name__)


def _user_name(request: ReplyRequest) -> str:
    """What {{user}} becomes: the persona's preferred name, else the display name, on one
    line (it lands in the system message: a line break in it could start a section there)."""
    if request.persona is not None and request.persona.preferred_name.strip():
        return " ".join(request.persona.preferred_name.split())
    return " ".join(request.author_name.split())


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Inference(ContextReading, HelperModels, KeyChecks, SkillLoops):
    """The use-cases behind the InferenceService RPCs."""

    def __init__(
        self,
        *,
        providers: ProviderRegistry,
        keys: KeyResolver,
        history: HistorySource,
        llm: LanguageModel,
        history_limit: int | None = None,
        settings: ReplySettings | None = None,
        memories: MemorySource | None = None,
        context: ReplyContextSource | None = None,
        attachments: AttachmentReader | None = None,
        skills: SkillRuntime | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._providers = providers
        self._keys = keys
        self._history = history
        self._llm = llm
        settings = settings or ReplySettings()
        if history_limit is not None:
            settings = replace(settings, history_limit=history_limit)
        self._settings = settings
        self._memories: MemorySource = memories or NoMemories()
        self._context = context
        self._attachments = attachments
        self._skills = skills
        self._clock = clock

    def generate_reply(
        self, request: ReplyRequest, *, time_limit: float | None = None
    ) -> AsyncGenerator[ReplyEvent, None]:
        """Yields an AttachmentRead for each attachment a helper model read (as it is paid
        for), the answer's text deltas in order (merged to at most one per
        `stream_interval_seconds`, the first at once), a UsageSpent for each skill call that
        paid (an image drawn, a Brave search), then one ReplyFinished. A reply that fails
        after its answer paid for calls sends them (UsageSpent, failed) just before the error.

        `time_limit`: seconds the caller waits (its gRPC deadline), which bound the helper
        models' retries and the answer: all its rounds end by that deadline or the answer's
        total_timeout from now, whichever is sooner (AnswerSettings), and a wait that would
        outlast it is not waited out (a 429 is the outcome, with its Retry-After). The reply
        ends `report_grace_seconds` (at most a quarter of `time_limit`) before that deadline:
        an answer still streaming, or a skill still running, is cut off then, and its error
        goes out with what it must say (the failed usage, `refused_key_providers`) while the
        caller still listens."""
        if time_limit is not None:
            time_limit -= min(self._settings.report_grace_seconds, max(time_limit, 0.0) / 4)
        reply = self._reply(request, self._retry_policy(time_limit))
        return coalesced(reply, self._settings.stream_interval_seconds)

    async def _reply(
        self, request: ReplyRequest, retry: RetryPolicy
    ) -> AsyncGenerator[ReplyEvent, None]:
        _check_reply_request(request)
        # One deadline for the whole answer, counted from here (before context and
        # attachments are read), and never past the caller's: every tool round shares it.
        answer_by = retry.within(self._settings.answer.total_timeout).deadline
        keys_used = track_user_key_uses()
        params = parse_advanced_parameters(request.model.advanced_parameters)
        rules = self._settings.cleanup_rules + _personality_rules(request)
        provider = self._providers.get(request.model.provider)
        # The key is decrypted while memory is read: its round trip costs no time.
        key, (history, memories, degraded) = await both(
            self._keys.resolve(
                request.user_id,
                provider,
                free_use=request.model.free_use,
                model=request.model.model,
            ),
            self._read_context(request),
        )
        directive, scheduled = request.directive, not request.content.strip()
        if request.group and not directive and answered_already(history, request.message_ids):
            directive = (
                f"{request.author_name} spoke to the group above and others may have "
                f"answered already. Answer as {request.character.name}, in your own voice."
            )
        prepared = Prepared()
        # Each attachment a helper model reads goes out as soon as it is paid for (the
        # gateway records it and gives it back on the job's next attempt), and so does a
        # helper call that failed once sent, estimated (UsageSpent, failed).
        reading = self._prepare_attachments(request, provider, params, prepared, retry)
        async with aclosing(reading):
            async for read in reading:
                yield read
        content = "\n".join(part for part in (request.content, *prepared.notes) if part)
        references = request.references
        if request.model.max_referenced_messages > 0:
            references = references[: request.model.max_referenced_messages]
        budget = Budget(
            context_window=request.model.context_window or self._settings.default_context_window,
            max_output_tokens=params.max_tokens,
            reference_share=self._settings.reference_share,
        )
        counter = TokenCounter(request.model.model)
        macros = MacroContext(
            char=request.character.nickname or request.character.name,
            user=_user_name(request),
            seed=request.job_id,
        )
        character = expand_character(request.character, macros)
        lore = None
        if request.lore is not None:
            regex_budget = RegexBudget()
            # In a worker thread: the scan is CPU (regex keys up to their budget), and every
            # other reply of this process would wait while it held the event loop.
            lore = await asyncio.to_thread(
                run_lore,
                request.lore,
                history,
                f"{_user_name(request)}: {content}",
                budget_cap=budget.memory_cap,
                count=counter.count,
                substitute=lambda text: expand(text, macros),
                seed=request.job_id,
                regex_budget=regex_budget,
            )
            if regex_budget.spent:
                _regex_budget_spent(request, regex_budget)
                degraded = (*degraded, LORE_REGEX_BUDGET_SPENT)
        prompt = build_prompt(
            PromptInput(
                character=character,
                # A scheduled turn answers nobody: its payer is not in the conversation.
                author_name="" if scheduled and directive else request.author_name,
                author_id="" if scheduled and directive else request.author_id,
                content=content,
                directive=directive,
                group=others(request.group, request.character.id),
                history=history,
                # A scheduled turn speaks to nobody: no one's persona (the gateway sends none).
                persona=None if request.shared_context else request.persona,
                memories=memories,
                references=references,
                mentions=request.mentions,
                images=prepared.images,
                timezone=request.timezone,
                now=self._clock(),
                lore=() if lore is None else lore.activated,
            ),
            budget,
            counter,
        )
        report = PromptReport(
            prompt_tokens_estimate=prompt.tokens,
            history_turns=prompt.history_turns,
            key_source=key.source,
            memory_ids=prompt.memory_ids,
            referenced_message_ids=prompt.referenced_message_ids,
            lore=tuple(a for a in (lore.activated if lore else ()) if a not in prompt.lore_dropped),
            lore_dropped=(*(lore.dropped if lore else ()), *prompt.lore_dropped),
            memories=tuple(m for m in memories if m.id in set(prompt.memory_ids)),
            degraded=degraded,
        )
        recent = [t.content for t in history if t.role == "assistant"][-RECENT_REPLIES:]
        counter = TokenCounter(request.model.model)
        window = request.model.context_window or self._settings.default_context_window
        reserve = params.max_tokens or window // 20
        room = window - prompt.tokens - reserve
        loop = self._tool_loop(request, history, counter, room=room, retry=retry)
        # A wallet key refused is said now (KeyRefused), for gateway to mark it inactive even
        # if this reply never ends; the report below names it again.
        events = refusals_said(
            loop.run(
                LoopTarget(
                    llm=self._llm,
                    provider=provider,
                    api_key=key.api_key,
                    model=request.model.model,
                    # The operator's key (a free model only): no fallback to paid models.
                    params=params.for_operator_key() if key.source == "system" else params,
                    name=request.character.name,
                    recent=recent,
                    rules=rules,
                    settings=self._settings.answer,
                    deadline=answer_by,
                ),
                prompt.messages,
            ),
            lambda refused: refused in keys_used,
            provider,
            key,
        )
        final: LoopResult | None = None
        async with aclosing(events):  # a caller that goes away ends the provider call now
            # Whose key was refused: gateway marks a user's stored key inactive. A reply that
            # fails after a skill's service refused a wallet key says so in its error.
            with (
                refusal_names_key(provider.name, key.source),
                refusals_named(lambda: refused_before_failing(loop, keys_used, provider, key)),
            ):
                async for event in events:
                    if isinstance(event, LoopResult):
                        final = event
                    else:
                        yield event
        assert final is not None  # the loop ends with one or raises
        # A wallet key a skill's service refused (401) while the reply went on: gateway marks
        # it inactive. Only a key taken from the user's wallet: never the operator's.
        refused_by_skills = loop.refused_keys & keys_used
        yield ReplyFinished(
            content=final.answer.content,
            provider=provider.name,
            model=request.model.model,
            usage=final.usage,
            finish_reason=final.answer.finish_reason,
            # A key refused is not reported used: that would make it active again.
            report=replace(
                report,
                skill_steps=final.steps,
                user_key_providers=tuple(
                    sorted(keys_used - prepared.refused_keys - loop.refused_keys)
                ),
                refused_key_providers=tuple(sorted(refused_by_skills)),
            ),
            reasoning=final.answer.reasoning,
            attachments=tuple(prepared.attachments),
            user_content=content,
            lore=lore,
            files=final.files,
        )

    def provider_names(self) -> list[str]:
        """The LLM providers' names: the built-in ones and the operator's (sorted)."""
        return self._providers.names

    def speech_provider_names(self) -> list[str]:
        """Those of them that serve `/audio/speech` (built in, or declared so; sorted)."""
        return self._providers.speech_names

    def keyless_provider_names(self) -> list[str]:
        """Those of them that take no key (the local servers, or declared so; sorted)."""
        return self._providers.keyless_names


def _regex_budget_spent(request: ReplyRequest, spent: RegexBudget) -> None:
    """Once per reply, by ids only (keys and messages are users' text)."""
    book_id, entry_uid = spent.spent_on or ("", "")
    log.warning(
        "lore.regex_budget_spent",
        personality_id=request.character.id,
        job_id=request.job_id,
        book_ids=[b.id for b in request.lore.books] if request.lore else [],
        book_id=book_id,
        entry_uid=entry_uid[:64],  # a world info uid is the importer's string
        searches=spent.searches,
        skipped=spent.skipped,
    )
    metrics.record_degraded(LORE_REGEX_BUDGET_SPENT)


def _personality_rules(request: ReplyRequest) -> tuple[CompiledRule, ...]:
    try:
        return compile_rules(request.character.cleanup_rules)
    except BadRule as exc:
        raise InvalidArgument(
            f"personality.cleanup_rules[{exc.index}].pattern",
            str(exc),
            reason="INVALID_CLEANUP_RULE",
        ) from None


def _check_reply_request(request: ReplyRequest) -> None:
    if not request.user_id:
        raise InvalidArgument("user_id", "user_id is required")
    if not request.model.provider:
        raise InvalidArgument("config.config.provider", "the LLM config names no provider")
    if not request.model.model:
        raise InvalidArgument("config.config.model", "the LLM config names no model")
    if request.max_history_messages < 0:
        raise InvalidArgument("max_history_messages", "max_history_messages must not be negative")
