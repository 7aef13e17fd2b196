"""DeleteUserData's order against work in flight: an answer of the user's that the bot
confirms while the deletion runs is never stored into history after memory forgot them
(it would stay there for good, under an id no user maps to any more). Real Postgres for
`core`; memory is the conftest fake, which lets the confirmation land mid-deletion."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.gateway import tables as t
from tzurot.gateway.admin import Admin, Principal
from tzurot.gateway.domain import JobAccepted, Personality
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import GatewayStore
from tzurot.runtime.errors import NotFound

from .conftest import ALICE, FakeKeyVault, FakeMemory, command

pytestmark = pytest.mark.component


@dataclass
class MemoryConfirmedMeanwhile(FakeMemory):
    """Runs `meanwhile` right after forgetting a user, as a concurrent request would."""

    meanwhile: Callable[[], Awaitable[None]] | None = None

    async def forget_user(self, user_id: str) -> int:
        forgotten = await super().forget_user(user_id)
        if self.meanwhile is not None:
            run, self.meanwhile = self.meanwhile, None
            await run()
        return forgotten


@pytest.fixture
def memory() -> MemoryConfirmedMeanwhile:
    return MemoryConfirmedMeanwhile()


@pytest.fixture
def admin(
    gateway: Gateway, store: GatewayStore, memory: FakeMemory, keyvault: FakeKeyVault
) -> Admin:
    return Admin(
        gateway=gateway,
        store=store,
        memory=memory,
        keyvault=keyvault,
        operator_identities=frozenset({"cli"}),
    )


async def test_an_answer_confirmed_during_the_deletion_is_not_stored_into_history(
    gateway: Gateway,
    admin: Admin,
    memory: MemoryConfirmedMeanwhile,
    engine: AsyncEngine,
    lilith: Personality,
) -> None:
    events = [event async for event in gateway.generate(command("my address is 1 Elm St"))]
    accepted = events[0]
    assert isinstance(accepted, JobAccepted)  # streamed; the bot is posting it

    async def bot_confirms() -> None:
        with contextlib.suppress(NotFound):  # her job is gone: nothing to deliver
            await gateway.confirm_delivery(accepted.job_id, ["answer-1"])

    memory.meanwhile = bot_confirms
    user = await gateway.user(ALICE)
    await admin.delete_user_data(Principal(user))

    assert memory.meanwhile is None  # the confirmation did land during the deletion
    assert [e for e in memory.exchanges if e.user_id == user.id] == []
    async with engine.connect() as conn:
        for table, column in ((t.users, t.users.c.id), (t.jobs, t.jobs.c.user_id)):
            count = await conn.scalar(
                sa.select(sa.func.count()).select_from(table).where(column == user.id)
            )
            assert count == 0, table.name
