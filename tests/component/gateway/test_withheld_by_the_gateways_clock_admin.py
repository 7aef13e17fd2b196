"""A deletion through the admin use-cases withholds a dead bot's half-shown answer due by the
gateway's clock (store/previews.withhold_unfinished's `now`), not the database's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tzurot.gateway.admin import Admin, Principal
from tzurot.gateway.clock import ManualClock
from tzurot.gateway.domain import JobAccepted
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import GatewayStore

from .conftest import ALICE, LIMITS, FakeInference, FakeKeyVault, FakeMemory, command

pytestmark = pytest.mark.component


@pytest.mark.usefixtures("lilith")
@pytest.mark.parametrize("deleted", ["personality", "user"])
async def test_a_deletions_withheld_answer_is_due_by_the_gateways_clock(
    deleted: str,
    store: GatewayStore,
    inference: FakeInference,
    memory: FakeMemory,
    keyvault: FakeKeyVault,
) -> None:
    behind = ManualClock(datetime(2020, 1, 1, tzinfo=UTC))
    gateway = Gateway(
        store=store,
        inference=inference,
        memory=memory,
        turns=memory,
        keyvault=keyvault,
        limits=LIMITS,
        clock=behind,
    )
    admin = Admin(
        gateway=gateway,
        store=store,
        memory=memory,
        keyvault=keyvault,
        operator_identities=frozenset({"cli"}),
    )
    try:
        stream = gateway.generate(command(key="msg-1"))
        accepted = await anext(stream)
        assert isinstance(accepted, JobAccepted)
        async for _ in stream:
            pass
        await gateway.note_preview(accepted.job_id, ["900"])
        if deleted == "personality":
            await admin.delete_personality(Principal(None), "lilith")
        else:
            await admin.delete_user_data(Principal(await gateway.user(ALICE)))
        events = await gateway.group_store.claim_events(behind.now(), timedelta(seconds=60), 0, 1)
        assert [(e.kind, e.job_id) for e in events] == [("unfinished", accepted.job_id)]
    finally:
        await gateway.stop_background()
