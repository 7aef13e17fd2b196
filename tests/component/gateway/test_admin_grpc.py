"""Contract of the admin RPCs over real mTLS gRPC on real Postgres: valid requests succeed,
an invalid field is INVALID_ARGUMENT naming it, unknown ids are NOT_FOUND, and acting on
someone else's things is PERMISSION_DENIED."""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from google.protobuf import struct_pb2
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.gateway import tables as t
from tzurot.runtime.errors import from_rpc_error
from tzurot.runtime.grpc_options import MAX_MESSAGE_BYTES
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

from . import test_grpc as g

pytestmark = pytest.mark.component

mesh = g.mesh
connect = g.connect
Connect = g.Connect

ALICE = g.ACTOR
BOB = common.Actor(user_id="100000000000000002", display_name="Bob")
WHERE = g.WHERE
UNKNOWN_UUID = "00000000-0000-0000-0000-000000000000"


async def fails(call: Awaitable[Any], code: grpc.StatusCode, field: str = "") -> str:
    """Asserts the call fails with `code` (and, for INVALID_ARGUMENT, names `field`)."""
    error = await g.rpc_error(call)
    assert error.code() == code, error.details()
    typed = from_rpc_error(error)
    if field:
        assert getattr(typed, "field", None) == field, typed
    return error.details() or ""


async def private_of_alice(bot: Any) -> common.Personality:
    reply = await bot.CreatePersonality(
        gw.CreatePersonalityRequest(
            actor=ALICE,
            personality=common.Personality(
                display_name="Muse", aliases=["the muse"], system_prompt="You inspire."
            ),
        )
    )
    personality: common.Personality = reply.personality
    return personality


# ---- personalities and aliases ----


async def test_personality_lifecycle_and_ownership(connect: Connect) -> None:
    bot = connect("bot")
    muse = await private_of_alice(bot)
    assert (muse.slug, muse.public, list(muse.aliases)) == ("muse", False, ["the muse"])
    assert muse.owner_user_id
    await g.import_seed(connect("cli"), "lilith")
    owned = await bot.ListPersonalities(gw.ListPersonalitiesRequest(actor=ALICE, owned_only=True))
    assert [p.slug for p in owned.personalities] == ["muse"]
    listed = await bot.ListPersonalities(gw.ListPersonalitiesRequest(actor=BOB))
    assert [p.slug for p in listed.personalities] == ["lilith"]
    # Private: Alice sees it, Bob does not even learn it exists.
    await bot.GetPersonality(gw.GetPersonalityRequest(actor=ALICE, personality="the muse"))
    await fails(
        bot.GetPersonality(gw.GetPersonalityRequest(actor=BOB, personality="muse")),
        grpc.StatusCode.NOT_FOUND,
    )
    updated = await bot.UpdatePersonality(
        gw.UpdatePersonalityRequest(
            actor=ALICE,
            personality=common.Personality(slug="muse", public=True, birthday="03-14"),
            update_paths=["public", "birthday"],
        )
    )
    assert (updated.personality.public, updated.personality.birthday) == (True, "03-14")
    assert updated.personality.system_prompt == "You inspire."  # untouched
    await fails(
        bot.UpdatePersonality(
            gw.UpdatePersonalityRequest(
                actor=BOB,
                personality=common.Personality(slug="muse", system_prompt="Mine now"),
                update_paths=["system_prompt"],
            )
        ),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    await fails(
        bot.DeletePersonality(gw.DeletePersonalityRequest(actor=BOB, personality="muse")),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    await bot.DeletePersonality(gw.DeletePersonalityRequest(actor=ALICE, personality="muse"))
    await fails(
        bot.GetPersonality(gw.GetPersonalityRequest(actor=ALICE, personality="muse")),
        grpc.StatusCode.NOT_FOUND,
    )


@pytest.mark.parametrize(
    ("personality", "paths", "field"),
    [
        (common.Personality(display_name=""), None, "personality.display_name"),
        (common.Personality(display_name="X", slug="Not A Slug"), None, "personality.slug"),
        (common.Personality(display_name="X", birthday="13-01"), None, "personality.birthday"),
        (common.Personality(display_name="X", aliases=["  "]), None, "personality.aliases"),
        (common.Personality(slug="lilith"), ["owner"], "update_paths"),
        (common.Personality(slug="lilith"), [], "update_paths"),
        (common.Personality(), ["public"], "personality.id"),
    ],
)
async def test_invalid_personality_fields_are_named(
    connect: Connect, personality: common.Personality, paths: list[str] | None, field: str
) -> None:
    cli = connect("cli")
    await g.import_seed(cli, "lilith")
    call: Awaitable[Any]
    if paths is None:
        call = cli.CreatePersonality(gw.CreatePersonalityRequest(personality=personality))
    else:
        call = cli.UpdatePersonality(
            gw.UpdatePersonalityRequest(personality=personality, update_paths=paths)
        )
    await fails(call, grpc.StatusCode.INVALID_ARGUMENT, field)


async def test_create_clashes_are_already_exists(connect: Connect) -> None:
    cli = connect("cli")
    await g.import_seed(cli, "lilith")
    await fails(
        cli.CreatePersonality(
            gw.CreatePersonalityRequest(personality=common.Personality(display_name="Lilith"))
        ),
        grpc.StatusCode.ALREADY_EXISTS,
    )
    details = await fails(
        cli.CreatePersonality(
            gw.CreatePersonalityRequest(
                personality=common.Personality(display_name="Other", aliases=["LIL"])
            )
        ),
        grpc.StatusCode.ALREADY_EXISTS,
    )
    assert "'lilith'" in details


async def test_aliases_add_remove_clash(connect: Connect) -> None:
    bot, cli = connect("bot"), connect("cli")
    await g.import_seed(cli, "lilith")
    await private_of_alice(bot)
    added = await bot.AddAlias(
        gw.AddAliasRequest(actor=ALICE, personality="muse", alias="Calliope")
    )
    assert "Calliope" in added.personality.aliases
    details = await fails(
        bot.AddAlias(gw.AddAliasRequest(actor=ALICE, personality="muse", alias="lil")),
        grpc.StatusCode.ALREADY_EXISTS,
    )
    assert "lilith" in details
    await fails(
        bot.AddAlias(gw.AddAliasRequest(actor=ALICE, personality="muse", alias="")),
        grpc.StatusCode.INVALID_ARGUMENT,
        "alias",
    )
    await fails(
        bot.AddAlias(gw.AddAliasRequest(actor=BOB, personality="lilith", alias="lily")),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    await fails(
        bot.AddAlias(gw.AddAliasRequest(actor=ALICE, personality="nobody", alias="x")),
        grpc.StatusCode.NOT_FOUND,
    )
    await fails(
        bot.RemoveAlias(gw.RemoveAliasRequest(actor=BOB, alias="lil")),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    await bot.RemoveAlias(gw.RemoveAliasRequest(actor=ALICE, alias="calliope"))
    await fails(
        bot.RemoveAlias(gw.RemoveAliasRequest(actor=ALICE, alias="calliope")),
        grpc.StatusCode.NOT_FOUND,
    )


async def test_an_actor_is_required_from_the_bot(connect: Connect) -> None:
    await fails(
        connect("bot").CreatePersonality(
            gw.CreatePersonalityRequest(personality=common.Personality(display_name="X"))
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "actor",
    )


async def test_resolve_mentions_longest_first(connect: Connect) -> None:
    cli, bot = connect("cli"), connect("bot")
    await g.import_seed(cli, "lilith")
    reply = await bot.ResolveMentions(
        gw.ResolveMentionsRequest(actor=ALICE, content="hey @The Night Queen and @lil!")
    )
    assert [(m.personality.slug, m.matched_text, m.offset) for m in reply.mentions] == [
        ("lilith", "@The Night Queen", 4)
    ]


# ---- users, personas ----


async def test_user_timezone(connect: Connect) -> None:
    bot = connect("bot")
    user = (await bot.GetUser(gw.GetUserRequest(actor=ALICE))).user
    assert (user.timezone, user.superuser, user.nsfw_verified) == ("UTC", False, False)
    set_tz = await bot.SetTimezone(gw.SetTimezoneRequest(actor=ALICE, timezone="Europe/Berlin"))
    assert set_tz.user.timezone == "Europe/Berlin"
    await fails(
        bot.SetTimezone(gw.SetTimezoneRequest(actor=ALICE, timezone="Mars/Olympus")),
        grpc.StatusCode.INVALID_ARGUMENT,
        "timezone",
    )


async def test_personas_default_and_override(connect: Connect) -> None:
    bot, cli = connect("bot"), connect("cli")
    await g.import_seed(cli, "lilith")
    empty = await bot.GetPersona(gw.GetPersonaRequest(actor=ALICE))
    assert (empty.persona.name, empty.is_override) == ("Alice", False)
    await bot.SetPersona(
        gw.SetPersonaRequest(actor=ALICE, persona=gw.Persona(name="Al", pronouns="she/her"))
    )
    await bot.SetPersona(
        gw.SetPersonaRequest(actor=ALICE, personality="lilith", persona=gw.Persona(name="Mortal"))
    )
    toward = await bot.GetPersona(gw.GetPersonaRequest(actor=ALICE, personality="lil"))
    assert (toward.persona.name, toward.is_override) == ("Mortal", True)
    default = await bot.GetPersona(gw.GetPersonaRequest(actor=ALICE))
    assert (default.persona.pronouns, default.is_override) == ("she/her", False)
    await fails(
        bot.SetPersona(
            gw.SetPersonaRequest(actor=ALICE, persona=gw.Persona(description="x" * 3000))
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "persona.description",
    )
    await fails(
        bot.GetPersona(gw.GetPersonaRequest(actor=ALICE, personality="nobody")),
        grpc.StatusCode.NOT_FOUND,
    )


# ---- configs, overrides ----


async def test_llm_configs_overrides_and_effective_config(connect: Connect) -> None:
    bot, cli = connect("bot"), connect("cli")
    await g.import_seed(cli, "lilith")
    shared = await cli.CreateLlmConfig(
        gw.CreateLlmConfigRequest(
            config=common.LlmConfig(
                name="Shared", provider="openrouter", model="m/free", free_use=True
            ),
            **{"global": True},  # type: ignore[arg-type]  # a Python keyword as a field
        )
    )
    mine = await bot.CreateLlmConfig(
        gw.CreateLlmConfigRequest(
            actor=ALICE, config=common.LlmConfig(name="Mine", provider="openai", model="gpt-x")
        )
    )
    assert mine.config.owner_user_id
    await fails(
        bot.CreateLlmConfig(
            gw.CreateLlmConfigRequest(
                actor=ALICE,
                config=common.LlmConfig(name="Global?", provider="p", model="m"),
                **{"global": True},
            )
        ),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    for config, field in [
        (common.LlmConfig(provider="p", model="m"), "config.name"),
        (common.LlmConfig(name="n", model="m"), "config.provider"),
        (common.LlmConfig(name="n", provider="p"), "config.model"),
    ]:
        await fails(
            bot.CreateLlmConfig(gw.CreateLlmConfigRequest(actor=ALICE, config=config)),
            grpc.StatusCode.INVALID_ARGUMENT,
            field,
        )
    await fails(
        bot.CreateLlmConfig(
            gw.CreateLlmConfigRequest(
                actor=ALICE, config=common.LlmConfig(name="mine", provider="p", model="m")
            )
        ),
        grpc.StatusCode.ALREADY_EXISTS,
    )
    alice_sees = await bot.ListLlmConfigs(gw.ListLlmConfigsRequest(actor=ALICE))
    bob_sees = await bot.ListLlmConfigs(gw.ListLlmConfigsRequest(actor=BOB))
    assert {"Shared", "Mine"} <= {c.name for c in alice_sees.configs}
    assert "Mine" not in {c.name for c in bob_sees.configs}

    effective = await bot.SetModelOverride(
        gw.SetModelOverrideRequest(actor=ALICE, personality="lilith", config_id=mine.config.id)
    )
    assert (effective.effective.config.model, effective.effective.source) == (
        "gpt-x",
        common.CONFIG_SOURCE_USER_PERSONALITY,
    )
    await fails(
        bot.SetModelOverride(
            gw.SetModelOverrideRequest(actor=BOB, personality="lilith", config_id=mine.config.id)
        ),
        grpc.StatusCode.NOT_FOUND,  # someone else's config does not exist for Bob
    )
    await fails(
        bot.SetModelOverride(
            gw.SetModelOverrideRequest(actor=ALICE, personality="lilith", config_id="")
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "config_id",
    )
    bobs = await bot.GetEffectiveConfig(
        gw.GetEffectiveConfigRequest(actor=BOB, personality="lilith")
    )
    assert bobs.effective.source == common.CONFIG_SOURCE_PERSONALITY
    reset = await bot.ResetModelOverride(
        gw.ResetModelOverrideRequest(actor=ALICE, personality="lilith")
    )
    assert reset.effective.source == common.CONFIG_SOURCE_PERSONALITY

    await fails(
        bot.DeleteLlmConfig(gw.DeleteLlmConfigRequest(actor=BOB, config_id=shared.config.id)),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    await fails(
        bot.DeleteLlmConfig(gw.DeleteLlmConfigRequest(actor=ALICE, config_id=UNKNOWN_UUID)),
        grpc.StatusCode.NOT_FOUND,
    )
    await bot.DeleteLlmConfig(gw.DeleteLlmConfigRequest(actor=ALICE, config_id=mine.config.id))


# ---- settings ----


def number(value: float) -> struct_pb2.Value:
    return struct_pb2.Value(number_value=value)


async def test_settings_cascade_over_grpc(connect: Connect) -> None:
    bot, cli = connect("bot"), connect("cli")
    await g.import_seed(cli, "lilith")
    await cli.SetSetting(
        gw.SetSettingRequest(
            scope=common.CONFIG_SOURCE_GLOBAL, key="max_history_messages", value=number(80)
        )
    )
    await bot.SetSetting(
        gw.SetSettingRequest(
            actor=ALICE,
            scope=common.CONFIG_SOURCE_USER,
            key="model_footer",
            value=struct_pb2.Value(bool_value=True),
        )
    )
    got = await bot.GetSettings(
        gw.GetSettingsRequest(actor=ALICE, personality="lilith", location=WHERE)
    )
    by_key = {s.key: s for s in got.settings}
    assert (
        by_key["max_history_messages"].value.number_value,
        by_key["max_history_messages"].source,
    ) == (
        80,
        common.CONFIG_SOURCE_GLOBAL,
    )
    assert (by_key["model_footer"].value.bool_value, by_key["model_footer"].source) == (
        True,
        common.CONFIG_SOURCE_USER,
    )
    assert by_key["max_images"].source == common.CONFIG_SOURCE_HARDCODED
    await fails(
        bot.SetSetting(
            gw.SetSettingRequest(
                actor=ALICE, scope=common.CONFIG_SOURCE_GLOBAL, key="max_images", value=number(2)
            )
        ),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    await fails(
        bot.SetSetting(
            gw.SetSettingRequest(
                actor=ALICE,
                scope=common.CONFIG_SOURCE_PERSONALITY,
                personality="lilith",
                key="max_images",
                value=number(2),
            )
        ),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    for request, field in [
        (
            gw.SetSettingRequest(
                actor=ALICE,
                scope=common.CONFIG_SOURCE_USER,
                key="max_history_messages",
                value=number(101),
            ),
            "value",
        ),
        (
            gw.SetSettingRequest(
                actor=ALICE, scope=common.CONFIG_SOURCE_USER, key="colour", value=number(1)
            ),
            "key",
        ),
        (gw.SetSettingRequest(actor=ALICE, key="max_images", value=number(1)), "scope"),
        (
            gw.SetSettingRequest(
                actor=ALICE,
                scope=common.CONFIG_SOURCE_CHANNEL,
                key="max_images",
                value=number(1),
                manage_channels=True,
            ),
            "location.channel_id",
        ),
    ]:
        await fails(bot.SetSetting(request), grpc.StatusCode.INVALID_ARGUMENT, field)
    reset = await bot.ResetSetting(
        gw.ResetSettingRequest(actor=ALICE, scope=common.CONFIG_SOURCE_USER, key="model_footer")
    )
    assert (reset.setting.value.bool_value, reset.setting.source) == (
        False,
        common.CONFIG_SOURCE_HARDCODED,
    )


# ---- channels ----


async def test_channel_activation(connect: Connect) -> None:
    bot, cli = connect("bot"), connect("cli")
    await g.import_seed(cli, "lilith")
    await g.import_seed(cli, "sage")
    none = await bot.GetChannelActivation(gw.GetChannelActivationRequest(location=WHERE))
    assert not none.HasField("activation")
    on = await bot.ActivateChannel(
        gw.ActivateChannelRequest(
            actor=ALICE, location=WHERE, personality="lil", manage_channels=True
        )
    )
    assert on.activation.personality.slug == "lilith"
    again = await bot.ActivateChannel(
        gw.ActivateChannelRequest(
            actor=ALICE, location=WHERE, personality="lilith", manage_channels=True
        )
    )
    assert again.activation.personality.slug == "lilith"  # already there: nothing changes
    second = await bot.ActivateChannel(
        gw.ActivateChannelRequest(
            actor=BOB, location=WHERE, personality="sage", manage_channels=True
        )
    )
    assert second.activation.personality.slug == "sage"  # a group channel now
    listed = await bot.ListChannelActivations(gw.ListChannelActivationsRequest(location=WHERE))
    assert [a.personality.slug for a in listed.activations] == ["lilith", "sage"]
    assert [a.personality.talkativeness for a in listed.activations] == [0.5, 0.5]
    got = await bot.GetChannelActivation(gw.GetChannelActivationRequest(location=WHERE))
    assert got.activation.personality.slug == "lilith"  # the first one
    await fails(
        bot.ActivateChannel(gw.ActivateChannelRequest(actor=ALICE, personality="lilith")),
        grpc.StatusCode.INVALID_ARGUMENT,
        "location.channel_id",
    )
    await bot.DeactivateChannel(
        gw.DeactivateChannelRequest(
            actor=ALICE, location=WHERE, personality="lilith", manage_channels=True
        )
    )
    await fails(
        bot.DeactivateChannel(
            gw.DeactivateChannelRequest(
                actor=ALICE, location=WHERE, personality="lilith", manage_channels=True
            )
        ),
        grpc.StatusCode.NOT_FOUND,
    )
    listed = await bot.ListChannelActivations(gw.ListChannelActivationsRequest(location=WHERE))
    assert [a.personality.slug for a in listed.activations] == ["sage"]
    everything = gw.DeactivateChannelRequest(actor=ALICE, location=WHERE, manage_channels=True)
    await bot.DeactivateChannel(everything)
    await fails(bot.DeactivateChannel(everything), grpc.StatusCode.NOT_FOUND)


async def test_talkativeness_is_its_owners_and_between_zero_and_one(connect: Connect) -> None:
    bot, cli = connect("bot"), connect("cli")
    await g.import_seed(cli, "lilith")
    await bot.ActivateChannel(
        gw.ActivateChannelRequest(
            actor=ALICE, location=WHERE, personality="lilith", manage_channels=True
        )
    )
    await fails(  # seeded personalities belong to the operator
        bot.UpdatePersonality(
            gw.UpdatePersonalityRequest(
                actor=ALICE,
                personality=common.Personality(slug="lilith", talkativeness=0.9),
                update_paths=["talkativeness"],
            )
        ),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    await fails(
        cli.UpdatePersonality(
            gw.UpdatePersonalityRequest(
                personality=common.Personality(slug="lilith", talkativeness=1.5),
                update_paths=["talkativeness"],
            )
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "personality.talkativeness",
    )
    done = await cli.UpdatePersonality(
        gw.UpdatePersonalityRequest(
            personality=common.Personality(slug="lilith", talkativeness=0.9),
            update_paths=["talkativeness"],
        )
    )
    assert done.personality.talkativeness == pytest.approx(0.9)
    listed = await bot.ListChannelActivations(gw.ListChannelActivationsRequest(location=WHERE))
    assert listed.activations[0].personality.talkativeness == pytest.approx(0.9)


# ---- conversation extras: usage, rate limit, history, privacy ----


async def chat(bot: Any, key: str) -> str:
    replies = await g.drain(bot.Generate(g.generate_request(key=key)))
    job_id: str = replies[0].accepted.job_id
    await bot.ConfirmDelivery(gw.ConfirmDeliveryRequest(job_id=job_id, message_ids=[f"a-{key}"]))
    return job_id


async def test_usage_history_export_and_delete(connect: Connect, mesh: g.Mesh) -> None:
    bot, cli = connect("bot"), connect("cli")
    await g.import_seed(cli, "lilith")
    await chat(bot, "m1")
    await chat(bot, "m2")

    usage = await bot.GetUsage(gw.GetUsageRequest(actor=ALICE, period=gw.USAGE_PERIOD_DAY))
    [total] = usage.totals
    assert (total.requests, total.input_tokens, total.output_tokens, total.user_id) == (
        2,
        84,
        14,
        "",
    )
    everyone = await cli.GetUsage(gw.GetUsageRequest(period=gw.USAGE_PERIOD_MONTH, all_users=True))
    assert [t.user_id for t in everyone.totals] == [ALICE.user_id]
    await fails(
        bot.GetUsage(gw.GetUsageRequest(actor=ALICE, period=gw.USAGE_PERIOD_DAY, all_users=True)),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    await fails(
        bot.GetUsage(gw.GetUsageRequest(actor=ALICE)), grpc.StatusCode.INVALID_ARGUMENT, "period"
    )

    undone = await bot.UndoLastExchange(
        gw.UndoLastExchangeRequest(actor=ALICE, location=WHERE, personality="lilith")
    )
    assert [t.content for t in undone.removed] == ["Hello Lilith", "Hello, mortal."]
    cleared = await bot.ClearHistory(
        gw.ClearHistoryRequest(actor=ALICE, location=WHERE, personality="lilith")
    )
    assert cleared.deleted_turns == 2
    await fails(
        bot.ClearHistory(gw.ClearHistoryRequest(actor=ALICE, location=WHERE, personality="nobody")),
        grpc.StatusCode.NOT_FOUND,
    )

    job_id = await chat(bot, "m3")
    alice_id = mesh.memory.stored[-1].user_id
    created = Timestamp()
    created.FromDatetime(datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC))
    mesh.memory.memories = [
        common.Memory(
            id="m-1",
            personality_id="p-1",
            user_id=alice_id,
            text="Alice: my cat is called Pixel",
            sector=common.MEMORY_SECTOR_SEMANTIC,
            salience=0.5,
            created_at=created,
            last_accessed_at=created,
            tags=["fact"],
            superseded_by="m-2",
        ),
        common.Memory(personality_id="p-1", user_id="someone-else", text="not Alice's"),
    ]
    await bot.SetWalletKey(
        gw.SetWalletKeyRequest(actor=ALICE, provider="openrouter", api_key=g.PLANTED)
    )
    export = await bot.ExportUserData(gw.ExportUserDataRequest(actor=ALICE))
    assert export.filename.endswith(".zip")
    with zipfile.ZipFile(io.BytesIO(export.archive)) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    assert g.PLANTED.encode() not in b"".join(files.values())
    messages = json.loads(files["messages.json"])
    assert [m["request_content"] for m in messages] == ["Hello Lilith"] * 3
    assert [w["provider"] for w in json.loads(files["wallet.json"])] == ["openrouter"]
    history = json.loads(files["history.json"])
    assert [(t["role"], t["content"], t["job_id"]) for t in history] == [
        ("user", "Hello Lilith", job_id),
        ("assistant", "Hello, mortal.", job_id),
    ]
    assert history[1]["message_ids"] == ["a-m3"]
    assert history[0]["channel_id"] == WHERE.channel_id
    assert history[0]["created_at"] == "2025-01-02T00:00:00+00:00"
    assert json.loads(files["memories.json"]) == [
        {
            "id": "m-1",
            "personality_id": "p-1",
            "text": "Alice: my cat is called Pixel",
            "sector": "semantic",
            "salience": 0.5,
            "created_at": "2025-03-04T05:06:07+00:00",
            "last_accessed_at": "2025-03-04T05:06:07+00:00",
            "tags": ["fact"],
            "superseded_by": "m-2",
        }
    ]
    readme = files["README.txt"].decode()
    assert "history.json" in readme
    assert "memories.json" in readme

    deleted = await bot.DeleteUserData(gw.DeleteUserDataRequest(actor=ALICE))
    assert deleted.deleted_rows >= 1 + 3 + 3 + 1  # user, jobs, usage rows, the key
    assert mesh.keyvault.keys == {}
    assert mesh.memory.stored == []
    assert [m.user_id for m in mesh.memory.memories] == ["someone-else"]
    after = await bot.GetUsage(gw.GetUsageRequest(actor=ALICE, period=gw.USAGE_PERIOD_DAY))
    assert list(after.totals) == []


async def test_an_export_past_a_grpc_reply_leaves_recordings_out_not_the_export(
    connect: Connect, mesh: g.Mesh, engine: AsyncEngine
) -> None:
    # Two 9 MB voice samples of hers: together past what one gRPC reply carries (16 MiB).
    bot, cli = connect("bot"), connect("cli")
    await g.import_seed(cli, "lilith")
    await chat(bot, "m1")
    first, second = os.urandom(9_000_000), os.urandom(9_000_000)
    async with engine.begin() as conn:
        alice = await conn.scalar(
            sa.select(t.users.c.id).where(t.users.c.platform_user_id == ALICE.user_id)
        )
        lilith = await conn.scalar(
            sa.select(t.personalities.c.id).where(t.personalities.c.slug == "lilith")
        )
        for name, data, at in (("one.mp3", first, "2025-01-01"), ("two.mp3", second, "2025-01-02")):
            await conn.execute(
                sa.insert(t.voice_samples).values(
                    personality_id=lilith, uploaded_by=alice, filename=name, format="mp3",
                    duration_secs=60.0, size_bytes=len(data), data=data,
                    created_at=datetime.fromisoformat(f"{at}T00:00:00+00:00"),
                )
            )  # fmt: skip

    export = await bot.ExportUserData(gw.ExportUserDataRequest(actor=ALICE))

    assert len(export.archive) <= MAX_MESSAGE_BYTES
    with zipfile.ZipFile(io.BytesIO(export.archive)) as archive:
        samples = json.loads(archive.read("voice_samples.json"))
        kept = archive.read(samples[0]["file"])
        readme = archive.read("README.txt").decode()
        messages = json.loads(archive.read("messages.json"))
    assert [(s["filename"], s["file"] is not None, s.get("omitted")) for s in samples] == [
        ("one.mp3", True, None),
        ("two.mp3", False, "size limit"),
    ]
    assert kept == first
    assert "1 audio, image or CHARX files did not fit" in readme
    assert [m["request_content"] for m in messages] == ["Hello Lilith"]
    assert (export.part, export.parts) == (1, 2)

    # The one left out comes in part 2, where part 1's row says; there is no part 3.
    rest = await bot.ExportUserData(gw.ExportUserDataRequest(actor=ALICE, part=2))
    assert (rest.part, rest.parts) == (2, 2)
    with zipfile.ZipFile(io.BytesIO(rest.archive)) as archive:
        assert archive.read(samples[1]["part_file"]) == second
    message = await fails(
        bot.ExportUserData(gw.ExportUserDataRequest(actor=ALICE, part=3)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "part",
    )
    assert "no part 3" in message


async def test_denylist_admin(connect: Connect) -> None:
    bot, cli = connect("bot"), connect("cli")
    await g.import_seed(cli, "lilith")
    entry = gw.DenylistEntry(
        target=gw.DENY_TARGET_USER,
        target_id=ALICE.user_id,
        scope=gw.DENY_SCOPE_PERSONALITY,
        scope_id="lil",
        mode=gw.DENY_MODE_BLOCK,
        reason="spam",
    )
    await fails(
        bot.AddDenylistEntry(gw.AddDenylistEntryRequest(actor=BOB, entry=entry)),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    added = (await cli.AddDenylistEntry(gw.AddDenylistEntryRequest(entry=entry))).entry
    assert added.scope_id == "lilith"  # an alias is stored as the slug
    error = await g.rpc_error(g.drain(bot.Generate(g.generate_request())))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert from_rpc_error(error).reason == "DENYLISTED"
    listed = await cli.ListDenylist(gw.ListDenylistRequest())
    assert [e.id for e in listed.entries] == [added.id]
    bad = gw.DenylistEntry(target=gw.DENY_TARGET_USER, target_id="1", mode=gw.DENY_MODE_MUTE)
    await fails(
        cli.AddDenylistEntry(gw.AddDenylistEntryRequest(entry=bad)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "entry.scope",
    )
    await cli.RemoveDenylistEntry(gw.RemoveDenylistEntryRequest(entry_id=added.id))
    await fails(
        cli.RemoveDenylistEntry(gw.RemoveDenylistEntryRequest(entry_id=added.id)),
        grpc.StatusCode.NOT_FOUND,
    )
    await g.drain(bot.Generate(g.generate_request()))


async def test_rate_limited_generate_carries_retry_after(
    pki: Any, core_url: str, connect: Connect
) -> None:
    # The default user bucket holds 10; the 11th new message in a burst is refused.
    bot, cli = connect("bot"), connect("cli")
    await g.import_seed(cli, "lilith")
    for i in range(10):
        await g.drain(bot.Generate(g.generate_request(key=f"burst-{i}")))
    error = await g.rpc_error(g.drain(bot.Generate(g.generate_request(key="burst-10"))))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    typed = from_rpc_error(error)
    assert typed.reason == "RATE_LIMITED"
    assert getattr(typed, "retry_after_seconds", 0) > 0
