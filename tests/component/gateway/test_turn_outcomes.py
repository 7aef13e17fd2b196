"""What becomes of a scheduled turn's event, on real Postgres with a ManualClock: delivered with
its job, never posted twice, and what a dropped free-will turn does to free will.

- ConfirmDelivery of a turn's job delivers its bot event in the same statement, and a turn
  sent again after its answer was posted is refused (TURN_DELIVERED), acknowledged with the
  messages showing it, instead of replayed for the bot to post again;
- a free-will turn the bot drops gives its slot of the day's budget back (the next one takes
  that slot again); dropped for a lasting reason (the provider's quota) it switches free will
  off with the reason, which the status shows;
- a key its provider refused in use does not pay for free will.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.gateway import group_tables as g
from tzurot.gateway.clock import ManualClock
from tzurot.gateway.domain import JobAccepted, Location, Personality, User, WalletKey
from tzurot.gateway.freewill import FreeWill, FreeWillStatus
from tzurot.gateway.freewill_drops import slot_key
from tzurot.gateway.freewill_plan import FreeWillPolicy
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import AdminStore, GatewayStore
from tzurot.runtime.errors import FailedPrecondition, NotFound

from .conftest import ALICE, LIMITS, FakeInference, FakeKeyVault, FakeMemory, command

pytestmark = pytest.mark.component

T0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)  # noon UTC: outside the default quiet hours
WHERE = Location(guild_id="guild-1", channel_id="channel-1")
POLICY = FreeWillPolicy(
    quiet_after=timedelta(hours=1), min_gap=timedelta(minutes=30), check_every=(60.0, 60.0)
)


@dataclass
class RefusingKeyVault(FakeKeyVault):
    """The fake wallet, where the provider refused some keys in use (`refused`)."""

    refused: set[str] | None = None

    async def list_keys(self, user_id: str) -> list[WalletKey]:
        return [
            replace(k, rejected_at=T0) if k.provider in (self.refused or set()) else k
            for k in await super().list_keys(user_id)
        ]


@dataclass
class Scene:
    gateway: Gateway
    freewill: FreeWill
    clock: ManualClock
    alice: User
    provider: str


@pytest.fixture
def wallet_keys() -> RefusingKeyVault:
    return RefusingKeyVault()


@pytest.fixture
async def scene(
    store: GatewayStore,
    inference: FakeInference,
    memory: FakeMemory,
    wallet_keys: RefusingKeyVault,
    lilith: Personality,
) -> Scene:
    """Lilith activated in WHERE, free will on for her there (budget 2), paid by Alice."""
    clock = ManualClock(T0)
    gateway = Gateway(
        store=store,
        inference=inference,
        memory=memory,
        keyvault=wallet_keys,
        limits=LIMITS,
        clock=clock,
    )

    async def personality_of(personality_id: str) -> Personality:
        found = await gateway.personality_by_id(personality_id)
        if found is None:
            raise NotFound("gone", reason="PERSONALITY_NOT_FOUND")
        return found

    freewill = FreeWill(
        gateway.group_store,
        clock,
        wallet_keys,
        gateway.effective_config,
        personality_of,
        policy=POLICY,
        seed="turn-outcomes",
    )
    alice = await gateway.user(ALICE)
    provider = (await gateway.effective_config(lilith, alice, WHERE.conversation_id)).config
    await wallet_keys.put_key(alice.id, provider.provider, SecretStr("sk-alice-0123456789"))
    await AdminStore(store.engine).activate(WHERE.guild_id, WHERE.channel_id, lilith.id, alice.id)
    await freewill.set(alice, WHERE, lilith, enabled=True, daily_budget=2)
    return Scene(gateway, freewill, clock, alice, provider.provider)


async def check_in(scene: Scene) -> str:
    """A human speaks, the channel goes quiet for two hours: free will queues a check-in."""
    scene.clock.advance(timedelta(minutes=1))
    await scene.gateway.group_store.note_human(WHERE, scene.clock.now(), interrupt=True)
    scene.clock.advance(timedelta(hours=2))
    assert await scene.freewill.tick() == 1
    return (await pending_turns(scene.gateway.group_store.engine))[-1][0]


async def pending_turns(engine: AsyncEngine) -> list[tuple[str, str]]:
    """(id, dedup key) of the turns not acknowledged yet, oldest first."""
    e = g.bot_events.c
    async with engine.connect() as conn:
        found = await conn.execute(
            sa.select(sa.cast(e.id, sa.Text), e.dedup_key)
            .where(e.kind == "turn", e.delivered_at.is_(None))
            .order_by(e.created_at)
        )
        return [(r[0], r[1]) for r in found]


async def status(scene: Scene) -> FreeWillStatus:
    [found] = await scene.freewill.statuses(WHERE)
    return found


async def run_turn(scene: Scene, event_id: str) -> str:
    """Generate for the turn, as the bot calls it; the job id."""
    turn = command("", key=f"turn:{event_id}", turn_id=event_id)
    events = [e async for e in scene.gateway.generate(turn)]
    accepted = events[0]
    assert isinstance(accepted, JobAccepted)
    return accepted.job_id


# ---- a turn's event and its job ----


async def test_confirm_delivery_of_a_turn_delivers_its_event_with_the_messages(
    scene: Scene,
) -> None:
    """The bot posted the turn: its event is done even if the bot dies before its own
    acknowledgement, so it is never sent (and posted) again."""
    event_id = await check_in(scene)
    job_id = await run_turn(scene, event_id)
    await scene.gateway.confirm_delivery(job_id, ["m1", "m2"])
    event = await scene.gateway.group_store.event(event_id)
    assert event is not None
    assert (event.delivered, event.message_ids, event.dropped_reason) == (True, ("m1", "m2"), "")


async def test_a_turn_sent_again_after_it_was_posted_is_refused_not_replayed(
    scene: Scene, inference: FakeInference, engine: AsyncEngine
) -> None:
    """Re-delivered after its answer was posted (an event delivered before ConfirmDelivery
    delivered events too, or claimed twice), the turn is not replayed for the bot to post
    again: TURN_DELIVERED, and its event acknowledged with the messages that show it."""
    event_id = await check_in(scene)
    job_id = await run_turn(scene, event_id)
    await scene.gateway.confirm_delivery(job_id, ["m1"])
    async with engine.begin() as conn:  # as an event acknowledged before this fix was left
        await conn.execute(
            sa.update(g.bot_events)
            .where(g.bot_events.c.id == event_id)
            .values(delivered_at=None, message_ids=[])
        )
    with pytest.raises(FailedPrecondition) as refused:
        await run_turn(scene, event_id)
    assert refused.value.reason == "TURN_DELIVERED"
    assert len(inference.requests) == 1  # generated once
    event = await scene.gateway.group_store.event(event_id)
    assert event is not None
    assert (event.delivered, event.message_ids) == (True, ("m1",))


# ---- a dropped free-will turn ----


async def test_a_turn_dropped_for_the_providers_quota_switches_free_will_off_with_the_reason(
    scene: Scene,
) -> None:
    event_id = await check_in(scene)
    assert (await status(scene)).used_today == 1
    await scene.gateway.events.ack(event_id, [], "PROVIDER_QUOTA_EXCEEDED")
    after = await status(scene)
    assert (after.enabled, after.disabled_reason, after.used_today) == (
        False,
        "PROVIDER_QUOTA_EXCEEDED",
        0,  # nothing was posted: not counted against the day
    )


async def test_a_turn_dropped_for_a_passing_reason_gives_its_slot_back_and_stays_on(
    scene: Scene,
) -> None:
    """Two check-ins queued (the budget), the first dropped: free will stays on, and the
    next quiet spell queues one more, in the slot the dropped one left."""
    first = await check_in(scene)
    second = await check_in(scene)
    assert (await status(scene)).used_today == 2
    await scene.gateway.events.ack(first, [], "PROVIDER_RATE_LIMITED")
    after = await status(scene)
    assert (after.enabled, after.disabled_reason, after.used_today) == (True, "", 1)
    third = await check_in(scene)
    day = scene.clock.now().date()
    assert await pending_turns(scene.gateway.group_store.engine) == [
        (second, slot_key(WHERE.conversation_id, day, 2)),
        (third, slot_key(WHERE.conversation_id, day, 1)),
    ]
    assert (await status(scene)).used_today == 2


async def test_a_key_its_provider_refused_does_not_pay_for_free_will(
    scene: Scene, wallet_keys: RefusingKeyVault, lilith: Personality
) -> None:
    """`/wallet list` shows it inactive: free will is not turned on with it, and the next look
    switches it off instead of queueing turns that fail."""
    wallet_keys.refused = {scene.provider}
    with pytest.raises(FailedPrecondition) as refused:
        await scene.freewill.set(scene.alice, WHERE, lilith, enabled=True)
    assert refused.value.reason == "NO_API_KEY"
    await scene.gateway.group_store.note_human(WHERE, scene.clock.now(), interrupt=True)
    scene.clock.advance(timedelta(hours=2))
    assert await scene.freewill.tick() == 0
    after = await status(scene)
    assert (after.enabled, after.disabled_reason) == (False, "NO_API_KEY")
    assert await pending_turns(scene.gateway.group_store.engine) == []
