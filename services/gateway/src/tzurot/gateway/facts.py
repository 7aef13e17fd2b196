"""Fact extraction, orchestrated by gateway off the request path.

Memory never sees a key and never calls an LLM, so the loop lives here: claim a batch of
delivered exchanges waiting for extraction (memory's fact outbox, leased), group them by
user and personality, have inference extract durable facts with the user's effective LLM
config (their key, or a free-use config the operator pays for), and hand the facts back to
memory, which stores them and supersedes the known facts they contradict.

The extraction's call is paid (by the user's key, or the operator's for a free-use config
when the user has none for its provider: recorded all the same, as a guest's helper
readings are): its usage is a `usage_log` row of its own at once (request_type
`fact_extraction`, under the batch's newest job, which `/usage` shows), whether or not its
facts are then stored. A call that failed once its request went out (its stream broke, no
answer in time) may have been billed too: inference's error carries its estimate in its
status details (UsageSpent), recorded failed and estimated before the error is handled (an
older inference sends none). A call cut before inference could report (the gateway's
deadline, inference restarting) after its request went out, which inference announced with
the prompt's tokens, is recorded as that prompt billed, failed and estimated
(cancelled_usage.cut_helper_call). A write refused is logged, not raised: the facts go on.

A batch whose user has no key for the config (FAILED_PRECONDITION) or who is gone is
finished with no facts; any other failure leaves it leased, so it is retried when the
lease runs out (memory drops a job after five claims). So is a built-in local provider the
operator has not given an address yet (PROVIDER_NOT_CONFIGURED): the operator's to fix, not
the user's, and the exchanges get their facts once it is. A key of the user's wallet that the
provider refused is marked inactive (key_uses.py), as an answer's would be. A batch whose
lease ran out while inference worked (another replica claimed its exchanges again) stores
nothing: memory keeps only the facts of the claim that holds every job (its token).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Protocol

import structlog

from tzurot.gateway import convert
from tzurot.gateway.cancelled_usage import cut_helper_call
from tzurot.gateway.domain import Personality, ResolvedConfig, Usage, User
from tzurot.gateway.key_uses import KeyUses
from tzurot.runtime import metrics
from tzurot.runtime.errors import PROVIDER_NOT_CONFIGURED, FailedPrecondition, TzurotError
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import inference_pb2 as inf
from tzurot.v1 import memory_pb2 as mem

log = structlog.get_logger("tzurot.gateway.facts")

LEASE_SECONDS = 300
FACT_EXTRACTION = "fact_extraction"
"""The usage_log request_type of a fact extraction's call."""


class FactMemory(Protocol):
    async def claim_fact_jobs(self, limit: int, lease_seconds: int) -> list[mem.FactBatch]: ...

    async def store_facts(self, request: mem.StoreFactsRequest) -> mem.StoreFactsResponse: ...


class FactExtractor(Protocol):
    async def extract_facts(self, request: inf.ExtractFactsRequest) -> inf.ExtractFactsResponse: ...


class UsageLog(Protocol):
    """store/usage_rows.py's writer of paid calls."""

    async def record_spent_usage(
        self,
        job_id: str,
        user_id: str,
        paid: Sequence[Usage],
        *,
        job_request_type: str,
        failed: bool,
    ) -> int: ...


class FactExtraction:
    def __init__(
        self,
        memory: FactMemory,
        inference: FactExtractor,
        *,
        user_of: Callable[[str], Awaitable[User | None]],
        personality_of: Callable[[str], Awaitable[Personality | None]],
        config_of: Callable[[Personality, User], Awaitable[ResolvedConfig]],
        key_uses: KeyUses,
        usage_log: UsageLog,
        batch: int = 32,
    ) -> None:
        self._memory = memory
        self._inference = inference
        self._user_of = user_of
        self._personality_of = personality_of
        self._config_of = config_of
        self._key_uses = key_uses
        self._usage_log = usage_log
        self._batch = batch
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()

    def kick(self) -> None:
        """An exchange is waiting: extract soon."""
        self._wake.set()

    async def drain(self) -> int:
        """Extracts facts until nothing waits; the number of facts stored."""
        stored = 0
        async with self._lock:
            while True:
                batches = await self._memory.claim_fact_jobs(self._batch, LEASE_SECONDS)
                for batch in batches:
                    try:
                        stored += await self._extract(batch)
                    except TzurotError as error:
                        log.warning(
                            "fact extraction failed; retried after the lease",
                            user_id=batch.user_id,
                            jobs=len(batch.job_ids),
                            reason=error.reason,
                        )
                if sum(len(b.job_ids) for b in batches) < self._batch:
                    break
        return stored

    async def _extract(self, batch: mem.FactBatch) -> int:
        user = await self._user_of(batch.user_id)
        personality = await self._personality_of(batch.personality_id)
        facts: Sequence[inf.ExtractedFact] = ()
        if user is not None and personality is not None:
            config = await self._config_of(personality, user)
            taken_after = self._key_uses.now()  # the key refused is read after it
            try:
                reply = await self._inference.extract_facts(
                    inf.ExtractFactsRequest(
                        user_id=user.id,
                        config=common.ResolvedLlmConfig(
                            config=convert.llm_config(config.config),
                            source=convert.CONFIG_SOURCE[config.source],
                        ),
                        user_name=_user_name(batch, user),
                        personality_name=personality.display_name,
                        turns=batch.turns,
                        known_facts=batch.known_facts,
                    )
                )
            except TzurotError as failed:
                await self._keep_cut_off(batch, user.id, failed, config)
                if (
                    not isinstance(failed, FailedPrecondition)
                    or failed.reason == PROVIDER_NOT_CONFIGURED  # the operator's: retried
                ):
                    raise
                # No key for this config (or the model is not free, or the provider refused
                # the key): nothing to extract with. A refused stored key turns inactive.
                log.info("facts not extracted", user_id=user.id, reason=failed.reason)
                await self._key_uses.refused(
                    user.id, failed, provider=config.config.provider, taken_after=taken_after
                )
            else:
                facts = reply.facts
                if reply.HasField("usage"):
                    await self._keep_usage(batch, user.id, (_usage(reply.usage),), failed=False)
        done = await self._memory.store_facts(
            mem.StoreFactsRequest(
                personality_id=batch.personality_id,
                user_id=batch.user_id,
                job_ids=batch.job_ids,
                facts=[mem.NewFact(text=f.text, supersedes=f.supersedes) for f in facts],
                # Stored only while this claim still holds the jobs: if the lease ran out
                # and another replica claimed them again, that replica stores them.
                claim_token=batch.claim_token,
            )
        )
        log.info(
            "facts stored", user_id=batch.user_id, facts=len(done.facts), superseded=done.superseded
        )
        return len(done.facts)

    async def _keep_cut_off(
        self, batch: mem.FactBatch, user_id: str, failed: TzurotError, config: ResolvedConfig
    ) -> None:
        """The failed call's usage, when it may have been billed: inference's estimate from
        its status details, else (cut before it could report) the prompt it announced."""
        cut_off = convert.cut_off_usage(failed)  # billed once sent, maybe
        if cut_off is not None:
            await self._keep_usage(batch, user_id, cut_off.paid, failed=True)
            return
        cut = cut_helper_call(failed, config.config.provider, config.config.model)
        if cut is not None:
            log.info("facts.cut_off_estimated", user_id=user_id, input_tokens=cut.input_tokens)
            await self._keep_usage(batch, user_id, (cut,), failed=True)

    async def _keep_usage(
        self, batch: mem.FactBatch, user_id: str, paid: Sequence[Usage], *, failed: bool
    ) -> None:
        """The extraction's call, paid (`failed`: not delivered, it failed once sent): one
        usage_log row each (FACT_EXTRACTION) under the batch's newest job. Shielded; a
        refused write is logged, not raised."""
        usage = tuple(replace(u, request_type=FACT_EXTRACTION) for u in paid)
        try:
            await asyncio.shield(
                self._usage_log.record_spent_usage(
                    batch.job_ids[-1] if batch.job_ids else "",
                    user_id,
                    usage,
                    job_request_type=FACT_EXTRACTION,
                    failed=failed,
                )
            )
        except Exception:
            log.exception("facts.usage_not_recorded", user_id=user_id)
        for call in usage:
            metrics.record_tokens(
                call.provider,
                call.model,
                input_tokens=call.input_tokens,
                output_tokens=call.output_tokens,
            )

    async def run(self, poll_seconds: float) -> None:
        """Drains on every kick, and every `poll_seconds` (a missed kick, a restart)."""
        while True:
            try:
                await self.drain()
            except Exception:
                log.exception("fact extraction pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), poll_seconds)
            self._wake.clear()


def _usage(paid: common.Usage) -> Usage:
    return Usage(
        provider=paid.provider,
        model=paid.model,
        input_tokens=paid.input_tokens,
        output_tokens=paid.output_tokens,
        request_type=FACT_EXTRACTION,
        estimated=paid.estimated,  # a stream without a usage chunk (a newer inference)
    )


def _user_name(batch: mem.FactBatch, user: User) -> str:
    """The name the user goes by in these exchanges (their newest turn's), else their own."""
    for turn in reversed(batch.turns):
        if turn.role == common.ROLE_USER and turn.author_name:
            return turn.author_name
    return user.display_name
