"""Inference's use-cases: generate a reply, validate a key. No gRPC here.

A reply: check the config's parameters, resolve whose key pays, read the recent history and
the relevant long-term memories, read the attachments, build the prompt within the model's
budget, stream the provider's answer (see answering.py), then report content, reasoning,
usage and which context was used.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import structlog
from pydantic import SecretStr

from tzurot.inference.answering import AnswerSettings
from tzurot.inference.attachments import (
    AttachmentReader,
    ModelTarget,
    Prepared,
    kind_of,
)
from tzurot.inference.cleanup import BadRule, CompiledRule, compile_rules
from tzurot.inference.coalesce import coalesced
from tzurot.inference.concurrent import both
from tzurot.inference.dialects import helper_call, supports_vision
from tzurot.inference.domain import (
    FACT_EXTRACTION,
    HISTORY_UNAVAILABLE,
    MEMORY_UNAVAILABLE,
    AttachmentRead,
    HistoryTurn,
    KeyRefused,
    MemoryItem,
    PaidCall,
    PromptReport,
    ReplyContextQuery,
    ReplyEvent,
    ReplyFinished,
    ReplyRequest,
    ResolvedKey,
    TokenUsage,
    UsageSpent,
)
from tzurot.inference.fact_extraction import ExtractedFact, parse_facts
from tzurot.inference.group_view import answered_already, group_history, others
from tzurot.inference.keys import (
    KeyResolver,
    refusal_names_key,
    refusals_named,
    track_user_key_uses,
)
from tzurot.inference.lore.macros import MacroContext, expand, expand_character
from tzurot.inference.lore.matching import LORE_REGEX_BUDGET_SPENT, RegexBudget
from tzurot.inference.lore.prompting import run_lore
from tzurot.inference.memory_query import memory_query
from tzurot.inference.params import AdvancedParameters, parse_advanced_parameters
from tzurot.inference.ports import (
    HistorySource,
    LanguageModel,
    MemorySource,
    ReplyContextSource,
)
from tzurot.inference.prompt import Budget, ChatMessage, PromptInput, build_prompt
from tzurot.inference.providers import Provider, ProviderRegistry
from tzurot.inference.retries import RetryPolicy, helper_completion, whole_answer
from tzurot.inference.skills.base import MemoryWriter, Skill, SkillContext
from tzurot.inference.skills.loop import (
    LoopEvent,
    LoopResult,
    LoopSettings,
    LoopTarget,
    ToolLoop,
)
from tzurot.inference.skills.registry import SkillRegistry, ToolSupport
from tzurot.inference.thinking import split_thinking
from tzurot.inference.tokens import TokenCounter
from tzurot.runtime import metrics
from tzurot.runtime.errors import InvalidArgument, TzurotError

MAX_HISTORY_MESSAGES = 500
"""The most turns one prompt asks memory for (memory's own cap)."""
REPLACED_TURNS = 2
"""The turns of one exchange at most (the user's message, the answer): a 🔄's prompt asks
memory for this many more, as it leaves out those of the exchange it replaces."""
MAX_API_KEY_CHARS = 4096
RECENT_REPLIES = 5
DEFAULT_MEMORY_LIMIT = 10
KEY_CHECK_RETRIES = 1
"""A key check (free) is asked again once at most: on a dead network the user hears so in
about a second, not after attempts x retries."""

log = structlog.get_logger(__name__)


def _user_name(request: ReplyRequest) -> str:
    """What {{user}} becomes: the persona's preferred name, else the display name, on one
    line (it lands in the system message: a line break in it could start a section there)."""
    if request.persona is not None and request.persona.preferred_name.strip():
        return " ".join(request.persona.preferred_name.split())
    return " ".join(request.author_name.split())


def _refused_before_failing(
    loop: ToolLoop, keys_used: set[str], answer: Provider, key: ResolvedKey
) -> set[str]:
    """The wallet keys a skill's service refused (401) before the reply failed: only keys
    taken from the user's wallet, and never the answer's own, which answered the round that
    called the skills (it works; gateway treats a finished reply's alike)."""
    answer_key = {answer.name} if key.source == "user" else set()
    return (loop.refused_keys & keys_used) - answer_key


async def _refusals_said(
    events: AsyncGenerator[LoopEvent, None],
    from_wallet: Callable[[str], bool],
    answer: Provider,
    key: ResolvedKey,
) -> AsyncGenerator[LoopEvent, None]:
    """The loop's `events`, its KeyRefused only for a key taken from the user's wallet
    (`from_wallet`) and never the answer's own (it answered the round that called the
    skill: it works), as `_refused_before_failing` names them."""
    async with aclosing(events):
        async for event in events:
            if isinstance(event, KeyRefused) and (
                not from_wallet(event.provider)
                or (key.source == "user" and event.provider == answer.name)
            ):
                continue
            yield event


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ModelName:
    provider: str
    model: str


@dataclass(frozen=True)
class ReplySettings:
    """The operator's choices for every reply."""

    history_limit: int = 30
    default_context_window: int = 32_768
    reference_share: float = 0.5
    answer: AnswerSettings = field(default_factory=AnswerSettings)
    cleanup_rules: tuple[CompiledRule, ...] = ()
    vision: ModelName | None = None
    transcription: ModelName | None = None
    transcript_cleanup: ModelName | None = None
    stream_interval_seconds: float = 0.1
    """Text deltas are merged so at most one goes out per interval (coalesce.py); 0: each."""
    report_grace_seconds: float = 2.0
    """A reply ends this long before its caller's deadline (never more than a quarter of the
    caller's time), so its error (the failed usage, the wallet keys refused on the way)
    reaches the caller before the caller's own cut."""


@dataclass(frozen=True)
class SkillRuntime:
    """The skills on offer and the loop's bounds (operator settings)."""

    registry: SkillRegistry
    loop: LoopSettings = field(default_factory=LoopSettings)
    support: ToolSupport = field(default_factory=ToolSupport)
    memory: MemoryWriter | None = None


class NoMemories:
    """A MemorySource for when long-term memory is not wired."""

    async def relevant_memories(self, **_: object) -> list[MemoryItem]:
        return []


class Inference:
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

    def _retry_policy(self, time_limit: float | None = None) -> RetryPolicy:
        """The operator's retries (those of an answer), for a caller waiting `time_limit`."""
        answer = self._settings.answer
        policy = RetryPolicy(failures=answer.failure_retries, backoff=answer.retry_backoff)
        return policy.within(time_limit)

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
        reading = self._prepare_attachments(request, params, prepared, retry)
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
        events = _refusals_said(
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
                refusals_named(lambda: _refused_before_failing(loop, keys_used, provider, key)),
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

    def _tool_loop(
        self,
        request: ReplyRequest,
        history: Sequence[HistoryTurn],
        counter: TokenCounter,
        *,
        room: int,
        retry: RetryPolicy,
    ) -> ToolLoop:
        """The reply's loop: the personality's enabled skills (none when skills are off)."""
        runtime = self._skills
        enabled = runtime.registry.for_personality(request.skills) if runtime else []
        stamps = [turn.created_at for turn in history if turn.created_at is not None]
        user_id = request.user_id

        async def provider_key(name: str, model: str) -> tuple[Provider, SecretStr]:
            provider = self._providers.get(name)
            resolved = await self._keys.resolve(user_id, provider, free_use=False, model=model)
            return provider, resolved.api_key

        async def wallet_key(name: str) -> SecretStr | None:
            return await self._keys.service_key(user_id, name)

        context = SkillContext(
            # A scheduled turn's skills search and add shared memories only; its payer pays.
            user_id=request.memory_user_id,
            personality_id=request.character.id,
            exclude_after=min(stamps) if stamps else None,
            memory_threshold=request.memory_threshold,
            free_use=request.model.free_use,
            provider_key=provider_key,
            wallet_key=wallet_key,
            retry=retry,  # each skill call bounds it by its own time limit too
        )
        return ToolLoop(
            skills=enabled,
            ctx=context,
            settings=runtime.loop if runtime else LoopSettings(),
            support=runtime.support if runtime else ToolSupport(),
            counter=counter,
            memory=runtime.memory if runtime else None,
            room_tokens=max(room, 0),
        )

    def list_skills(self) -> list[Skill]:
        """ListSkills: what the operator offers (after the global switch)."""
        return self._skills.registry.available() if self._skills else []

    def provider_names(self) -> list[str]:
        """The LLM providers' names: the built-in ones and the operator's (sorted)."""
        return self._providers.names

    async def _read_context(
        self, request: ReplyRequest
    ) -> tuple[list[HistoryTurn], list[MemoryItem], tuple[str, ...]]:
        """The history (a group's as this personality sees it), the relevant memories, and
        what the answer goes without. One call to memory when the message is the query (it
        has text, and there is history to read); else the history, then the memories for
        a query found in it (a scheduled turn's)."""
        ask = self._context_query(request)
        if ask is None or self._context is None:
            history, history_degraded = await self._history_or_degraded(request)
            history = self._group_view(request, history)
            memories, degraded = await self._relevant_memories(request, history)
            return history, memories, history_degraded + degraded
        try:
            found = await self._context.reply_context(ask)
        except TzurotError as err:
            _unavailable("history.unavailable", err, request)
            _unavailable("memory.unavailable", err, request)
            metrics.record_degraded(HISTORY_UNAVAILABLE)
            metrics.record_degraded(MEMORY_UNAVAILABLE)
            return [], [], (HISTORY_UNAVAILABLE, MEMORY_UNAVAILABLE)
        turns = without_replaced(found.turns, request, self._history_limit(request))
        history = self._group_view(request, turns)
        if found.memories_unavailable:
            log.warning("memory.unavailable", personality_id=request.character.id)
            metrics.record_degraded(MEMORY_UNAVAILABLE)
            return history, [], (MEMORY_UNAVAILABLE,)
        return history, found.memories, ()

    def _context_query(self, request: ReplyRequest) -> ReplyContextQuery | None:
        limit = self._history_limit(request)
        query = request.content.strip()
        if not limit or not request.channel_id or not request.character.id or not query:
            return None
        return ReplyContextQuery(
            channel_id=request.channel_id,
            personality_id=request.character.id,
            history_limit=_read_limit(request, limit),
            user_id=request.memory_user_id,
            query=memory_query(query),
            memory_limit=request.memory_limit or DEFAULT_MEMORY_LIMIT,
            threshold=request.memory_threshold,
            whole_channel=request.whole_channel,
            # The user's turn is stored under the request's author name (gateway).
            query_author=request.author_name,
        )

    @staticmethod
    def _group_view(request: ReplyRequest, history: list[HistoryTurn]) -> list[HistoryTurn]:
        if not request.whole_channel:
            return history
        return group_history(history, request.character.id, request.group)

    def _history_limit(self, request: ReplyRequest) -> int:
        """How many turns the prompt asks for; 0: none."""
        limit = request.max_history_messages or self._settings.history_limit
        return min(limit, MAX_HISTORY_MESSAGES) if limit > 0 else 0

    async def _history_or_degraded(
        self, request: ReplyRequest
    ) -> tuple[list[HistoryTurn], tuple[str, ...]]:
        """The recent history; when memory cannot give it the answer goes without (degraded:
        logged and counted), as for long-term memory, rather than not at all."""
        try:
            return await self._recent_history(request), ()
        except TzurotError as err:
            _unavailable("history.unavailable", err, request)
            metrics.record_degraded(HISTORY_UNAVAILABLE)
            return [], (HISTORY_UNAVAILABLE,)

    async def _recent_history(self, request: ReplyRequest) -> list[HistoryTurn]:
        limit = self._history_limit(request)
        if not limit or not request.channel_id or not request.character.id:
            return []
        read = _read_limit(request, limit)
        if request.whole_channel:
            turns = await self._history.recent_turns(
                request.channel_id, request.character.id, read, whole_channel=True
            )
        else:
            turns = await self._history.recent_turns(request.channel_id, request.character.id, read)
        return without_replaced(turns, request, limit)

    async def _relevant_memories(
        self, request: ReplyRequest, history: Sequence[HistoryTurn]
    ) -> tuple[list[MemoryItem], tuple[str, ...]]:
        """The memories for the prompt, and what is missing: a failing memory service leaves
        the answer without long-term memory (degraded: logged and counted), not unanswered.

        A scheduled turn has no message: the query is the latest one in the channel, or its
        directive."""
        query = request.content.strip() or next(
            (t.content for t in reversed(history) if t.content.strip()), request.directive
        )
        if not request.character.id or not query.strip():
            return [], ()
        stamps = [turn.created_at for turn in history if turn.created_at is not None]
        try:
            found = await self._memories.relevant_memories(
                personality_id=request.character.id,
                user_id=request.memory_user_id,
                query=memory_query(query),
                limit=request.memory_limit or DEFAULT_MEMORY_LIMIT,
                threshold=request.memory_threshold,
                exclude_after=min(stamps) if stamps else None,
            )
        except TzurotError as err:
            _unavailable("memory.unavailable", err, request)
            metrics.record_degraded(MEMORY_UNAVAILABLE)
            return [], (MEMORY_UNAVAILABLE,)
        return found, ()

    async def _prepare_attachments(
        self,
        request: ReplyRequest,
        params: AdvancedParameters,
        prepared: Prepared,
        retry: RetryPolicy,
    ) -> AsyncGenerator[AttachmentRead | UsageSpent, None]:
        """Fills `prepared`; yields each attachment a helper model read (AttachmentRead), and
        each helper call that failed once its request went out, estimated (UsageSpent)."""
        if not request.attachments:
            return
        if self._attachments is None:
            raise InvalidArgument("attachments", "attachments are not supported here")
        self._attachments.check(request.attachments)
        free = request.model.free_use
        vision = supports_vision(request.model.model, params)
        # Keys are looked up only for the helper models this message needs: an image for a
        # vision model or an already described file needs none.
        pending = {kind_of(a) for a in request.attachments if not a.description}
        describe = "image" in pending and not vision
        transcribe = "audio" in pending
        settings = self._settings
        reading = self._attachments.prepare(
            request.attachments,
            prepared,
            vision=vision,
            describer=await self._target(request.user_id, settings.vision, free)
            if describe
            else None,
            transcriber=await self._target(request.user_id, settings.transcription, free)
            if transcribe
            else None,
            cleaner=await self._target(request.user_id, settings.transcript_cleanup, free)
            if transcribe
            else None,
            retry=retry,
        )
        async with aclosing(reading):
            async for read in reading:
                yield read

    async def _target(
        self, user_id: str, name: ModelName | None, free_use: bool
    ) -> ModelTarget | None:
        if name is None or not name.model:
            return None
        provider = self._providers.get(name.provider)
        key = await self._keys.resolve(user_id, provider, free_use=free_use, model=name.model)
        return ModelTarget(provider, key.api_key, name.model, key.source)

    async def extract_facts(
        self,
        user_id: str,
        model: ModelName,
        free_use: bool,
        messages: list[ChatMessage],
        known_ids: set[str],
        *,
        time_limit: float | None = None,
        cut_off: list[PaidCall] | None = None,
    ) -> tuple[list[ExtractedFact], TokenUsage]:
        """ExtractFacts: durable facts from exchanges (fact_extraction.py), on the user's key
        or, for a free_use config on a free model, the operator's (`time_limit`: seconds the
        caller waits, which bound the retries). A call that failed once its request went out
        (its stream broke, no answer in time) adds its estimate (FACT_EXTRACTION) to
        `cut_off` before the error goes on: the provider may have billed it."""
        if not user_id:
            raise InvalidArgument("user_id", "user_id is required")
        if not model.provider or not model.model:
            raise InvalidArgument("config", "config.provider and config.model are required")
        target = await self._target(user_id, model, free_use=free_use)
        if target is None:
            raise InvalidArgument("config", "config.model is required")
        with target.names_refusal():
            completion = await helper_completion(
                self._llm,
                target.provider,
                target.api_key,
                target.model,
                helper_call(messages, target.model, temperature=0.0),
                self._retry_policy(time_limit),
                request_type=FACT_EXTRACTION,
                cut_off=cut_off,
            )
        facts = parse_facts(split_thinking(completion.content)[0], known_ids)
        log.info("facts extracted", user_id=user_id, facts=len(facts))
        return facts, completion.usage

    async def validate_key(
        self,
        provider_name: str,
        *,
        api_key: SecretStr | None = None,
        user_id: str | None = None,
        time_limit: float | None = None,
    ) -> int:
        """Checks a new key (`api_key`) or the user's stored one (`user_id`): models visible.

        A refused key is FailedPrecondition INVALID_API_KEY, as for a reply.
        """
        provider = self._providers.get(provider_name)
        if (api_key is None) == (user_id is None):
            raise InvalidArgument("key", "give exactly one of api_key or user_id")
        if api_key is not None:
            _check_api_key(api_key)
            key = api_key
        else:
            if not user_id:
                raise InvalidArgument("user_id", "user_id is required")
            key = await self._keys.user_key(user_id, provider)
        policy = replace(self._retry_policy(time_limit), failures=KEY_CHECK_RETRIES)
        return await whole_answer(lambda: self._llm.count_models(provider, key), policy, free=True)


def _read_limit(request: ReplyRequest, limit: int) -> int:
    """The turns asked of memory for a prompt of `limit`: a 🔄's reads the exchange it
    replaces on top, as it leaves it out."""
    if not request.replaces_job_id:
        return limit
    return min(limit + REPLACED_TURNS, MAX_HISTORY_MESSAGES)


def without_replaced(
    turns: Sequence[HistoryTurn], request: ReplyRequest, limit: int
) -> list[HistoryTurn]:
    """The newest `limit` turns, without those of the exchange a 🔄 replaces: it stays in
    history until the new answer is delivered, and is not part of the conversation the new
    answer follows."""
    if not request.replaces_job_id:
        return list(turns)
    kept = [turn for turn in turns if turn.job_id != request.replaces_job_id]
    return kept[-limit:] if limit > 0 else []


def _unavailable(event: str, err: TzurotError, request: ReplyRequest) -> None:
    log.warning(event, code=err.code.name, reason=err.reason, personality_id=request.character.id)


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


def _check_api_key(api_key: SecretStr) -> None:
    """Rejects an empty, oversized or non-printable key, never quoting it."""
    value = api_key.get_secret_value()
    if not value:
        raise InvalidArgument("api_key", "api_key is required")
    if len(value) > MAX_API_KEY_CHARS:
        raise InvalidArgument("api_key", f"api_key must be at most {MAX_API_KEY_CHARS} characters")
    if not value.isascii() or not all(c.isprintable() and not c.isspace() for c in value):
        # It travels in an HTTP header: ASCII only (httpx cannot encode more: was INTERNAL).
        raise InvalidArgument("api_key", "api_key must be printable ASCII without spaces")
