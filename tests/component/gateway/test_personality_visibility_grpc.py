"""Which personality a name means and how much of it an actor sees, over real mTLS gRPC on
real Postgres.

- A name is ranked only among the personalities the actor may use: Bob's private "Lil" does
  not hide Lilith's global alias `lil` from Alice (nor from Generate or the admin commands).
  (The gateway now refuses a name that is another's alias; the tie is data from before.)
- GetPersonality, ListPersonalities, ResolveMentions and personal aliases give someone who is
  neither its owner nor a superuser no prompt material: no system prompt, no card fields,
  no custom fields, none of the character's personality, scenario, example dialogues or
  post-history instructions (a card export, which carries them, is its owner's only).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa
from google.protobuf import json_format, struct_pb2
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tzurot.db.engine import async_url
from tzurot.gateway import tables as t
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

from . import test_grpc as g
from .test_admin_grpc import ALICE, BOB, WHERE

pytestmark = pytest.mark.component

mesh = g.mesh
connect = g.connect
Connect = g.Connect

CAROL = common.Actor(user_id="100000000000000003", display_name="Carol")
PROMPT = "You are Grigori. Preach."


async def set_custom_fields(core_url: str, slug: str, fields: dict[str, Any]) -> None:
    """As a shapes.inc import keeps the fields it has no place for."""
    engine = create_async_engine(async_url(core_url), poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                sa.update(t.personalities)
                .where(t.personalities.c.slug == slug)
                .values(custom_fields=fields)
            )
    finally:
        await engine.dispose()


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


async def set_alias(core_url: str, slug: str, alias: str, *, present: bool) -> None:
    """Adds or removes a global alias behind the gateway's back: a name and an alias tied
    before the gateway refused such a name."""
    engine = create_async_engine(async_url(core_url), poolclass=NullPool)
    a, p = t.personality_aliases.c, t.personalities.c
    try:
        async with engine.begin() as conn:
            owner = sa.select(p.id).where(p.slug == slug).scalar_subquery()
            if present:
                await conn.execute(
                    sa.insert(t.personality_aliases).values(
                        alias=alias, display=alias, personality_id=owner
                    )
                )
            else:
                await conn.execute(
                    sa.delete(t.personality_aliases).where(
                        a.alias == alias, a.personality_id == owner
                    )
                )
    finally:
        await engine.dispose()


async def test_a_private_personality_hides_no_name_from_others(
    connect: Connect, core_url: str
) -> None:
    bot, cli = connect("bot"), connect("cli")
    await g.import_seed(cli, "lilith")  # aliases: lil, the night queen
    await set_alias(core_url, "lilith", "lil", present=False)
    bobs = await bot.CreatePersonality(
        gw.CreatePersonalityRequest(actor=BOB, personality=common.Personality(display_name="Lil"))
    )
    await set_alias(core_url, "lilith", "lil", present=True)
    assert (bobs.personality.slug, bobs.personality.public) == ("lil", False)

    for name in ("lil", "LIL", "@lil"):
        seen = await bot.GetPersonality(gw.GetPersonalityRequest(actor=ALICE, personality=name))
        assert seen.personality.slug == "lilith", name
    mine = await bot.GetPersonality(gw.GetPersonalityRequest(actor=BOB, personality="lil"))
    assert mine.personality.slug == "lil"  # his own still wins for him
    # Talking to "lil": Alice gets Lilith.
    replies = await g.drain(bot.Generate(g.generate_request("m-lil", personality="lil")))
    assert replies[0].accepted.personality.slug == "lilith"
    # Every command that takes a name: a setting toward "lil" is toward Lilith.
    await bot.SetSetting(
        gw.SetSettingRequest(
            actor=ALICE,
            scope=common.CONFIG_SOURCE_USER_PERSONALITY,
            personality="lil",
            key="max_images",
            value=struct_pb2.Value(number_value=3),
        )
    )
    settings = await bot.GetSettings(
        gw.GetSettingsRequest(actor=ALICE, personality="lilith", location=WHERE)
    )
    max_images = {s.key: s for s in settings.settings}["max_images"]
    assert (max_images.value.number_value, max_images.source) == (
        3,
        common.CONFIG_SOURCE_USER_PERSONALITY,
    )
    # A personal alias "lil" tells Alice it hides Lilith's alias (Bob's is none of hers).
    await g.import_seed(cli, "sage")
    added = await bot.AddPersonalAlias(
        gw.AddPersonalAliasRequest(actor=ALICE, personality="sage", alias="lil")
    )
    assert (added.alias.personality.slug, added.alias.shadows) == ("sage", "Lilith")


async def test_others_see_no_prompt_material(connect: Connect, core_url: str) -> None:
    bot, cli = connect("bot"), connect("cli")
    await g.import_seed(cli, "lilith")
    card = {
        "spec": "chara_card_v3",
        "spec_version": "3.0",
        "data": {
            "name": "Grigori",
            "description": "A priest of Ravenholm.",
            "personality": "Fervent.",
            "scenario": "The rooftops.",
            "mes_example": "<START>\n{{char}}: Come!",
            "system_prompt": PROMPT,
            "post_history_instructions": "Stay in the sermon.",
            "first_mes": "Come, {{user}}!",
            "creator_notes": "Made for the night shift.",
        },
    }
    imported = await bot.ImportPersonality(
        gw.ImportPersonalityRequest(
            actor=ALICE,
            format=gw.IMPORT_FORMAT_CHARACTER_CARD,
            document=json.dumps(card).encode(),
        )
    )
    slug = imported.personality.slug
    await set_custom_fields(core_url, slug, {"search_description": "A fervent priest"})
    await bot.UpdatePersonality(
        gw.UpdatePersonalityRequest(
            actor=ALICE,
            personality=common.Personality(slug=slug, public=True),
            update_paths=["public"],
        )
    )

    def full(p: common.Personality) -> None:
        assert p.system_prompt == PROMPT
        assert p.character.scenario == "The rooftops."
        assert p.card.first_message == "Come, {{user}}!"
        assert json_format.MessageToDict(p.custom_fields) == {
            "search_description": "A fervent priest"
        }

    def stripped(p: common.Personality) -> None:
        assert p.system_prompt == ""
        assert not any(json_format.MessageToDict(p.card).values())  # no card field
        assert json_format.MessageToDict(p.custom_fields) == {}
        c = p.character
        assert (c.personality, c.scenario, c.example_dialogues) == ("", "", "")
        assert c.post_history_instructions == ""
        # What the bot shows anyone (/character view) stays.
        assert (p.display_name, c.description) == ("Grigori", "A priest of Ravenholm.")

    # The owner sees it all; Bob what anyone may.
    full(
        (
            await bot.GetPersonality(gw.GetPersonalityRequest(actor=ALICE, personality=slug))
        ).personality
    )
    stripped(
        (
            await bot.GetPersonality(gw.GetPersonalityRequest(actor=BOB, personality=slug))
        ).personality
    )
    listed = await bot.ListPersonalities(gw.ListPersonalitiesRequest(actor=BOB))
    by_slug = {p.slug: p for p in listed.personalities}
    stripped(by_slug[slug])
    assert by_slug["lilith"].system_prompt == ""  # the operator's too
    assert by_slug["lilith"].character.description.startswith("A tall figure")
    assert by_slug["lilith"].error_message  # the bot's error replies use it
    mentioned = await bot.ResolveMentions(
        gw.ResolveMentionsRequest(actor=BOB, content="@Grigori, bless me")
    )
    stripped(mentioned.mentions[0].personality)
    aliased = await bot.AddPersonalAlias(
        gw.AddPersonalAliasRequest(actor=BOB, personality=slug, alias="father")
    )
    stripped(aliased.alias.personality)
    stripped(
        (await bot.ListPersonalAliases(gw.ListPersonalAliasesRequest(actor=BOB)))
        .aliases[0]
        .personality
    )
    # The operator (no actor: the CLI's export) and superusers see it all.
    full((await cli.GetPersonality(gw.GetPersonalityRequest(personality=slug))).personality)
    await make_superuser(bot, core_url, CAROL)
    full(
        (
            await bot.GetPersonality(gw.GetPersonalityRequest(actor=CAROL, personality=slug))
        ).personality
    )
