"""What Generate checks before a job runs: rate limits, NSFW, denylist, guest mode, and what
it resolves for inference (model override, settings cascade, persona)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.gateway import tables as t
from tzurot.gateway.admin import Admin, Principal, SettingTarget
from tzurot.gateway.domain import (
    Actor,
    ConfigSource,
    DenyEntry,
    DenyMode,
    DenyScope,
    DenyTarget,
    JobAccepted,
    JobStatus,
    LlmConfig,
    Location,
    Persona,
    Personality,
)
from tzurot.gateway.personalities import PersonalitySeed
from tzurot.gateway.ratelimit import BucketPolicy
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import GatewayStore, NewJob
from tzurot.runtime.errors import (
    FailedPrecondition,
    PermissionDenied,
    ResourceExhausted,
    Unavailable,
)

from .conftest import ALICE, LIMITS, FakeInference, FakeKeyVault, FakeMemory, answer, command

pytestmark = pytest.mark.component

ROOT = Actor(platform_user_id="999", display_name="Root")
NO_REFILL = 1 / 3600
NSFW_CHANNEL = Location(guild_id="guild-1", channel_id="nsfw-1", nsfw_channel=True)
SFW_CHANNEL = Location(guild_id="guild-1", channel_id="channel-1")


def make_gateway(
    store: GatewayStore,
    inference: FakeInference,
    memory: FakeMemory,
    keyvault: FakeKeyVault,
    **limits: object,
) -> Gateway:
    return Gateway(
        store=store,
        inference=inference,
        memory=memory,
        keyvault=keyvault,
        limits=dataclasses.replace(LIMITS, superusers=frozenset({"999"}), **limits),  # type: ignore[arg-type]
    )


def admin_for(
    gateway: Gateway, store: GatewayStore, memory: FakeMemory, keyvault: FakeKeyVault
) -> Admin:
    return Admin(
        gateway=gateway,
        store=store,
        memory=memory,
        keyvault=keyvault,
        operator_identities=frozenset({"cli"}),
    )


async def run(gateway: Gateway, **fields: object) -> list[object]:
    return [event async for event in gateway.generate(command(**fields))]  # type: ignore[arg-type]


# ---- rate limits ----


async def test_user_bucket_limits_new_messages_not_duplicates_nor_superusers(
    store: GatewayStore,
    inference: FakeInference,
    memory: FakeMemory,
    keyvault: FakeKeyVault,
    lilith: Personality,
) -> None:
    gateway = make_gateway(
        store, inference, memory, keyvault, user_bucket=BucketPolicy(2, NO_REFILL)
    )
    await run(gateway, key="m1")
    await run(gateway, key="m2")
    with pytest.raises(ResourceExhausted) as denied:
        await run(gateway, key="m3")
    assert denied.value.reason == "RATE_LIMITED"
    assert denied.value.retry_after_seconds is not None
    assert denied.value.retry_after_seconds > 0
    replay = await run(gateway, key="m1")  # a duplicate event costs nothing
    assert isinstance(replay[0], JobAccepted)
    assert replay[0].replayed
    for i in range(5):
        await run(gateway, key=f"root-{i}", actor=ROOT)
    assert len(inference.requests) == 7


async def test_channel_bucket_is_shared_by_the_channel_users(
    store: GatewayStore,
    inference: FakeInference,
    memory: FakeMemory,
    keyvault: FakeKeyVault,
    lilith: Personality,
) -> None:
    gateway = make_gateway(
        store, inference, memory, keyvault, channel_bucket=BucketPolicy(1, NO_REFILL)
    )
    await run(gateway, key="m1")
    bob = Actor(platform_user_id="2", display_name="Bob")
    with pytest.raises(ResourceExhausted) as denied:
        await run(gateway, key="m2", actor=bob)
    assert "this channel" in denied.value.message
    await run(gateway, key="m3", actor=bob, location=Location(channel_id="elsewhere"))


# ---- NSFW ----


async def nsfw_personality(store: GatewayStore) -> Personality:
    p, _ = await store.import_personality(
        PersonalitySeed(name="Vamp", nsfw=True), owner_user_id=None
    )
    return p


async def test_nsfw_personality_needs_an_age_restricted_channel_and_verification(
    store: GatewayStore,
    gateway: Gateway,
    lilith: Personality,
) -> None:
    await nsfw_personality(store)
    with pytest.raises(PermissionDenied) as sfw:
        await run(gateway, key="a", personality="vamp", location=SFW_CHANNEL)
    assert sfw.value.reason == "NSFW_CHANNEL_REQUIRED"
    dm = Location(channel_id="dm-1")
    with pytest.raises(PermissionDenied) as unverified:
        await run(gateway, key="b", personality="vamp", location=dm)
    assert unverified.value.reason == "NSFW_VERIFICATION_REQUIRED"
    # Using the bot once in an age-restricted channel verifies the user, for good.
    await run(gateway, key="c", personality="lilith", location=NSFW_CHANNEL)
    assert (await gateway.user(ALICE)).nsfw_verified
    await run(gateway, key="d", personality="vamp", location=dm)


async def test_a_retried_job_is_asked_where_it_was_asked_first(
    store: GatewayStore, gateway: Gateway, inference: FakeInference, lilith: Personality
) -> None:
    """An operator's retry (or an answer generated again after its bot died) rebuilds the
    request from the job's row: an NSFW personality's job in a thread of an age-restricted
    channel is still in that thread of that channel, not refused NSFW_CHANNEL_REQUIRED."""
    await nsfw_personality(store)
    thread = Location(guild_id="guild-1", channel_id="nsfw-1", thread_id="t-9", nsfw_channel=True)
    inference.error = Unavailable("provider down", reason="PROVIDER_UNAVAILABLE")
    inference.script = []
    with pytest.raises(Unavailable):
        await run(gateway, key="q", personality="vamp", location=thread)
    inference.error, inference.script = None, answer("Back from the dark.")
    failed = await store.get_job_by_key("q")
    assert failed is not None
    assert failed.location == thread
    retried = await gateway.retry_job(failed.id)
    assert (retried.status, retried.content) == (JobStatus.STREAMED, "Back from the dark.")
    assert inference.requests[-1].location == thread


# ---- denylist ----


# A guild and a channel as Discord names them (the denylist takes their ids only).
DENIED_HERE = Location(guild_id="100000000000000101", channel_id="100000000000000102")


@pytest.mark.parametrize(
    ("target", "target_id", "scope", "scope_id"),
    [
        (DenyTarget.USER, ALICE.platform_user_id, DenyScope.BOT, ""),
        (DenyTarget.USER, ALICE.platform_user_id, DenyScope.GUILD, DENIED_HERE.guild_id),
        (DenyTarget.USER, ALICE.platform_user_id, DenyScope.CHANNEL, DENIED_HERE.channel_id),
        (DenyTarget.USER, ALICE.platform_user_id, DenyScope.PERSONALITY, "lilith"),
        (DenyTarget.GUILD, DENIED_HERE.guild_id, DenyScope.BOT, ""),
    ],
)
async def test_denylist_entries_refuse_in_their_scope(
    store: GatewayStore,
    *,
    inference: FakeInference,
    memory: FakeMemory,
    keyvault: FakeKeyVault,
    lilith: Personality,
    target: DenyTarget,
    target_id: str,
    scope: DenyScope,
    scope_id: str,
) -> None:
    gateway = make_gateway(store, inference, memory, keyvault)
    admin = admin_for(gateway, store, memory, keyvault)
    entry = DenyEntry(
        "", target, target_id, scope, scope_id, DenyMode.BLOCK, "spam", datetime.now(UTC)
    )
    await admin.add_deny(Principal(None), entry)
    with pytest.raises(PermissionDenied) as denied:
        await run(gateway, key="a", location=DENIED_HERE)
    assert denied.value.reason == "DENYLISTED"
    # Elsewhere (another guild's channel) the entry does not apply, unless it is bot-wide.
    elsewhere = Location(guild_id="guild-2", channel_id="channel-9")
    if scope is DenyScope.BOT and target is DenyTarget.USER:
        with pytest.raises(PermissionDenied):
            await run(gateway, key="b", location=elsewhere)
    elif scope is not DenyScope.PERSONALITY:
        await run(gateway, key="b", location=elsewhere)
    # Operators are never filtered.
    await run(gateway, key="c", actor=ROOT, location=DENIED_HERE)


async def test_a_mute_is_refused_with_its_own_reason(
    store: GatewayStore,
    gateway: Gateway,
    memory: FakeMemory,
    keyvault: FakeKeyVault,
    lilith: Personality,
) -> None:
    admin = admin_for(gateway, store, memory, keyvault)
    entry = DenyEntry(
        "",
        DenyTarget.USER,
        ALICE.platform_user_id,
        DenyScope.BOT,
        "",
        DenyMode.MUTE,
        "",
        datetime.now(UTC),
    )
    added = await admin.add_deny(Principal(None), entry)
    with pytest.raises(PermissionDenied) as denied:
        await run(gateway, key="a")
    assert denied.value.reason == "MUTED"
    await admin.remove_deny(Principal(None), added.id)
    await run(gateway, key="b")


# ---- guest mode ----


async def free_personality(store: GatewayStore) -> Personality:
    p, _ = await store.import_personality(
        PersonalitySeed.model_validate(
            {
                "name": "Freebie",
                "llm": {"provider": "openrouter", "model": "free/model", "free_use": True},
            }
        ),
        owner_user_id=None,
    )
    return p


async def usage_types(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return list(
            await conn.scalars(sa.select(t.usage_log.c.request_type).order_by(t.usage_log.c.id))
        )


async def test_guests_share_a_daily_budget_and_a_per_user_window(
    store: GatewayStore,
    engine: AsyncEngine,
    inference: FakeInference,
    memory: FakeMemory,
    keyvault: FakeKeyVault,
) -> None:
    await free_personality(store)
    gateway = make_gateway(
        store,
        inference,
        memory,
        keyvault,
        guest_daily_budget=3,
        guest_user_bucket=BucketPolicy(2, NO_REFILL),
    )
    await run(gateway, key="a1", personality="freebie")
    await run(gateway, key="a2", personality="freebie")
    with pytest.raises(ResourceExhausted) as window:
        await run(gateway, key="a3", personality="freebie")
    assert window.value.reason == "RATE_LIMITED"
    bob = Actor(platform_user_id="2", display_name="Bob")
    await run(gateway, key="b1", personality="freebie", actor=bob)
    with pytest.raises(ResourceExhausted) as budget:
        await run(gateway, key="b2", personality="freebie", actor=bob)
    assert budget.value.reason == "GUEST_BUDGET_EXHAUSTED"
    # A user with their own key is no guest: the budget does not apply.
    carol = Actor(platform_user_id="3", display_name="Carol")
    await keyvault.put_key((await gateway.user(carol)).id, "openrouter", SecretStr("sk-carol"))
    await run(gateway, key="c1", personality="freebie", actor=carol)
    assert await usage_types(engine) == ["guest", "guest", "guest", "chat"]


async def test_a_guest_job_taken_over_after_its_lease_is_charged_and_logged_as_a_guest_one(
    store: GatewayStore,
    engine: AsyncEngine,
    inference: FakeInference,
    memory: FakeMemory,
    keyvault: FakeKeyVault,
) -> None:
    """A guest's job whose gateway died is run again by the next: it takes its share of the
    guests' budget and is logged `guest`, as the original run was."""
    freebie = await free_personality(store)
    gateway = make_gateway(store, inference, memory, keyvault, guest_daily_budget=1)
    user = await gateway.user(ALICE)
    job, claimed = await store.claim_job(
        NewJob(
            idempotency_key="a",
            user_id=user.id,
            personality_id=freebie.id,
            guild_id="guild-1",
            channel_id="channel-1",
            request_content="Hello Lilith",
            request_message_ids=["a"],
            author_id=ALICE.platform_user_id,
            author_name="Alice",
        ),
        start=True,
    )
    assert claimed
    async with engine.begin() as conn:  # its gateway died long ago
        await conn.execute(
            sa.update(t.jobs)
            .where(t.jobs.c.id == job.id)
            .values(heartbeat_at=sa.func.now() - sa.text("interval '10 minutes'"))
        )

    accepted, *_ = await run(gateway, key="a", personality="freebie")

    assert isinstance(accepted, JobAccepted)
    assert (accepted.job_id, accepted.replayed) == (job.id, False)
    assert await usage_types(engine) == ["guest"]
    with pytest.raises(ResourceExhausted) as spent:  # the day's one guest job was this one
        await run(gateway, key="b", personality="freebie")
    assert spent.value.reason == "GUEST_BUDGET_EXHAUSTED"


async def test_a_guest_job_retried_past_the_spent_budget_is_refused_and_stays_retryable(
    store: GatewayStore, inference: FakeInference, memory: FakeMemory, keyvault: FakeKeyVault
) -> None:
    await free_personality(store)
    gateway = make_gateway(store, inference, memory, keyvault, guest_daily_budget=1)
    inference.script = []
    inference.error = Unavailable("openrouter is unreachable", reason="PROVIDER_UNAVAILABLE")
    with pytest.raises(Unavailable):
        await run(gateway, key="a", personality="freebie")
    inference.script, inference.error = answer("Free again."), None

    with pytest.raises(ResourceExhausted) as spent:  # the resend runs inference again
        await run(gateway, key="a", personality="freebie")

    assert spent.value.reason == "GUEST_BUDGET_EXHAUSTED"
    assert len(inference.requests) == 1
    job = await store.get_job_by_key("a")
    assert job is not None
    assert job.status is JobStatus.FAILED
    assert job.error is not None
    # Refused for the spent budget, in its words, and retryable (UNAVAILABLE).
    assert (job.error.code, job.error.reason) == ("UNAVAILABLE", "GUEST_BUDGET_EXHAUSTED")


async def test_without_guest_mode_a_keyless_user_is_told_to_add_a_key(
    store: GatewayStore, inference: FakeInference, memory: FakeMemory, keyvault: FakeKeyVault
) -> None:
    await free_personality(store)
    gateway = make_gateway(store, inference, memory, keyvault, guest_mode=False)
    with pytest.raises(FailedPrecondition) as refused:
        await run(gateway, key="a", personality="freebie")
    assert refused.value.reason == "NO_API_KEY"
    assert inference.requests == []


# ---- what inference is asked with ----


async def test_override_settings_and_persona_reach_inference(
    store: GatewayStore,
    *,
    gateway: Gateway,
    inference: FakeInference,
    memory: FakeMemory,
    keyvault: FakeKeyVault,
    lilith: Personality,
) -> None:
    admin = admin_for(gateway, store, memory, keyvault)
    alice = Principal(await gateway.user(ALICE))
    mine = await admin.create_llm_config(
        alice, LlmConfig(id="", name="fast", provider="openai", model="gpt-x"), global_=False
    )
    await admin.set_model(alice, SettingTarget(ConfigSource.USER_PERSONALITY, "lilith"), mine.id)
    await admin.set_setting(
        Principal(None), SettingTarget(ConfigSource.GLOBAL), "max_history_messages", 40
    )
    await admin.set_setting(
        alice,
        SettingTarget(ConfigSource.CHANNEL, location=SFW_CHANNEL, manage_channels=True),
        "memory_limit",
        5,
    )
    await admin.set_setting(
        alice, SettingTarget(ConfigSource.USER_PERSONALITY, "lilith"), "max_history_messages", 12
    )
    await admin.set_persona(alice, "", Persona(name="Al", pronouns="she/her"))

    await run(gateway, key="a")

    [request] = inference.requests
    assert (request.config.config.model, request.config.source) == (
        "gpt-x",
        ConfigSource.USER_PERSONALITY,
    )
    assert (request.max_history_messages, request.memory_limit, request.memory_threshold) == (
        12,
        5,
        0.5,
    )
    assert request.persona == Persona(name="Al", pronouns="she/her")
    settings = {s.key: s for s in await admin.get_settings(alice, "lilith", SFW_CHANNEL)}
    assert settings["max_history_messages"].source is ConfigSource.USER_PERSONALITY
    assert settings["memory_limit"].source is ConfigSource.CHANNEL
    assert settings["memory_threshold"].source is ConfigSource.HARDCODED
    reset = await admin.reset_setting(
        alice, SettingTarget(ConfigSource.USER_PERSONALITY, "lilith"), "max_history_messages"
    )
    assert (reset.value, reset.source) == (40, ConfigSource.GLOBAL)
