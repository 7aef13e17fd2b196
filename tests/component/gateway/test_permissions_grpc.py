"""What the gateway itself refuses, over real mTLS gRPC on real Postgres, whatever the bot's
own checks: the bot is trusted to name the actor and to pass the Discord permissions it saw
(`manage_channels`, `manage_guild`), and the gateway enforces what they allow.

- a YAML seed import is the operator's or a superuser's (it replaces any personality and
  writes a global default config, `free_use` included);
- `ClearHistory` forgets only the actor's exchanges; everyone's needs Manage Channels;
- channel-wide changes (activation, free will, channel lorebooks) need Manage Channels, and
  release notifications Manage Server.
"""

from __future__ import annotations

from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tzurot.db.engine import async_url
from tzurot.gateway import tables as t
from tzurot.runtime.errors import from_rpc_error
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

from . import test_grpc as g
from .test_admin_grpc import ALICE, BOB, WHERE, fails, private_of_alice

pytestmark = pytest.mark.component

mesh = g.mesh
connect = g.connect
Connect = g.Connect

CAROL = common.Actor(user_id="100000000000000003", display_name="Carol")


async def refused(call: Any, reason: str) -> None:
    error = await g.rpc_error(call)
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED, error.details()
    assert from_rpc_error(error).reason == reason, error.details()


async def make_superuser(bot: Any, core_url: str, actor: common.Actor) -> None:
    await bot.GetUser(gw.GetUserRequest(actor=actor))  # the user, created on first sight
    engine = create_async_engine(async_url(core_url), poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                sa.update(t.users)
                .where(t.users.c.platform_user_id == actor.user_id)
                .values(superuser=True)
            )
    finally:
        await engine.dispose()


async def default_configs(core_url: str) -> dict[str, tuple[str, bool]]:
    """The global configs by name: (model, free_use)."""
    engine = create_async_engine(async_url(core_url), poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(
                        t.llm_configs.c.name, t.llm_configs.c.model, t.llm_configs.c.free_use
                    ).where(t.llm_configs.c.owner_user_id.is_(None))
                )
            ).all()
    finally:
        await engine.dispose()
    return {name: (model, free_use) for name, model, free_use in rows}


def seed_import(document: str, actor: common.Actor | None = None) -> gw.ImportPersonalityRequest:
    return gw.ImportPersonalityRequest(
        actor=actor, format=gw.IMPORT_FORMAT_SEED_YAML, document=document.encode()
    )


# ---- YAML seed import ----

HIJACKED_MUSE = "name: Muse\nslug: muse\nsystem_prompt: Mine now.\npublic: true\n"
FREE_LILITH = (
    "name: Lilith\nslug: lilith\nsystem_prompt: Bob's now.\n"
    "llm: {provider: openrouter, model: bob/expensive, free_use: true}\n"
)


async def test_a_seed_import_by_a_user_replaces_nothing_and_frees_no_model(
    connect: Connect, core_url: str
) -> None:
    bot, cli = connect("bot"), connect("cli")
    await g.import_seed(cli, "lilith")
    await private_of_alice(bot)
    before = await default_configs(core_url)

    # Bob cannot take over Alice's private personality (and make it public)...
    await refused(bot.ImportPersonality(seed_import(HIJACKED_MUSE, BOB)), "NOT_SUPERUSER")
    muse = await bot.GetPersonality(gw.GetPersonalityRequest(actor=ALICE, personality="muse"))
    assert (muse.personality.system_prompt, muse.personality.public) == ("You inspire.", False)
    await fails(
        bot.GetPersonality(gw.GetPersonalityRequest(actor=BOB, personality="muse")),
        grpc.StatusCode.NOT_FOUND,
    )
    # ...nor overwrite the operator's Lilith with a global free-use config on his model.
    await refused(bot.ImportPersonality(seed_import(FREE_LILITH, BOB)), "NOT_SUPERUSER")
    lilith = await cli.GetPersonality(gw.GetPersonalityRequest(personality="lilith"))
    assert lilith.personality.system_prompt.startswith("You are Lilith")
    assert await default_configs(core_url) == before
    assert not any(free for _, free in before.values())
    # A new slug is refused too: users import character cards, which cannot set free_use.
    await refused(
        bot.ImportPersonality(seed_import("name: Fresh\nslug: fresh\n", BOB)), "NOT_SUPERUSER"
    )

    # The operator (the CLI, no actor) and a superuser may.
    await make_superuser(bot, core_url, CAROL)
    done = await bot.ImportPersonality(seed_import(FREE_LILITH, CAROL))
    assert (done.created, done.personality.system_prompt) == (False, "Bob's now.")
    assert (await default_configs(core_url))["lilith default"] == ("bob/expensive", True)
    again = await cli.ImportPersonality(seed_import(HIJACKED_MUSE))
    assert again.personality.public is True


async def test_a_seed_import_from_the_bot_without_an_actor_is_not_the_operators(
    connect: Connect,
) -> None:
    await fails(
        connect("bot").ImportPersonality(seed_import("name: Fresh\n")),
        grpc.StatusCode.INVALID_ARGUMENT,
        "actor",
    )
    done = await connect("cli").ImportPersonality(seed_import("name: Fresh\n"))
    assert done.created


# ---- history ----


def said_by(actor: common.Actor, key: str) -> gw.GenerateRequest:
    request = g.generate_request(key=key)
    request.actor.CopyFrom(actor)
    return request


async def chat(bot: Any, actor: common.Actor, key: str) -> None:
    replies = await g.drain(bot.Generate(said_by(actor, key)))
    job_id = replies[0].accepted.job_id
    await bot.ConfirmDelivery(gw.ConfirmDeliveryRequest(job_id=job_id, message_ids=[f"a-{key}"]))


def clear(actor: common.Actor | None, **fields: bool) -> gw.ClearHistoryRequest:
    return gw.ClearHistoryRequest(actor=actor, location=WHERE, personality="lilith", **fields)


async def test_history_clear_forgets_only_the_actors_exchanges(
    connect: Connect, mesh: g.Mesh
) -> None:
    bot = connect("bot")
    await g.import_seed(connect("cli"), "lilith")
    await chat(bot, ALICE, "alice-1")
    await chat(bot, BOB, "bob-1")
    await chat(bot, ALICE, "alice-2")
    alice_id, bob_id = mesh.memory.stored[0].user_id, mesh.memory.stored[1].user_id
    assert alice_id != bob_id

    cleared = await bot.ClearHistory(clear(BOB))
    assert cleared.deleted_turns == 2  # his one exchange
    assert [r.user_id for r in mesh.memory.stored] == [alice_id, alice_id]
    again = await bot.ClearHistory(clear(BOB))
    assert (again.deleted_turns, len(mesh.memory.stored)) == (0, 2)
    mine = await bot.ClearHistory(clear(ALICE))
    assert (mine.deleted_turns, mesh.memory.stored) == (4, [])


async def test_clearing_everyones_history_needs_manage_channels(
    connect: Connect, mesh: g.Mesh
) -> None:
    bot = connect("bot")
    await g.import_seed(connect("cli"), "lilith")
    await chat(bot, ALICE, "alice-1")
    await chat(bot, BOB, "bob-1")

    await refused(bot.ClearHistory(clear(BOB, everyone=True)), "MANAGE_CHANNELS_REQUIRED")
    assert len(mesh.memory.stored) == 2
    cleared = await bot.ClearHistory(clear(BOB, everyone=True, manage_channels=True))
    assert (cleared.deleted_turns, mesh.memory.stored) == (4, [])
    # The operator clears a channel's history without an actor.
    await chat(bot, ALICE, "alice-2")
    operator = await connect("cli").ClearHistory(clear(None, everyone=True))
    assert (operator.deleted_turns, mesh.memory.stored) == (2, [])


# ---- channel-wide changes ----


def activate(actor: common.Actor | None, name: str, **bits: bool) -> gw.ActivateChannelRequest:
    return gw.ActivateChannelRequest(actor=actor, location=WHERE, personality=name, **bits)


def deactivate(actor: common.Actor | None, name: str = "", **bits: bool) -> Any:
    return gw.DeactivateChannelRequest(actor=actor, location=WHERE, personality=name, **bits)


async def activated(bot: Any) -> list[str]:
    listed = await bot.ListChannelActivations(gw.ListChannelActivationsRequest(location=WHERE))
    return [a.personality.slug for a in listed.activations]


async def test_channel_activation_needs_manage_channels(connect: Connect) -> None:
    bot, cli = connect("bot"), connect("cli")
    await g.import_seed(cli, "lilith")
    await g.import_seed(cli, "sage")

    await refused(bot.ActivateChannel(activate(BOB, "lilith")), "MANAGE_CHANNELS_REQUIRED")
    assert await activated(bot) == []
    await bot.ActivateChannel(activate(ALICE, "lilith", manage_channels=True))
    await cli.ActivateChannel(activate(None, "sage"))  # the operator needs no bit
    assert await activated(bot) == ["lilith", "sage"]

    # An empty name removes every personality: the same check.
    await refused(bot.DeactivateChannel(deactivate(BOB)), "MANAGE_CHANNELS_REQUIRED")
    await refused(bot.DeactivateChannel(deactivate(BOB, "sage")), "MANAGE_CHANNELS_REQUIRED")
    assert await activated(bot) == ["lilith", "sage"]
    await bot.DeactivateChannel(deactivate(BOB, "sage", manage_channels=True))
    await bot.DeactivateChannel(deactivate(BOB, manage_channels=True))
    assert await activated(bot) == []


async def test_free_will_needs_manage_channels(connect: Connect) -> None:
    bot = connect("bot")
    await g.import_seed(connect("cli"), "lilith")
    await bot.ActivateChannel(activate(ALICE, "lilith", manage_channels=True))  # free will's
    await bot.SetWalletKey(
        gw.SetWalletKeyRequest(actor=BOB, provider="openrouter", api_key=g.PLANTED)
    )

    def free_will(enabled: bool, *, manage_channels: bool = False) -> gw.SetFreeWillRequest:
        return gw.SetFreeWillRequest(
            actor=BOB,
            location=WHERE,
            personality="lilith",
            enabled=enabled,
            manage_channels=manage_channels,
        )

    await refused(bot.SetFreeWill(free_will(True)), "MANAGE_CHANNELS_REQUIRED")
    status = await bot.GetFreeWill(gw.GetFreeWillRequest(location=WHERE))
    assert list(status.statuses) == []
    on = await bot.SetFreeWill(free_will(True, manage_channels=True))
    assert on.status.enabled
    await refused(bot.SetFreeWill(free_will(False)), "MANAGE_CHANNELS_REQUIRED")
    off = await bot.SetFreeWill(free_will(False, manage_channels=True))
    assert not off.status.enabled


async def test_release_notifications_need_manage_server(connect: Connect) -> None:
    bot = connect("bot")
    subscribe = gw.SubscribeNotificationsRequest(actor=BOB, location=WHERE)
    unsubscribe = gw.UnsubscribeNotificationsRequest(actor=BOB, location=WHERE)

    await refused(bot.SubscribeNotifications(subscribe), "MANAGE_GUILD_REQUIRED")
    await fails(  # nothing was subscribed
        bot.UnsubscribeNotifications(
            gw.UnsubscribeNotificationsRequest(actor=BOB, location=WHERE, manage_guild=True)
        ),
        grpc.StatusCode.NOT_FOUND,
    )
    subscribe.manage_guild = True
    await bot.SubscribeNotifications(subscribe)
    await refused(bot.UnsubscribeNotifications(unsubscribe), "MANAGE_GUILD_REQUIRED")
    unsubscribe.manage_guild = True
    await bot.UnsubscribeNotifications(unsubscribe)


LOREBOOK = b'{"entries": {"0": {"key": ["tavern"], "content": "The Prancing Pony."}}}'


async def test_channel_lorebooks_need_manage_channels(connect: Connect) -> None:
    bot = connect("bot")
    here = common.LorebookAttachment(scope=common.LORE_SCOPE_CHANNEL, target=WHERE.channel_id)

    await refused(
        bot.ImportLorebook(
            gw.ImportLorebookRequest(actor=BOB, document=LOREBOOK, name="Inns", attach=here)
        ),
        "MANAGE_CHANNELS_REQUIRED",
    )
    listed = await bot.ListLorebooks(gw.ListLorebooksRequest(actor=BOB))
    assert list(listed.lorebooks) == []
    await bot.ImportLorebook(gw.ImportLorebookRequest(actor=BOB, document=LOREBOOK, name="Inns"))

    attach = gw.AttachLorebookRequest(actor=BOB, lorebook="Inns", attachment=here)
    await refused(bot.AttachLorebook(attach), "MANAGE_CHANNELS_REQUIRED")
    attach.manage_channels = True
    attached = await bot.AttachLorebook(attach)
    assert len(attached.lorebook.attachments) == 1

    detach = gw.DetachLorebookRequest(actor=BOB, lorebook="Inns", attachment=here)
    await refused(bot.DetachLorebook(detach), "MANAGE_CHANNELS_REQUIRED")
    detach.manage_channels = True
    detached = await bot.DetachLorebook(detach)
    assert list(detached.lorebook.attachments) == []
