"""Personal aliases over real mTLS gRPC on real Postgres: the limit, private personalities,
and mentions resolving a user's alias for that user only."""

from __future__ import annotations

import grpc
import pytest

from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

from . import test_admin_grpc as a
from . import test_grpc as g

pytestmark = pytest.mark.component

mesh = g.mesh
connect = g.connect
ALICE, BOB = a.ALICE, a.BOB


async def test_a_user_has_at_most_a_hundred_aliases(connect: g.Connect) -> None:
    bot, cli = connect("bot"), connect("cli")
    await g.import_seed(cli, "lilith")
    for n in range(100):
        await bot.AddPersonalAlias(
            gw.AddPersonalAliasRequest(actor=ALICE, personality="lilith", alias=f"l{n}")
        )
    details = await a.fails(
        bot.AddPersonalAlias(
            gw.AddPersonalAliasRequest(actor=ALICE, personality="lilith", alias="one more")
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert "you have 100 aliases" in details
    bobs = await bot.AddPersonalAlias(
        gw.AddPersonalAliasRequest(actor=BOB, personality="lilith", alias="one more")
    )
    assert bobs.alias.personality.slug == "lilith"
    listed = await bot.ListPersonalAliases(gw.ListPersonalAliasesRequest(actor=ALICE))
    assert len(listed.aliases) == 100


async def test_aliases_reach_only_what_their_user_may_see(connect: g.Connect) -> None:
    bot, cli = connect("bot"), connect("cli")
    await g.import_seed(cli, "lilith")
    muse = await a.private_of_alice(bot)
    await a.fails(
        bot.AddPersonalAlias(
            gw.AddPersonalAliasRequest(actor=BOB, personality=muse.slug, alias="m")
        ),
        grpc.StatusCode.NOT_FOUND,
    )
    await bot.AddPersonalAlias(
        gw.AddPersonalAliasRequest(actor=ALICE, personality=muse.slug, alias="lil")
    )
    mine = await bot.ResolveMentions(gw.ResolveMentionsRequest(actor=ALICE, content="@lil hi"))
    theirs = await bot.ResolveMentions(gw.ResolveMentionsRequest(actor=BOB, content="@lil hi"))
    assert [m.personality.slug for m in mine.mentions] == [muse.slug]
    assert [m.personality.slug for m in theirs.mentions] == ["lilith"]
    # the alias names the personality wherever Alice names one
    shown = await bot.GetPersonality(gw.GetPersonalityRequest(actor=ALICE, personality="lil"))
    assert shown.personality.slug == muse.slug
    await a.fails(
        bot.AddPersonalAlias(
            gw.AddPersonalAliasRequest(actor=ALICE, personality="lilith", alias="")
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "alias",
    )
    await a.fails(
        bot.RemovePersonalAlias(gw.RemovePersonalAliasRequest(actor=BOB, alias="lil")),
        grpc.StatusCode.NOT_FOUND,
    )


async def test_a_users_own_alias_beats_a_name_made_after_it_in_lookups_and_mentions(
    connect: g.Connect,
) -> None:
    """Alice's own alias "luna moon" for Lilith, made before Bob's public "✨Luna Moon✨"
    was (named "luna moon" by its mention key; a new alias of that name would be refused):
    for Alice it still means Lilith, in a slash command's lookup (GetPersonality) as in her
    @mentions (ResolveMentions), so Bob cannot redirect her by naming a personality after
    her alias. For everyone else the name means Bob's, and its slug is Bob's for her too."""
    bot, cli = connect("bot"), connect("cli")
    await g.import_seed(cli, "lilith")
    await bot.AddPersonalAlias(
        gw.AddPersonalAliasRequest(actor=ALICE, personality="lilith", alias="luna moon")
    )
    luna = await bot.CreatePersonality(
        gw.CreatePersonalityRequest(
            actor=BOB,
            personality=common.Personality(
                display_name="✨Luna Moon✨", system_prompt="You glow.", public=True
            ),
        )
    )
    hers = await bot.GetPersonality(gw.GetPersonalityRequest(actor=ALICE, personality="luna moon"))
    assert hers.personality.slug == "lilith"
    mentioned = await bot.ResolveMentions(
        gw.ResolveMentionsRequest(actor=ALICE, content="@luna moon hi")
    )
    assert [m.personality.slug for m in mentioned.mentions] == ["lilith"]
    his = await bot.GetPersonality(gw.GetPersonalityRequest(actor=BOB, personality="luna moon"))
    assert his.personality.id == luna.personality.id
    by_slug = await bot.GetPersonality(
        gw.GetPersonalityRequest(actor=ALICE, personality=luna.personality.slug)
    )
    assert by_slug.personality.id == luna.personality.id
