"""A 🔄's generation (GenerateRequest.replaces_job_id): the old exchange stays in history,
left out of the new prompt, until the new answer is delivered, which takes it out and stores
the new one. A regeneration refused before it starts (the user's key removed, a rate limit)
or failing after (inference) leaves history exactly as it was."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import pytest
from pydantic import SecretStr

from tzurot.gateway.domain import GenerateCommand, HistoryTurn, JobAccepted, Personality
from tzurot.gateway.ratelimit import BucketPolicy
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import GatewayStore
from tzurot.runtime.errors import (
    FailedPrecondition,
    InvalidArgument,
    PermissionDenied,
    ResourceExhausted,
    TzurotError,
    Unavailable,
)

from .conftest import (
    ALICE,
    LIMITS,
    FakeInference,
    FakeKeyVault,
    FakeMemory,
    answer,
    command,
    seed,
)
from .test_exchanges import BOB

pytestmark = pytest.mark.component

OLD_ANSWER = ("ans-1",)


async def answered(gateway: Gateway) -> str:
    """Alice's message msg-1, answered and delivered as ans-1; its job id."""
    events = [event async for event in gateway.generate(command(key="msg-1"))]
    accepted = events[0]
    assert isinstance(accepted, JobAccepted)
    await gateway.confirm_delivery(accepted.job_id, list(OLD_ANSWER))
    return accepted.job_id


def regeneration(replaced: str, *, n: int = 1, **fields: object) -> GenerateCommand:
    """The bot's 🔄 of msg-1's answer: the same message under a new key, naming the job."""
    return dataclasses.replace(
        command(key=f"msg-1#regen{n}"),
        message_ids=("msg-1",),
        replaces_job_id=replaced,
        **fields,  # type: ignore[arg-type]  # GenerateCommand's own fields
    )


def history(memory: FakeMemory) -> list[tuple[str, tuple[str, ...], str]]:
    """(role, message ids, content) of every stored turn, oldest first."""
    return [(t.role, t.message_ids, t.content) for e in memory.exchanges for t in e.turns]


OLD_HISTORY = [
    ("user", ("msg-1",), "Hello Lilith"),
    ("assistant", OLD_ANSWER, "Hello, mortal."),
]


async def test_a_delivered_regeneration_replaces_the_old_exchange(
    gateway: Gateway, inference: FakeInference, memory: FakeMemory, lilith: Personality
) -> None:
    old = await answered(gateway)
    inference.script = answer("Second ", "take.")
    events = [event async for event in gateway.generate(regeneration(old))]
    accepted = events[0]
    assert isinstance(accepted, JobAccepted)
    assert accepted.replacing  # the bot leaves the old exchange to the gateway
    assert inference.requests[-1].replaces_job_id == old  # the prompt leaves it out
    streamed = history(memory)

    await gateway.confirm_delivery(accepted.job_id, ["ans-2"])

    assert streamed == OLD_HISTORY  # until the new answer is delivered
    assert history(memory) == [
        ("user", ("msg-1",), "Hello Lilith"),
        ("assistant", ("ans-2",), "Second take."),
    ]
    assert {e.job_id for e in memory.exchanges if e.turns} == {accepted.job_id}
    replayed = [event async for event in gateway.generate(regeneration(old))]
    assert replayed[0] == dataclasses.replace(accepted, replayed=True)  # still replacing


async def test_a_regeneration_refused_at_admission_leaves_history_as_it_was(
    store: GatewayStore,
    inference: FakeInference,
    memory: FakeMemory,
    keyvault: FakeKeyVault,
    lilith: Personality,
) -> None:
    """Alice removed her key on a model that needs one (guests refused): NO_API_KEY, before
    any job is claimed or inference asked."""
    limits = dataclasses.replace(LIMITS, demo_all_free=True, guest_mode=False)
    gateway = Gateway(
        store=store,
        inference=inference,
        memory=memory,
        turns=memory,
        keyvault=keyvault,
        limits=limits,
    )
    alice = await gateway.user(ALICE)
    provider = (await gateway.effective_config(lilith, alice)).config.provider
    await keyvault.put_key(alice.id, provider, SecretStr("sk-alice-0123456789"))
    old = await answered(gateway)
    await keyvault.delete_key(alice.id, provider)

    with pytest.raises(FailedPrecondition) as refused:
        await anext(gateway.generate(regeneration(old)))

    assert refused.value.reason == "NO_API_KEY"
    assert len(inference.requests) == 1  # only the first answer's
    assert history(memory) == OLD_HISTORY
    assert await store.get_job_by_key("msg-1#regen1") is None


async def test_a_rate_limited_regeneration_leaves_history_as_it_was(
    store: GatewayStore,
    inference: FakeInference,
    memory: FakeMemory,
    keyvault: FakeKeyVault,
    lilith: Personality,
) -> None:
    limits = dataclasses.replace(
        LIMITS, user_bucket=BucketPolicy(capacity=1, refill_per_second=0.001)
    )
    gateway = Gateway(
        store=store,
        inference=inference,
        memory=memory,
        turns=memory,
        keyvault=keyvault,
        limits=limits,
    )
    old = await answered(gateway)
    with pytest.raises(ResourceExhausted):
        await anext(gateway.generate(regeneration(old)))
    assert history(memory) == OLD_HISTORY


@pytest.mark.parametrize(
    "failure",
    [
        FailedPrecondition("no API key for openrouter", reason="NO_API_KEY"),
        Unavailable("the provider is down", reason="PROVIDER_UNAVAILABLE"),
    ],
)
async def test_a_regeneration_failing_after_it_started_leaves_history_as_it_was(
    gateway: Gateway, inference: FakeInference, memory: FakeMemory, lilith: Personality,
    failure: TzurotError,
) -> None:  # fmt: skip
    """Accepted (the bot was told it replaces), then inference refused or failed (the key
    is checked there for a model that is not free): never delivered, nothing replaced."""
    old = await answered(gateway)
    inference.script, inference.error = answer("Sec"), failure
    stream = gateway.generate(regeneration(old))
    accepted = await anext(stream)
    assert isinstance(accepted, JobAccepted)
    assert accepted.replacing
    with pytest.raises(TzurotError) as failed:
        async for _ in stream:
            pass
    assert failed.value.reason == failure.reason
    assert history(memory) == OLD_HISTORY
    with pytest.raises(TzurotError):  # a failed job is not delivered, whatever a client says
        await gateway.confirm_delivery(accepted.job_id, ["ans-2"])
    assert history(memory) == OLD_HISTORY


async def test_only_the_user_it_answered_may_have_it_replaced(
    gateway: Gateway, store: GatewayStore, memory: FakeMemory, lilith: Personality
) -> None:
    """Not Bob, not as another personality's answer, not a job that is not there: refused
    before any job is claimed, history untouched."""
    old = await answered(gateway)
    await store.import_personality(seed("sage"), owner_user_id=None)

    with pytest.raises(PermissionDenied) as bobs:
        await anext(gateway.generate(regeneration(old, actor=BOB)))
    with pytest.raises(InvalidArgument) as sages:
        await anext(gateway.generate(regeneration(old, n=2, personality="sage")))
    with pytest.raises(InvalidArgument) as elsewhere:
        await anext(gateway.generate(regeneration("not-a-job", n=3)))

    assert bobs.value.reason == "NOT_YOUR_EXCHANGE"
    assert (sages.value.field, elsewhere.value.field) == ("replaces_job_id", "replaces_job_id")
    assert history(memory) == OLD_HISTORY
    for n in (1, 2, 3):
        assert await store.get_job_by_key(f"msg-1#regen{n}") is None


class MemoryAway(FakeMemory):
    """Memory answering nothing (every call UNAVAILABLE) while `error` is set."""

    async def find_turns(self, message_ids: Sequence[str]) -> list[HistoryTurn]:
        if self.error is not None:
            raise self.error
        return await super().find_turns(message_ids)


async def test_a_regeneration_delivered_while_memory_is_away_replaces_once_it_is_back(
    store: GatewayStore, inference: FakeInference, keyvault: FakeKeyVault, lilith: Personality
) -> None:
    memory = MemoryAway()
    gateway = Gateway(
        store=store,
        inference=inference,
        memory=memory,
        turns=memory,
        keyvault=keyvault,
        limits=LIMITS,
    )
    old = await answered(gateway)
    inference.script = answer("Second take.")
    events = [event async for event in gateway.generate(regeneration(old))]
    memory.error = Unavailable("memory is restarting")
    await gateway.confirm_delivery(events[0].job_id, ["ans-2"])  # type: ignore[union-attr]
    memory.error = None
    assert history(memory) == OLD_HISTORY  # nothing replaced while memory was away

    assert await gateway.store_pending_history() == 1

    assert history(memory) == [
        ("user", ("msg-1",), "Hello Lilith"),
        ("assistant", ("ans-2",), "Second take."),
    ]


async def test_a_gateway_without_memorys_turns_leaves_replacing_to_the_client(
    store: GatewayStore,
    inference: FakeInference,
    memory: FakeMemory,
    keyvault: FakeKeyVault,
    lilith: Personality,
) -> None:
    """Wired with a History only: the request's replaces_job_id is ignored and the client is
    told so (as a gateway older than the field tells it): it deletes the exchange itself."""
    gateway = Gateway(
        store=store, inference=inference, memory=memory, keyvault=keyvault, limits=LIMITS
    )
    old = await answered(gateway)
    events = [event async for event in gateway.generate(regeneration(old))]
    assert isinstance(events[0], JobAccepted)
    assert not events[0].replacing
    assert inference.requests[-1].replaces_job_id == ""


async def test_a_regenerated_answer_finished_by_another_bot_names_the_answer_it_replaces(
    gateway: Gateway, store: GatewayStore, lilith: Personality
) -> None:
    old = await answered(gateway)
    events = [event async for event in gateway.generate(regeneration(old))]
    new = await store.get_job(events[0].job_id)  # type: ignore[union-attr]
    first = await store.get_job(old)
    assert new is not None
    assert first is not None
    assert await gateway.replaced_messages(new) == list(OLD_ANSWER)
    assert await gateway.replaced_messages(first) == []
