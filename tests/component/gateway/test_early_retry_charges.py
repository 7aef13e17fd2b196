"""A request that fails before its job is accepted with a retryable error (keyvault restarting
while the request is prepared: SERVICE_RESTARTING) makes no job, so the bot's retries of it
are new requests to admission, each charged again. Each gives its charge back: a restart in
the mesh never spends the user's rate limit (nor a guest's share of the free models)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest

from tzurot.gateway.domain import WalletKey
from tzurot.gateway.ratelimit import BucketPolicy
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import GatewayStore
from tzurot.runtime.errors import ResourceExhausted, Unavailable, restarting_message

from .conftest import LIMITS, FakeInference, FakeKeyVault, FakeMemory, command
from .test_policy import NO_REFILL, free_personality

pytestmark = pytest.mark.component


@dataclass
class RestartingKeyVault(FakeKeyVault):
    """Keyvault, restarting while `restarting`: its calls end as a lost connection's do."""

    restarting: bool = True

    async def list_keys(self, user_id: str) -> list[WalletKey]:
        if self.restarting:
            raise Unavailable(
                restarting_message("keyvault"),
                reason="SERVICE_RESTARTING",
                metadata={"service": "keyvault"},
            )
        return await super().list_keys(user_id)


async def test_retries_of_a_request_keyvault_restarting_cut_short_cost_no_rate_tokens(
    store: GatewayStore, inference: FakeInference, memory: FakeMemory
) -> None:
    await free_personality(store)  # a free_use config: preparing the job asks keyvault
    keyvault = RestartingKeyVault()
    gateway = Gateway(
        store=store,
        inference=inference,
        memory=memory,
        keyvault=keyvault,
        limits=dataclasses.replace(
            LIMITS, user_bucket=BucketPolicy(2, NO_REFILL), guest_daily_budget=2
        ),
    )
    for _ in range(5):  # the bot's first ask and its retries, and more
        with pytest.raises(Unavailable) as cut:
            async for _ in gateway.generate(command(personality="freebie", key="m1")):
                pass
        assert cut.value.reason == "SERVICE_RESTARTING"
    assert await store.get_job_by_key("m1") is None  # never accepted
    assert inference.requests == []

    keyvault.restarting = False
    for key in ("m1", "m2"):  # the bucket holds two: both still there
        async for _ in gateway.generate(command(personality="freebie", key=key)):
            pass
    assert len(inference.requests) == 2
    with pytest.raises(ResourceExhausted) as limited:
        async for _ in gateway.generate(command(personality="freebie", key="m3")):
            pass
    assert limited.value.reason == "RATE_LIMITED"
    await gateway.stop_background()
