"""What admitting a request takes (rate tokens, a guest's share of the free models' budget) is
given back when the request is not run after all: refused after it was charged, or a duplicate
of a request that runs. Found by a review: each case used to keep the charge."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from typing import Any

import pytest
from pydantic import SecretStr

from tzurot.gateway.domain import (
    Actor,
    GenerateEvent,
    Job,
    JobAccepted,
    JobStatus,
)
from tzurot.gateway.ratelimit import BucketPolicy
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import GatewayStore, NewJob
from tzurot.runtime.errors import InvalidArgument, ResourceExhausted, Unavailable

from .conftest import LIMITS, FakeInference, FakeKeyVault, FakeMemory, command
from .test_policy import NO_REFILL, free_personality

pytestmark = pytest.mark.component

BOB = Actor(platform_user_id="2", display_name="Bob")
CAROL = Actor(platform_user_id="3", display_name="Carol")


def _gateway(
    store: GatewayStore,
    inference: FakeInference,
    memory: FakeMemory,
    keyvault: FakeKeyVault,
    **limits: Any,
) -> Gateway:
    return Gateway(
        store=store,
        inference=inference,
        memory=memory,
        turns=memory,
        keyvault=keyvault,
        limits=dataclasses.replace(LIMITS, **limits),
    )


async def _send(gateway: Gateway, **fields: Any) -> list[GenerateEvent]:
    return [event async for event in gateway.generate(command(personality="freebie", **fields))]


def _replayed(events: list[GenerateEvent]) -> bool:
    accepted = events[0]
    assert isinstance(accepted, JobAccepted)
    return accepted.replayed


async def test_two_sends_of_one_new_message_at_once_are_charged_once(
    store: GatewayStore, inference: FakeInference, memory: FakeMemory, keyvault: FakeKeyVault
) -> None:
    """Both pass admission before either claims the job (a client's retry while the first is
    under way): the one that replays the other's answer gives its charge back."""
    await free_personality(store)
    gateway = _gateway(store, inference, memory, keyvault, guest_daily_budget=2)
    arrived = 0
    both = asyncio.Event()
    claim = gateway._claim

    async def claim_together(new: NewJob) -> tuple[Job, bool]:
        nonlocal arrived
        arrived += 1
        if arrived == 2:
            both.set()
        await asyncio.wait_for(both.wait(), 10)
        return await claim(new)

    gateway._claim = claim_together  # type: ignore[method-assign]
    try:
        first, second = await asyncio.gather(_send(gateway, key="m1"), _send(gateway, key="m1"))
    finally:
        gateway._claim = claim  # type: ignore[method-assign]
    assert sorted([_replayed(first), _replayed(second)]) == [False, True]
    assert len(inference.requests) == 1
    await _send(gateway, key="m2")  # the day's second guest answer: the budget held two
    with pytest.raises(ResourceExhausted) as spent:
        await _send(gateway, key="m3")
    assert spent.value.reason == "GUEST_BUDGET_EXHAUSTED"
    await gateway.stop_background()


async def test_a_request_refused_after_its_charge_gives_it_back(
    store: GatewayStore, inference: FakeInference, memory: FakeMemory, keyvault: FakeKeyVault
) -> None:
    """An answer to replace that does not exist is found only after admission charged."""
    await free_personality(store)
    gateway = _gateway(
        store,
        inference,
        memory,
        keyvault,
        guest_daily_budget=1,
        user_bucket=BucketPolicy(1, NO_REFILL),
    )
    with pytest.raises(InvalidArgument):
        await _send(gateway, key="m1", replaces_job_id=str(uuid.uuid4()))
    assert inference.requests == []
    events = await _send(gateway, key="m2")  # the token and the guest share are there
    assert not _replayed(events)
    assert len(inference.requests) == 1
    await gateway.stop_background()


async def test_guests_refused_for_the_spent_budget_leave_the_channel_its_tokens(
    store: GatewayStore, inference: FakeInference, memory: FakeMemory, keyvault: FakeKeyVault
) -> None:
    """The channel's bucket is taken before the guest decision: refused guests used to drain
    it, and then a user with her own key was told the channel sent too many messages."""
    await free_personality(store)
    gateway = _gateway(
        store,
        inference,
        memory,
        keyvault,
        guest_daily_budget=0,
        channel_bucket=BucketPolicy(2, NO_REFILL),
    )
    for key in ("b1", "b2", "b3"):
        with pytest.raises(ResourceExhausted) as refused:
            await _send(gateway, key=key, actor=BOB)
        assert refused.value.reason == "GUEST_BUDGET_EXHAUSTED"
    await keyvault.put_key((await gateway.user(CAROL)).id, "openrouter", SecretStr("sk-carol"))
    await _send(gateway, key="c1", actor=CAROL)
    await _send(gateway, key="c2", actor=CAROL)
    assert len(inference.requests) == 2
    with pytest.raises(ResourceExhausted) as limited:  # the bucket held two
        await _send(gateway, key="c3", actor=CAROL)
    assert limited.value.reason == "RATE_LIMITED"
    await gateway.stop_background()


async def test_a_retry_the_guest_budget_refuses_reads_refused_for_it(
    store: GatewayStore, inference: FakeInference, memory: FakeMemory, keyvault: FakeKeyVault
) -> None:
    """An operator's retry refused after its claim: the job says why, not "stopped before it
    started", and stays retryable."""
    await free_personality(store)
    gateway = _gateway(store, inference, memory, keyvault, guest_daily_budget=1)
    inference.script = []
    inference.error = InvalidArgument("content", "the provider refused this request")
    with pytest.raises(InvalidArgument):
        await _send(gateway, key="a")  # spends the day's one guest answer
    inference.error = None
    job = await store.get_job_by_key("a")
    assert job is not None
    retried = await gateway.retry_job(job.id)
    assert retried.status is JobStatus.FAILED
    assert retried.error is not None
    assert (retried.error.code, retried.error.reason) == ("UNAVAILABLE", "GUEST_BUDGET_EXHAUSTED")
    assert "daily budget is spent" in retried.error.message
    assert len(inference.requests) == 1
    await gateway.stop_background()


async def test_a_job_taken_up_again_when_the_gateway_stops_stays_retryable_as_stopped(
    store: GatewayStore, inference: FakeInference, memory: FakeMemory, keyvault: FakeKeyVault
) -> None:
    """Cut short between its claim and its run by this gateway's stop (a rollout): it fails as
    a stopped run does (GATEWAY_RESTARTING), which the unfinished sweep generates again for a
    regeneration, not as one that never started (which it leaves alone)."""
    await free_personality(store)
    gateway = _gateway(store, inference, memory, keyvault)
    inference.script = []
    inference.error = Unavailable("openrouter is unreachable", reason="PROVIDER_UNAVAILABLE")
    with pytest.raises(Unavailable):  # failed retryably: a resend takes the job up again
        await _send(gateway, key="a")
    inference.error = None
    taken_up = asyncio.Event()
    held = asyncio.Event()

    async def hold(job_id: str) -> bool:
        taken_up.set()
        await held.wait()  # the stop comes here
        return False

    gateway.group_store.drop_pending_unfinished = hold  # type: ignore[method-assign]
    resend = asyncio.create_task(_send(gateway, key="a"))
    await asyncio.wait_for(taken_up.wait(), 10)
    gateway.stopping()
    resend.cancel()
    with pytest.raises(asyncio.CancelledError):
        await resend
    job = await _job(store, "a")
    assert job.status is JobStatus.FAILED
    assert job.error is not None
    assert (job.error.code, job.error.reason) == ("UNAVAILABLE", "GATEWAY_RESTARTING")
    await gateway.stop_background()


async def _job(store: GatewayStore, key: str) -> Job:
    job = await store.get_job_by_key(key)
    assert job is not None
    return job
