"""The helper models a reply or a job calls besides the answer: those that read its
attachments (describe an image, transcribe audio and clean the transcript) and the one that
extracts facts, each on the key that pays for it. On a reply whose answer takes no key (a
keyless provider's), a reading helper is paid only with the user's own key, never the
operator's, even for a job sent as free; one she has no key for is never called: its
attachments are left unread, with a note saying which provider's key it wants (NoKeyFor,
attachments.py)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing

import structlog

from tzurot.inference.attachments import (
    AttachmentReader,
    ModelTarget,
    NoKeyFor,
    Prepared,
    kind_of,
)
from tzurot.inference.broken_off import prompt_sent
from tzurot.inference.dialects import helper_call, supports_vision
from tzurot.inference.domain import (
    FACT_EXTRACTION,
    AttachmentRead,
    HelperCallPending,
    PaidCall,
    ReplyRequest,
    TokenUsage,
    UsageSpent,
)
from tzurot.inference.fact_extraction import ExtractedFact, parse_facts
from tzurot.inference.keys import KeyResolver
from tzurot.inference.params import AdvancedParameters
from tzurot.inference.ports import LanguageModel
from tzurot.inference.prompt import ChatMessage
from tzurot.inference.providers import Provider, ProviderRegistry
from tzurot.inference.reply_settings import ModelName, OperatorRetries
from tzurot.inference.retries import RetryPolicy, helper_completion
from tzurot.inference.thinking import split_thinking
from tzurot.runtime.errors import FailedPrecondition, InvalidArgument

log = structlog.get_logger("tzurot.inference.service")  # the name its events always had


class HelperModels(OperatorRetries):
    """The helper-model methods of `Inference`."""

    _providers: ProviderRegistry
    _keys: KeyResolver
    _llm: LanguageModel
    _attachments: AttachmentReader | None

    async def _prepare_attachments(
        self,
        request: ReplyRequest,
        provider: Provider,
        params: AdvancedParameters,
        prepared: Prepared,
        retry: RetryPolicy,
    ) -> AsyncGenerator[AttachmentRead | UsageSpent | HelperCallPending, None]:
        """Fills `prepared` for an answer on `provider` (the request's, resolved); yields each
        attachment a helper model read (AttachmentRead), each helper call that failed once its
        request went out, estimated (UsageSpent), and what the helper calls may be billed
        while the provider has them (HelperCallPending)."""
        if not request.attachments:
            return
        if self._attachments is None:
            raise InvalidArgument("attachments", "attachments are not supported here")
        self._attachments.check(request.attachments)
        vision = supports_vision(request.model.model, params)
        # Keys are looked up only for the helper models this message needs: an image for a
        # vision model or an already described file needs none.
        pending = {kind_of(a) for a in request.attachments if not a.description}
        describe = "image" in pending and not vision
        transcribe = "audio" in pending
        settings = self._settings
        # An answer no key pays for (a keyless provider's): a helper without a key to use
        # leaves its attachments unread, with a note, rather than refusing the whole turn.
        # Its helpers are never paid with the operator's key, whatever the job says (the
        # gateway sends it as not free; review 327 M1): only hers, or none.
        unkeyed = not provider.needs_key
        free = request.model.free_use and not unkeyed
        user_id = request.user_id
        describer = (
            await self._reader(user_id, settings.vision, free, unkeyed) if describe else None
        )
        transcriber = (
            await self._reader(user_id, settings.transcription, free, unkeyed)
            if transcribe
            else None
        )
        cleaner = None
        if isinstance(transcriber, ModelTarget):
            cleaning = await self._reader(user_id, settings.transcript_cleanup, free, unkeyed)
            # Without a key for it the raw transcript, already paid, is the reading.
            cleaner = cleaning if isinstance(cleaning, ModelTarget) else None
        reading = self._attachments.prepare(
            request.attachments,
            prepared,
            vision=vision,
            describer=describer,
            transcriber=transcriber,
            cleaner=cleaner,
            retry=retry,
        )
        async with aclosing(reading):
            async for read in reading:
                yield read

    async def _reader(
        self, user_id: str, name: ModelName | None, free_use: bool, unkeyed: bool
    ) -> ModelTarget | NoKeyFor | None:
        """`_target` for a helper reading attachments; when the answer takes no key
        (`unkeyed`), NoKeyFor its provider instead of NO_API_KEY: nothing is called on it.
        An answer on a key (the user's, the operator's) is refused NO_API_KEY as before:
        she is paying for that answer, and would pay for one that never saw what she sent."""
        try:
            return await self._target(user_id, name, free_use)
        except FailedPrecondition as err:
            if not unkeyed or err.reason != "NO_API_KEY":
                raise
            provider = err.metadata.get("provider", "")
            log.info("attachment.helper_without_key", provider=provider, user_id=user_id)
            return NoKeyFor(provider)

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
        announce: Callable[[int], Awaitable[None]] | None = None,
    ) -> tuple[list[ExtractedFact], TokenUsage]:
        """ExtractFacts: durable facts from exchanges (fact_extraction.py), on the user's key
        or, for a free_use config on a free model, the operator's (`time_limit`: seconds the
        caller waits, which bound the retries). A call that failed once its request went out
        (its stream broke, no answer in time) adds its estimate (FACT_EXTRACTION) to
        `cut_off` before the error goes on: the provider may have billed it. `announce` is
        given the prompt's estimated tokens once the provider accepted the request (its
        200's headers came, before any chunk; once, for the first attempt accepted): never
        for a call refused, never sent, or cut while connecting, backing off or waiting out
        a 429, for a caller that may cut the call before any answer to count what the
        provider billed."""
        if not user_id:
            raise InvalidArgument("user_id", "user_id is required")
        if not model.provider or not model.model:
            raise InvalidArgument("config", "config.provider and config.model are required")
        target = await self._target(user_id, model, free_use=free_use)
        if target is None:
            raise InvalidArgument("config", "config.model is required")
        call = helper_call(messages, target.model, temperature=0.0)

        async def accepted() -> None:
            if announce is not None:
                tokens = prompt_sent(target.provider.name, target.model, call.messages)
                await announce(tokens.input_tokens)

        with target.names_refusal():
            completion = await helper_completion(
                self._llm,
                target.provider,
                target.api_key,
                target.model,
                call,
                self._retry_policy(time_limit),
                request_type=FACT_EXTRACTION,
                cut_off=cut_off,
                on_accepted=None if announce is None else accepted,
            )
        facts = parse_facts(split_thinking(completion.content)[0], known_ids)
        log.info("facts extracted", user_id=user_id, facts=len(facts))
        return facts, completion.usage
