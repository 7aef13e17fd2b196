"""Fact extraction refused for the user's stored key marks that key inactive (key_uses.py),
as an answer's refusal does; the batch is finished with no facts, as for no key at all. A
local provider the operator has not configured yet leaves the batch leased, retried later."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from tzurot.gateway.domain import (
    ConfigSource,
    KeyUse,
    LlmConfig,
    Personality,
    ResolvedConfig,
    User,
)
from tzurot.gateway.facts import FactExtraction
from tzurot.gateway.key_uses import KeyUses, TakenKeyUse
from tzurot.runtime.errors import FailedPrecondition, TzurotError
from tzurot.v1 import inference_pb2 as inf
from tzurot.v1 import memory_pb2 as mem

from .personality_support import personality

T0 = datetime(2026, 3, 1, tzinfo=UTC)
USER = User("u-1", "discord-1", "Ann", "UTC", False, False, T0)
LILITH = personality(
    "lilith", "Lilith", id="p-1", system_prompt="You are Lilith.", created_at=T0, updated_at=T0
)
CONFIG = ResolvedConfig(LlmConfig("c-1", "default", "openrouter", "m/one"), ConfigSource.GLOBAL)


def refusal(source: str, provider: str = "openrouter") -> FailedPrecondition:
    """Inference's error for a refused key, as it crosses the mesh."""
    return FailedPrecondition(
        "openrouter rejected the API key",
        reason="INVALID_API_KEY",
        metadata={"provider": provider, "key_source": source},
    )


TOKEN = "5f0c1c9e-8d1f-4a43-9a43-0c2a7f1e2b11"


class Memory:
    def __init__(self) -> None:
        self.batches = [
            mem.FactBatch(personality_id="p-1", user_id="u-1", job_ids=["j-1"], claim_token=TOKEN)
        ]
        self.stored: list[mem.StoreFactsRequest] = []

    async def claim_fact_jobs(self, limit: int, lease_seconds: int) -> list[mem.FactBatch]:
        batches, self.batches = self.batches, []
        return batches

    async def store_facts(self, request: mem.StoreFactsRequest) -> mem.StoreFactsResponse:
        self.stored.append(request)
        return mem.StoreFactsResponse()


class Refusing:
    def __init__(self, error: TzurotError) -> None:
        self.error = error

    async def extract_facts(self, request: inf.ExtractFactsRequest) -> inf.ExtractFactsResponse:
        raise self.error


class NoUsage:
    """A refused extraction was paid by nobody: nothing is written."""

    async def record_spent_usage(self, *args: object, **kwargs: object) -> int:
        raise AssertionError("a refused extraction records no usage")


class Sink:
    def __init__(self) -> None:
        self.uses: list[KeyUse] = []

    async def record_uses(self, uses: Sequence[KeyUse]) -> None:
        self.uses.extend(uses)


async def _user_of(user_id: str) -> User:
    return USER


async def _personality_of(personality_id: str) -> Personality:
    return LILITH


async def _config_of(personality: Personality, user: User) -> ResolvedConfig:
    return CONFIG


async def extraction_refused(error: TzurotError) -> tuple[Memory, Sink]:
    memory, sink = Memory(), Sink()
    extraction = FactExtraction(
        memory,
        Refusing(error),
        user_of=_user_of,
        personality_of=_personality_of,
        config_of=_config_of,
        key_uses=KeyUses(sink, clock=lambda: T0),
        usage_log=NoUsage(),
    )
    assert await extraction.drain() == 0
    return memory, sink


async def test_a_refused_stored_key_turns_inactive_and_the_batch_is_finished() -> None:
    memory, sink = await extraction_refused(refusal("user"))
    # Of the key read for the extraction only (after its start), not one stored since.
    assert sink.uses == [TakenKeyUse("u-1", "openrouter", T0, rejected=True, taken_after=T0)]
    assert [list(r.job_ids) for r in memory.stored] == [["j-1"]]


async def test_the_batch_is_finished_under_its_claims_token() -> None:
    """Memory finishes the jobs only while this claim still holds them: had its lease run
    out and another replica claimed them again, that replica's facts are the ones kept."""
    memory, _ = await extraction_refused(FailedPrecondition("no key", reason="NO_API_KEY"))
    assert [r.claim_token for r in memory.stored] == [TOKEN]


async def test_the_operators_refused_key_or_no_key_marks_nothing() -> None:
    _, refused_system = await extraction_refused(refusal("system"))
    _, no_key = await extraction_refused(
        FailedPrecondition("no API key for openrouter", reason="NO_API_KEY")
    )
    assert refused_system.uses == no_key.uses == []


async def test_an_unconfigured_local_provider_leaves_the_batch_to_be_retried() -> None:
    """Inference refuses a built-in local provider with no address (the operator's to set):
    the batch is not finished, so its lease runs out and it is claimed again later."""
    memory, sink = await extraction_refused(
        FailedPrecondition("ollama has no address here", reason="PROVIDER_NOT_CONFIGURED")
    )
    assert memory.stored == []
    assert sink.uses == []
