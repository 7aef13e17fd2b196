"""A deletion cut short after memory forgot (its tombstone is in place) and before gateway
deleted its row finishes by itself (admin/deletions.py): the sweep runs it again, nobody has
to ask. Meanwhile nothing is answered that memory would silently not keep: the user is
refused, the personality is found by no name. A request that died holds its deletion until
its lease runs out; replicas sweeping together finish each deletion once. One that keeps
failing shows in the metrics (pending, age of the oldest, sweep failures).

Real Postgres for `core`; memory is the conftest fake, which keeps a tombstone as memory does
(an exchange of a forgotten id is accepted and not stored: `not_stored`). The failure is a
store double that raises once where gateway deletes its row (Postgres failing over there).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.gateway import tables as t
from tzurot.gateway.admin import Admin, Principal
from tzurot.gateway.domain import Actor, JobAccepted, Personality
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import GatewayStore
from tzurot.runtime.errors import FailedPrecondition, NotFound, PermissionDenied, Unavailable

from .conftest import ALICE, FakeKeyVault, FakeMemory, command, seed

pytestmark = pytest.mark.component


async def converse(gateway: Gateway, key: str, actor: Actor = ALICE) -> str:
    """One exchange answered and delivered (stored, unless memory forgot someone): its job."""
    events = [event async for event in gateway.generate(command(key=key, actor=actor))]
    accepted = events[0]
    assert isinstance(accepted, JobAccepted)
    await gateway.confirm_delivery(accepted.job_id, [f"{key}-answer"])
    return accepted.job_id


def fails_once(
    monkeypatch: pytest.MonkeyPatch, target: object, name: str, error: BaseException
) -> None:
    """`target.name` raises `error` on its first call, then works again."""
    real: Callable[..., Awaitable[Any]] = getattr(target, name)

    async def failing(*args: Any) -> Any:
        monkeypatch.setattr(target, name, real)
        raise error

    monkeypatch.setattr(target, name, failing)


async def rows(engine: AsyncEngine, table: sa.Table, target_id: str) -> int:
    async with engine.connect() as conn:
        count = await conn.scalar(
            sa.select(sa.func.count()).select_from(table).where(table.c.id == target_id)
        )
    return int(count or 0)


async def test_her_data_deletion_cut_short_after_memory_forgot_her_finishes_by_itself(
    gateway: Gateway,
    admin: Admin,
    *,
    memory: FakeMemory,
    keyvault: FakeKeyVault,
    engine: AsyncEngine,
    lilith: Personality,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await converse(gateway, "msg-1")
    user = await gateway.user(ALICE)
    keyvault.keys[user.id, "openrouter"] = SecretStr("sk-or-hers")
    fails_once(monkeypatch, admin._db, "delete_user", Unavailable("postgres failed over"))

    with pytest.raises(FailedPrecondition) as failed:
        await admin.delete_user_data(Principal(user))
    assert failed.value.reason == "DELETION_PENDING"
    assert "nothing to ask again" in failed.value.message
    assert memory.forgotten_users == [user.id]  # memory forgot her: its tombstone is in place
    assert await rows(engine, t.users, user.id) == 1  # gateway still knows her

    # Meanwhile she is refused, not answered and silently not kept.
    with pytest.raises(PermissionDenied) as refused:
        await converse(gateway, "msg-2")
    assert refused.value.reason == "USER_DATA_DELETING"
    assert "being deleted" in refused.value.message
    with pytest.raises(PermissionDenied):  # nor anything else on her behalf (asking again)
        await admin.principal(ALICE, None)
    assert memory.not_stored == []
    async with engine.connect() as conn:
        jobs = await conn.scalar(
            sa.select(sa.func.count()).select_from(t.jobs).where(t.jobs.c.user_id == user.id)
        )
    assert jobs == 0

    assert await admin.finish_pending_deletions() == 1  # the sweep; she never asked again

    assert await rows(engine, t.users, user.id) == 0
    assert [e for e in memory.exchanges if e.user_id == user.id] == []
    assert keyvault.keys == {}
    assert memory.forgotten_users == [user.id, user.id]  # asked again: idempotent
    # She comes back: a new user, whose exchanges memory keeps.
    job_id = await converse(gateway, "msg-3")
    again = await gateway.user(ALICE)
    assert again.id != user.id
    assert [e.job_id for e in memory.exchanges if e.user_id == again.id] == [job_id]
    assert await admin.finish_pending_deletions() == 0


async def test_a_personality_deletion_cut_short_after_memory_forgot_it_finishes_by_itself(
    gateway: Gateway,
    admin: Admin,
    *,
    store: GatewayStore,
    memory: FakeMemory,
    engine: AsyncEngine,
    lilith: Personality,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await converse(gateway, "msg-1")
    fails_once(monkeypatch, admin._db, "delete_personality", Unavailable("postgres failed over"))

    with pytest.raises(FailedPrecondition) as failed:
        await admin.delete_personality(Principal(None), "lilith")
    assert failed.value.reason == "DELETION_PENDING"
    assert memory.forgotten_personalities == [lilith.id]
    assert await rows(engine, t.personalities, lilith.id) == 1

    # Meanwhile she answers nobody: no name, id or listing finds her, nor can her slug be
    # imported over the row her deletion removes.
    with pytest.raises(NotFound):
        await converse(gateway, "msg-2")
    assert await store.get_personality(lilith.id) is None
    assert await store.list_personalities() == []
    with pytest.raises(FailedPrecondition) as busy:
        await store.import_personality(seed("lilith"), owner_user_id=None)
    assert busy.value.reason == "PERSONALITY_DELETING"
    assert memory.not_stored == []

    assert await admin.finish_pending_deletions() == 1

    assert await rows(engine, t.personalities, lilith.id) == 0
    assert memory.exchanges == []
    # Imported again: a new personality (a new id, no tombstone), whose history is kept.
    back, created = await store.import_personality(seed("lilith"), owner_user_id=None)
    assert created
    assert back.id != lilith.id
    job_id = await converse(gateway, "msg-3")
    assert [e.job_id for e in memory.exchanges] == [job_id]


async def test_a_deletion_whose_request_died_waits_for_its_lease_then_any_replica_finishes_it(
    gateway: Gateway,
    store: GatewayStore,
    *,
    memory: FakeMemory,
    keyvault: FakeKeyVault,
    engine: AsyncEngine,
    lilith: Personality,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def replica(lease: float) -> Admin:
        return Admin(
            gateway=gateway,
            store=store,
            memory=memory,
            keyvault=keyvault,
            operator_identities=frozenset({"cli"}),
            deletion_lease_seconds=lease,
        )

    dying, other = replica(1.0), replica(60.0)
    await converse(gateway, "msg-1")
    user = await gateway.user(ALICE)
    # Its gateway stops (or is killed) after memory forgot her: nothing hands it over.
    fails_once(monkeypatch, dying._db, "delete_user", asyncio.CancelledError())
    with pytest.raises(asyncio.CancelledError):
        await dying.delete_user_data(Principal(user))
    assert memory.forgotten_users == [user.id]

    assert await other.finish_pending_deletions() == 0  # its request may still be running
    assert await rows(engine, t.users, user.id) == 1
    await asyncio.sleep(1.2)  # its lease runs out
    assert await other.finish_pending_deletions() == 1
    assert await rows(engine, t.users, user.id) == 0


async def test_replicas_sweeping_together_finish_each_deletion_once(
    gateway: Gateway,
    admin: Admin,
    *,
    store: GatewayStore,
    memory: FakeMemory,
    keyvault: FakeKeyVault,
    engine: AsyncEngine,
    lilith: Personality,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    users = []
    for n in range(4):
        actor = Actor(platform_user_id=f"20000000000000000{n}", display_name=f"User {n}")
        await converse(gateway, f"msg-{n}", actor)
        user = await gateway.user(actor)
        users.append(user.id)
        fails_once(monkeypatch, admin._db, "delete_user", Unavailable("postgres failed over"))
        with pytest.raises(FailedPrecondition):
            await admin.delete_user_data(Principal(user))
    second = Admin(
        gateway=gateway,
        store=store,
        memory=memory,
        keyvault=keyvault,
        operator_identities=frozenset({"cli"}),
    )

    done = await asyncio.gather(admin.finish_pending_deletions(), second.finish_pending_deletions())

    assert sum(done) == 4
    assert sorted(memory.forgotten_users) == sorted(users * 2)  # the request's, one sweep's
    async with engine.connect() as conn:
        assert await conn.scalar(sa.select(sa.func.count()).select_from(t.users)) == 0


def sample(name: str, kind: str) -> float:
    return REGISTRY.get_sample_value(name, {"kind": kind}) or 0.0


async def test_a_deletion_that_keeps_failing_shows_in_the_metrics(
    gateway: Gateway,
    admin: Admin,
    *,
    memory: FakeMemory,
    engine: AsyncEngine,
    lilith: Personality,
) -> None:
    await converse(gateway, "msg-1")
    failures = sample("tzurot_deletion_sweep_failures_total", "personality")
    memory.error = Unavailable("memory is down")
    with pytest.raises(FailedPrecondition):
        await admin.delete_personality(Principal(None), "lilith")
    async with engine.begin() as conn:  # asked for a minute ago
        await conn.execute(
            sa.update(t.personalities).values(
                deletion_requested_at=sa.func.now() - sa.text("interval '60 seconds'")
            )
        )

    for sweep in (1, 2):  # memory still down: each sweep fails it again
        assert await admin.finish_pending_deletions() == 0
        assert sample("tzurot_deletion_sweep_failures_total", "personality") == failures + sweep
        assert sample("tzurot_deletions_pending", "personality") == 1
        assert sample("tzurot_deletion_oldest_pending_seconds", "personality") >= 60
        assert sample("tzurot_deletions_pending", "user") == 0
        async with engine.begin() as conn:  # its 15 s wait, over
            await conn.execute(sa.update(t.personalities).values(deletion_lease_until=None))

    memory.error = None
    assert await admin.finish_pending_deletions() == 1
    assert sample("tzurot_deletion_sweep_failures_total", "personality") == failures + 2
    assert sample("tzurot_deletions_pending", "personality") == 0
    assert sample("tzurot_deletion_oldest_pending_seconds", "personality") == 0
