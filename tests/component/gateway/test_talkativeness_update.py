"""UpdatePersonality with `talkativeness` over real mTLS gRPC on real Postgres: all of the
update or none of it (a refused field leaves talkativeness as it was), the personality found
once, as every other update finds it (by id when the request has one)."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

from . import test_grpc as g
from .test_admin_grpc import ALICE, BOB, fails, private_of_alice

pytestmark = pytest.mark.component

mesh = g.mesh
connect = g.connect
Connect = g.Connect

TALK = "talkativeness"


async def talkativeness_and_name(bot: Any, slug: str) -> tuple[float, str]:
    got = await bot.GetPersonality(gw.GetPersonalityRequest(actor=ALICE, personality=slug))
    return round(got.personality.talkativeness, 2), got.personality.display_name


def update(actor: common.Actor, paths: list[str], **fields: Any) -> gw.UpdatePersonalityRequest:
    return gw.UpdatePersonalityRequest(
        actor=actor, personality=common.Personality(**fields), update_paths=paths
    )


async def test_a_refused_update_leaves_talkativeness_as_it_was(connect: Connect) -> None:
    bot, cli = connect("bot"), connect("cli")
    muse = await private_of_alice(bot)
    await g.import_seed(cli, "lilith")
    refused = [
        # A bad name, a field nobody may change, a name that is another's alias, a config
        # she may not use (by id: the personality found as every other update finds it).
        (
            update(ALICE, [TALK, "display_name"], slug="muse", talkativeness=0.9, display_name=""),
            grpc.StatusCode.INVALID_ARGUMENT,
            "personality.display_name",
        ),
        (
            update(ALICE, [TALK, "owner_user_id"], slug="muse", talkativeness=0.9),
            grpc.StatusCode.INVALID_ARGUMENT,
            "update_paths",
        ),
        (
            update(ALICE, [TALK, "aliases"], slug="muse", talkativeness=0.9, aliases=["lil"]),
            grpc.StatusCode.ALREADY_EXISTS,
            "",
        ),
        (
            update(
                ALICE,
                [TALK, "default_llm_config_id"],
                id=muse.id,
                talkativeness=0.9,
                default_llm_config_id="00000000-0000-0000-0000-000000000000",
            ),
            grpc.StatusCode.NOT_FOUND,
            "",
        ),
    ]
    for request, code, field in refused:
        await fails(bot.UpdatePersonality(request), code, field)
        assert await talkativeness_and_name(bot, "muse") == (0.5, "Muse"), request
    # Someone else's: refused, whether named by id or by slug.
    await bot.UpdatePersonality(update(ALICE, ["public"], slug="muse", public=True))
    for named in ({"id": muse.id}, {"slug": "muse"}):
        await fails(
            bot.UpdatePersonality(update(BOB, [TALK], talkativeness=0.1, **named)),
            grpc.StatusCode.PERMISSION_DENIED,
        )
    # A talkativeness out of range refuses the other fields too.
    await fails(
        bot.UpdatePersonality(
            update(ALICE, [TALK, "display_name"], slug="muse", talkativeness=2, display_name="M")
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "personality.talkativeness",
    )
    assert await talkativeness_and_name(bot, "muse") == (0.5, "Muse")


async def test_talkativeness_is_stored_with_the_other_fields(connect: Connect) -> None:
    bot = connect("bot")
    muse = await private_of_alice(bot)
    done = await bot.UpdatePersonality(
        update(ALICE, [TALK, "display_name"], slug="muse", talkativeness=0.8, display_name="Mu")
    )
    assert (round(done.personality.talkativeness, 2), done.personality.display_name) == (0.8, "Mu")
    assert await talkativeness_and_name(bot, "muse") == (0.8, "Mu")
    # By id: that personality, whatever the slug the request also carries.
    await g.import_seed(connect("cli"), "lilith")
    by_id = await bot.UpdatePersonality(
        update(ALICE, [TALK], id=muse.id, slug="lilith", talkativeness=0.3)
    )
    assert (by_id.personality.id, round(by_id.personality.talkativeness, 2)) == (muse.id, 0.3)
    assert await talkativeness_and_name(bot, "muse") == (0.3, "Mu")
