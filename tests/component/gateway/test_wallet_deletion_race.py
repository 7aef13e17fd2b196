"""A `/wallet set` racing the user's data deletion never leaves her encrypted key in keyvault
after the deletion finished ("nothing left after deletion").

The set checks that she is not being deleted, asks the provider whether the key works (seconds)
and then has keyvault store it. A deletion that ran in between used to remove her keys before
that write, which then landed for a user who no longer exists. Now the write holds her key-write
lock (shared) and re-reads the deletion's mark under it, and the mark takes that lock
(exclusive) before it is recorded (store/deletions.py):
- a deletion recorded while the provider was being asked: the write finds the mark (or the
  user gone) and refuses USER_DATA_DELETING, keyvault is not asked;
- a deletion asked while keyvault is storing the key: its mark waits for the write, then the
  deletion lists her keys and finds, and removes, the one just written.

Real Postgres for `core` (the lock is a Postgres advisory lock); inference and keyvault are
fakes whose key check and key write are held mid-way.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.gateway import tables as t
from tzurot.gateway.admin import Admin, Principal
from tzurot.gateway.domain import KeyCheck, WalletKey
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import GatewayStore
from tzurot.gateway.wallet import Wallet
from tzurot.runtime.errors import PermissionDenied

from .conftest import ALICE, LIMITS, FakeInference, FakeKeyVault, FakeMemory

pytestmark = pytest.mark.component

KEY = "sk-or-v1-racingKEYzq7Wm3Xv9Rt2Lp8"


@dataclass
class HeldInference(FakeInference):
    """The provider's check of a new key waits for `check_gate` (`checking` set first)."""

    check_gate: asyncio.Event = field(default_factory=asyncio.Event)
    checking: asyncio.Event = field(default_factory=asyncio.Event)

    async def validate_key(self, provider: str, api_key: SecretStr) -> KeyCheck:
        self.checking.set()
        await self.check_gate.wait()
        return await super().validate_key(provider, api_key)


@dataclass
class HeldKeyVault(FakeKeyVault):
    """A key write waits for `put_gate` (`putting` set first), then stores the key."""

    put_gate: asyncio.Event = field(default_factory=asyncio.Event)
    putting: asyncio.Event = field(default_factory=asyncio.Event)
    puts: int = 0

    async def put_key(self, user_id: str, provider: str, api_key: SecretStr) -> WalletKey:
        self.puts += 1
        self.putting.set()
        await self.put_gate.wait()
        return await super().put_key(user_id, provider, api_key)


@pytest.fixture
def held_inference() -> HeldInference:
    return HeldInference()


@pytest.fixture
def held_keyvault() -> HeldKeyVault:
    return HeldKeyVault()


@pytest.fixture
def racing(
    store: GatewayStore,
    memory: FakeMemory,
    held_inference: HeldInference,
    held_keyvault: HeldKeyVault,
) -> tuple[Gateway, Wallet, Admin]:
    """The gateway, its wallet and its admin over the held fakes."""
    gateway = Gateway(
        store=store,
        inference=held_inference,
        memory=memory,
        turns=memory,
        keyvault=held_keyvault,
        limits=LIMITS,
    )
    wallet = Wallet(users=gateway, checker=held_inference, keyvault=held_keyvault)
    admin = Admin(
        gateway=gateway,
        store=store,
        memory=memory,
        keyvault=held_keyvault,
        operator_identities=frozenset({"cli"}),
    )
    return gateway, wallet, admin


async def user_rows(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(sa.select(sa.func.count()).select_from(t.users)) or 0)


async def waiting_for_a_lock(engine: AsyncEngine, task: asyncio.Task[object]) -> bool:
    """Whether `task` ends up waiting for an advisory lock in Postgres (True), or ends first
    (False); deterministic, whatever the timing: one of the two happens."""
    query = sa.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
    for _ in range(1000):
        if task.done():
            return False
        async with engine.connect() as conn:
            if await conn.scalar(query):
                return True
        await asyncio.sleep(0.01)
    raise AssertionError("the deletion neither waited nor finished within 10 s")


async def test_a_deletion_recorded_while_the_key_is_checked_refuses_its_write(
    racing: tuple[Gateway, Wallet, Admin],
    held_inference: HeldInference,
    held_keyvault: HeldKeyVault,
    engine: AsyncEngine,
) -> None:
    gateway, wallet, admin = racing
    held_keyvault.put_gate.set()
    alice = await gateway.user(ALICE)
    setting = asyncio.create_task(
        wallet.set(ALICE, "openrouter", SecretStr(KEY), skip_validation=False)
    )
    try:
        await held_inference.checking.wait()  # past "is she being deleted?": she was not

        await admin.delete_user_data(Principal(alice))  # the whole deletion, meanwhile
        assert await user_rows(engine) == 0
    finally:
        held_inference.check_gate.set()

    with pytest.raises(PermissionDenied) as refused:
        await setting
    assert refused.value.reason == "USER_DATA_DELETING"
    assert held_keyvault.puts == 0  # keyvault never asked
    assert held_keyvault.keys == {}


async def test_a_deletion_asked_while_the_key_is_written_waits_for_it_then_removes_it(
    racing: tuple[Gateway, Wallet, Admin],
    held_inference: HeldInference,
    held_keyvault: HeldKeyVault,
    engine: AsyncEngine,
) -> None:
    gateway, wallet, admin = racing
    held_inference.check_gate.set()
    alice = await gateway.user(ALICE)
    setting = asyncio.create_task(
        wallet.set(ALICE, "openrouter", SecretStr(KEY), skip_validation=False)
    )
    deleting: asyncio.Task[object] | None = None
    try:
        await held_keyvault.putting.wait()  # keyvault is storing it, not answered yet

        deleting = asyncio.create_task(admin.delete_user_data(Principal(alice)))
        waited = await waiting_for_a_lock(engine, deleting)
        async with engine.connect() as conn:
            marked = await conn.scalar(
                sa.select(t.users.c.deletion_requested_at).where(t.users.c.id == alice.id)
            )
    finally:
        held_keyvault.put_gate.set()

    stored = await setting  # written: she was not being deleted when it began
    assert stored.key.provider == "openrouter"
    assert deleting is not None
    await deleting

    assert held_keyvault.keys == {}  # the deletion found it and removed it
    assert await user_rows(engine) == 0
    assert waited  # its mark waited for the write
    assert marked is None  # and was not recorded meanwhile
