"""Scheduled turns (free will, chain replies) over real mTLS gRPC on real Postgres, with a
ManualClock: what they are stored as, who they are said for, when they are no longer wanted,
and a round that a late speaker of an older one must not replace.

- a scheduled turn is stored with no user (the channel's history, nobody's own: the payer's
  undo and clear never take it), forms no long-term memory, and is asked of inference with
  `shared_context` and no persona, paid by its payer;
- free will is for activated personalities: /freewill on refuses another (NOT_ACTIVATED), a
  deactivation switches it off (DEACTIVATED), and a chain reply for a personality deactivated
  since is dropped (NOT_ACTIVATED);
- a queued free-will turn is checked again when it runs: FREEWILL_OFF, QUIET_HOURS, STALE;
- a speaker of an older round answering late leaves the newer round as it is.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from google.protobuf import struct_pb2
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tzurot.db.engine import async_url
from tzurot.gateway.app import start_gateway
from tzurot.gateway.clock import ManualClock
from tzurot.runtime.errors import from_rpc_error
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

from . import test_grpc as g
from .backends_support import serve_backends

pytestmark = pytest.mark.component

connect = g.connect
Connect = g.Connect

T0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)  # noon UTC: outside the quiet hours below
ALICE = g.ACTOR
WHERE = g.WHERE
PERSONA = gw.Persona(preferred_name="Ali", description="Ali lives at 12 Elm Street.")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
async def mesh(pki: Path, core_url: str, clock: ManualClock) -> AsyncIterator[g.Mesh]:
    """test_grpc's mesh, on a ManualClock, with no free-will loop (the tests tick)."""
    inference = g.InferenceServicer()  # type: ignore[abstract]
    memory = g.MemoryServicer()  # type: ignore[abstract]
    keyvault = g.KeyVaultServicer()  # type: ignore[abstract]
    servers, ports = await serve_backends(pki, inference, memory, keyvault)
    settings = g.gateway_settings(pki, core_url, ports).model_copy(
        update={"freewill_tick_seconds": 0, "group_seed": "scheduled-turns"}
    )
    try:
        app = await start_gateway(settings, clock=clock)
    except BaseException:
        for server in servers:
            await server.stop(0)
        raise
    running = g.Mesh(app, inference, memory, keyvault, servers)
    try:
        yield running
    finally:
        await running.stop()


# ---- helpers ----


async def rows(core_url: str, query: str, **params: Any) -> list[dict[str, Any]]:
    engine = create_async_engine(async_url(core_url), poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            found = await conn.execute(sa.text(query), params)
            return [dict(r._mapping) for r in found]
    finally:
        await engine.dispose()


async def turn_events(core_url: str) -> list[dict[str, Any]]:
    return await rows(
        core_url,
        "SELECT id::text, reason, round_id, personality_id::text, delivered_at, dropped_reason"
        " FROM core.bot_events WHERE kind = 'turn' ORDER BY created_at",
    )


async def activate(bot: Any, *names: str) -> None:
    for name in names:
        await bot.ActivateChannel(
            gw.ActivateChannelRequest(
                actor=ALICE, location=WHERE, personality=name, manage_channels=True
            )
        )


async def free_will(bot: Any, *, enabled: bool = True, quiet_hours: str = "1-6") -> Any:
    return await bot.SetFreeWill(
        gw.SetFreeWillRequest(
            actor=ALICE,
            location=WHERE,
            personality="lilith",
            enabled=enabled,
            quiet_hours=quiet_hours if enabled else "",
            manage_channels=True,
        )
    )


async def say(bot: Any, key: str, content: str = "the moon is out tonight", **fields: Any) -> str:
    """Alice's message answered and delivered; the job id."""
    request = g.generate_request(key=key, content=content)
    for name, value in fields.items():
        setattr(request, name, value)
    replies = await g.drain(bot.Generate(request))
    job_id = replies[0].accepted.job_id
    await bot.ConfirmDelivery(gw.ConfirmDeliveryRequest(job_id=job_id, message_ids=[f"a-{key}"]))
    return job_id


def run_turn(bot: Any, event_id: str, personality: str = "lilith") -> Any:
    """Generate for a scheduled turn, as the bot's event listener calls it."""
    return bot.Generate(
        gw.GenerateRequest(
            location=WHERE,
            personality=personality,
            idempotency_key=f"turn:{event_id}",
            turn_id=event_id,
        )
    )


async def refused_turn(bot: Any, core_url: str, event_id: str, reason: str) -> None:
    """The turn is refused FAILED_PRECONDITION `reason` and its event dropped with it."""
    error = await g.rpc_error(g.drain(run_turn(bot, event_id)))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, error.details()
    assert from_rpc_error(error).reason == reason, error.details()
    (event,) = [e for e in await turn_events(core_url) if e["id"] == event_id]
    assert event["delivered_at"] is not None  # acknowledged: it never comes back
    assert event["dropped_reason"] == reason


async def queued_check_in(bot: Any, mesh: g.Mesh, clock: ManualClock, core_url: str) -> str:
    """Lilith on free will, paid by Alice; Alice talks, the channel goes quiet for 3 h and
    the scheduler queues a check-in: its event id."""
    await activate(bot, "lilith")
    await bot.SetWalletKey(
        gw.SetWalletKeyRequest(actor=ALICE, provider="openrouter", api_key=g.PLANTED)
    )
    await free_will(bot)
    await say(bot, "msg-1")
    clock.advance(timedelta(hours=3))
    assert await mesh.gateway.features.freewill.tick() == 1
    (event,) = await turn_events(core_url)
    assert event["reason"] == "check_in"
    return str(event["id"])


# ---- a scheduled turn is said for nobody ----


async def test_a_free_will_turn_is_the_channels_not_its_payers(
    connect: Connect, mesh: g.Mesh, clock: ManualClock, core_url: str
) -> None:
    bot = connect("bot")
    await g.import_seed(connect("cli"), "lilith")
    await bot.SetPersona(gw.SetPersonaRequest(actor=ALICE, persona=PERSONA))
    event_id = await queued_check_in(bot, mesh, clock, core_url)
    replies = await g.drain(run_turn(bot, event_id))
    await bot.ConfirmDelivery(
        gw.ConfirmDeliveryRequest(job_id=replies[0].accepted.job_id, message_ids=["fw-1"])
    )

    own, posted = mesh.memory.stored
    assert own.user_id  # Alice's exchange is hers ...
    assert (posted.user_id, posted.imported) == ("", True)  # ... the post nobody's, no memory
    assert [t.role for t in posted.turns] == [common.ROLE_ASSISTANT]
    asked_by_alice, scheduled = mesh.inference.requests
    assert asked_by_alice.HasField("persona")
    assert not asked_by_alice.shared_context
    assert scheduled.shared_context  # the whole channel, shared memories only
    assert not scheduled.HasField("persona")
    assert scheduled.user_id == own.user_id  # still paid by Alice

    # Alice's undo and clear take her own exchange, never the free-will post.
    undone = await bot.UndoLastExchange(
        gw.UndoLastExchangeRequest(actor=ALICE, location=WHERE, personality="lilith")
    )
    assert [t.content for t in undone.removed] == ["the moon is out tonight", "Hello, mortal."]
    await say(bot, "msg-2")
    cleared = await bot.ClearHistory(
        gw.ClearHistoryRequest(actor=ALICE, location=WHERE, personality="lilith")
    )
    assert cleared.deleted_turns == 2
    assert [r.job_id for r in mesh.memory.stored] == [posted.job_id]


# ---- activation ----


async def test_free_will_is_for_activated_personalities_only(
    connect: Connect, mesh: g.Mesh, core_url: str
) -> None:
    bot = connect("bot")
    await g.import_seed(connect("cli"), "lilith")
    await bot.SetWalletKey(
        gw.SetWalletKeyRequest(actor=ALICE, provider="openrouter", api_key=g.PLANTED)
    )
    error = await g.rpc_error(free_will(bot))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert from_rpc_error(error).reason == "NOT_ACTIVATED"

    await activate(bot, "lilith")
    assert (await free_will(bot)).status.enabled
    await bot.DeactivateChannel(
        gw.DeactivateChannelRequest(
            actor=ALICE, location=WHERE, personality="lilith", manage_channels=True
        )
    )
    (status,) = (await bot.GetFreeWill(gw.GetFreeWillRequest(location=WHERE))).statuses
    assert (status.enabled, status.disabled_reason) == (False, "DEACTIVATED")


async def test_a_chain_reply_of_a_personality_deactivated_since_is_dropped(
    connect: Connect, mesh: g.Mesh, core_url: str
) -> None:
    bot, cli = connect("bot"), connect("cli")
    for name in ("lilith", "sage"):
        await g.import_seed(cli, name)
        await cli.UpdatePersonality(
            gw.UpdatePersonalityRequest(
                personality=common.Personality(slug=name, talkativeness=1.0),
                update_paths=["talkativeness"],
            )
        )
    await activate(bot, "lilith", "sage")
    await bot.SetWalletKey(
        gw.SetWalletKeyRequest(actor=ALICE, provider="openrouter", api_key=g.PLANTED)
    )
    planned = await bot.PlanChannelReply(
        gw.PlanChannelReplyRequest(
            actor=ALICE, location=WHERE, content="good evening", message_id="m1"
        )
    )
    assert len(planned.speakers) == 2
    for speaker in planned.speakers:
        await say(
            bot,
            f"m1:{speaker.slug}",
            "good evening",
            personality=speaker.slug,
            round_id=planned.round_id,
        )
    (chain,) = await turn_events(core_url)
    assert (chain["reason"], chain["round_id"]) == ("chain", planned.round_id)
    replier = next(p for p in planned.speakers if p.id == chain["personality_id"])
    await bot.DeactivateChannel(
        gw.DeactivateChannelRequest(
            actor=ALICE, location=WHERE, personality=replier.slug, manage_channels=True
        )
    )
    asked = len(mesh.inference.requests)
    await refused_turn(bot, core_url, chain["id"], "NOT_ACTIVATED")
    assert len(mesh.inference.requests) == asked  # nothing generated


# ---- a queued free-will turn is checked again when it runs ----


async def _switched_off(bot: Any, clock: ManualClock) -> None:
    await free_will(bot, enabled=False)


async def _quiet_hours_began(bot: Any, clock: ManualClock) -> None:
    await free_will(bot, quiet_hours="15-16")  # it is 15:00 now


async def _waited_too_long(bot: Any, clock: ManualClock) -> None:
    clock.advance(timedelta(minutes=31))  # past turn_max_age (30 min)


async def _a_human_spoke_since(bot: Any, clock: ManualClock) -> None:
    clock.advance(timedelta(minutes=1))
    await say(bot, "msg-2", "anyone around?")  # the quiet spell is over


@pytest.mark.parametrize(
    "case",
    [
        (_switched_off, "FREEWILL_OFF"),
        (_quiet_hours_began, "QUIET_HOURS"),
        (_waited_too_long, "STALE"),
        (_a_human_spoke_since, "STALE"),
    ],
    ids=["switched-off", "quiet-hours", "too-late", "human-spoke"],
)
async def test_a_queued_free_will_turn_no_longer_wanted_is_dropped(
    connect: Connect, mesh: g.Mesh, clock: ManualClock, core_url: str, case: Any
) -> None:
    change, reason = case
    bot = connect("bot")
    await g.import_seed(connect("cli"), "lilith")
    event_id = await queued_check_in(bot, mesh, clock, core_url)
    await change(bot, clock)
    asked = len(mesh.inference.requests)
    await refused_turn(bot, core_url, event_id, reason)
    assert len(mesh.inference.requests) == asked


async def test_a_queued_free_will_turn_still_wanted_runs(
    connect: Connect, mesh: g.Mesh, clock: ManualClock, core_url: str
) -> None:
    """The control of the test above: unchanged, and a little late, the check-in runs."""
    bot = connect("bot")
    await g.import_seed(connect("cli"), "lilith")
    event_id = await queued_check_in(bot, mesh, clock, core_url)
    clock.advance(timedelta(minutes=29))
    replies = await g.drain(run_turn(bot, event_id))
    assert replies[-1].HasField("finished")


# ---- rounds ----


@pytest.mark.parametrize("by_alias", [False, True])
async def test_a_late_speaker_of_an_older_round_leaves_the_newer_round(
    connect: Connect, mesh: g.Mesh, core_url: str, by_alias: bool
) -> None:
    """The bot answers messages concurrently: the second speaker of m1 may ask after m2 was
    planned. m2 stays the round, and its speakers' jobs are recorded as its group jobs.
    `by_alias`: the late one is named by Alice's own alias (the gateway's slower path)."""
    bot, cli = connect("bot"), connect("cli")
    for name in ("lilith", "sage"):
        await g.import_seed(cli, name)
        await cli.UpdatePersonality(
            gw.UpdatePersonalityRequest(
                personality=common.Personality(slug=name, talkativeness=1.0),
                update_paths=["talkativeness"],
            )
        )
    await cli.SetSetting(
        gw.SetSettingRequest(
            scope=common.CONFIG_SOURCE_CHANNEL,
            location=WHERE,
            key="group_chain_cap",
            value=struct_pb2.Value(number_value=0),
        )
    )
    await activate(bot, "lilith", "sage")
    await bot.SetWalletKey(
        gw.SetWalletKeyRequest(actor=ALICE, provider="openrouter", api_key=g.PLANTED)
    )

    async def plan(message_id: str) -> gw.PlanChannelReplyResponse:
        planned: gw.PlanChannelReplyResponse = await bot.PlanChannelReply(
            gw.PlanChannelReplyRequest(
                actor=ALICE, location=WHERE, content="hello all", message_id=message_id
            )
        )
        assert len(planned.speakers) == 2
        return planned

    first = await plan("m1")
    second = await plan("m2")
    late = first.speakers[-1].slug
    name = late
    if by_alias:
        name = "my night owl"
        await bot.AddPersonalAlias(
            gw.AddPersonalAliasRequest(actor=ALICE, personality=late, alias=name)
        )
    await say(bot, f"m1:{late}", "hello all", personality=name, round_id=first.round_id)
    jobs = [
        await say(bot, f"m2:{p.slug}", "hello all", personality=p.slug, round_id=second.round_id)
        for p in second.speakers
    ]

    (state,) = await rows(core_url, "SELECT round_id FROM core.channel_state")
    assert state["round_id"] == second.round_id
    recorded = await rows(
        core_url,
        "SELECT job_id::text, round_id FROM core.group_jobs WHERE round_id = :r",
        r=second.round_id,
    )
    assert sorted(r["job_id"] for r in recorded) == sorted(jobs)
