"""What removes or overwrites for good acts only on the personality the user chose, through the
fake Discord, the real bot and the whole mesh (review of dbc585c3).

- `/personality voice-sample remove`, `/memory delete`, `/character edit`,
  `/personality voice set|clone` given a name that means another personality (Alice's alias
  "<prefix> luna moon" is her Old) do nothing and name the one it means; by slug (what their
  autocomplete sends) they act on that one, and the reply names it.
- The check and the act: the bot acts on the personality it checked by its id, so one made
  private in between is refused, never replaced by what the slug means then (Alice's own
  alias of that text).
- `/channel deactivate` forgets the channel for the gateway-away notice.
"""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import pytest

from tzurot.audio import encode_tone
from tzurot.testing.discord_e2e import (
    RecordingGateway,
    World,
    member_actor,
    recording_gateway,
    running_bot,
    settled,
)
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

from .gateway_away import AwayGateway, lilith_answered, notices
from .test_discord_command_replies import slash as managed
from .test_discord_destructive_by_slug import old_and_luna_moon, slash

pytestmark = pytest.mark.e2e


async def samples_of(world: World, slug: str) -> int:
    listed = await world.cli.ListVoiceSamples(
        gw.ListVoiceSamplesRequest(actor=member_actor(world.alice), personality=slug)
    )
    return len(listed.samples)


async def test_voice_sample_remove_acts_only_by_slug_and_names_whose(world: World) -> None:
    async with running_bot(world):
        old, _ = await old_and_luna_moon(world, "Sr")
        up = world.discord.upload(world.general, "hello.mp3", encode_tone(1.0), "audio/mpeg")
        added = await slash(
            world, world.alice, "personality", "voice-sample", "upload", personality=old, file=up
        )
        assert "Added" in added, added
        listed = await world.cli.ListVoiceSamples(
            gw.ListVoiceSamplesRequest(actor=member_actor(world.alice), personality=old)
        )
        (sample,) = listed.samples
        refused = await slash(
            world, world.alice, "personality", "voice-sample", "remove",
            personality="Sr Luna Moon", sample=sample.id,
        )  # fmt: skip
        kept = await samples_of(world, old)
        removed = await slash(
            world, world.alice, "personality", "voice-sample", "remove",
            personality=old, sample=sample.id,
        )  # fmt: skip
        left = await samples_of(world, old)
    assert refused.startswith("Nothing removed: `Sr Luna Moon` means **Sr Old** (`sr-old`)")
    assert f"with `personality: sr-old` and `sample: {sample.id}`" in refused
    assert kept == 1
    assert removed == "Removed the sample from **Sr Old** (`sr-old`)'s voice samples."
    assert left == 0


async def test_memory_delete_by_a_name_meaning_another_deletes_nothing(world: World) -> None:
    async with running_bot(world):
        await old_and_luna_moon(world, "Md")
        refused = await slash(
            world, world.alice, "memory", "delete", personality="Md Luna Moon", memory="m-1"
        )
    assert refused.startswith("Nothing deleted: `Md Luna Moon` means **Md Old** (`md-old`)")
    assert "with `personality: md-old` and `memory: m-1`" in refused


async def test_edit_offers_slugs_and_acts_only_by_slug(world: World) -> None:
    async with running_bot(world):
        old, luna = await old_and_luna_moon(world, "Ed")
        asked = await world.discord.slash(
            world.general, world.alice, "character",
            {"personality": "ed luna", "field": "system_prompt", "value": "x"},
            subcommand=["edit"], focused="personality",
        )  # fmt: skip
        await world.discord.wait_until(lambda: any(r.get("type") == 8 for r in asked.responses))
        offered = asked.choices()
        refused = await slash(
            world, world.alice, "character", "edit",
            personality="Ed Luna Moon", field="system_prompt", value="You are overwritten.",
        )  # fmt: skip
        edited = await slash(
            world, world.alice, "character", "edit",
            personality=luna, field="system_prompt", value="You are the new moon.",
        )  # fmt: skip
        got_old, got_luna = [
            (
                await world.cli.GetPersonality(
                    gw.GetPersonalityRequest(actor=member_actor(world.alice), personality=slug)
                )
            ).personality.system_prompt
            for slug in (old, luna)
        ]
    assert {"name": "Ed Luna Moon", "value": luna} in offered, offered
    assert refused.startswith("Nothing changed: `Ed Luna Moon` means **Ed Old** (`ed-old`)")
    assert edited == "Updated system_prompt of **Ed Luna Moon** (`ed-luna-moon`)."
    assert (got_old, got_luna) == ("You are old.", "You are the new moon.")


async def test_voice_set_and_clone_by_a_name_meaning_another_do_nothing(world: World) -> None:
    async with running_bot(world):
        old, _ = await old_and_luna_moon(world, "Vc")
        offered = await world.discord.slash(
            world.general, world.alice, "personality", {"personality": "vc"},
            subcommand=["voice", "clone"], focused="personality",
        )  # fmt: skip
        await world.discord.wait_until(lambda: any(r.get("type") == 8 for r in offered.responses))
        cloned = await slash(
            world, world.alice, "personality", "voice", "clone", personality="Vc Luna Moon"
        )
        set_ = await slash(
            world, world.alice, "personality", "voice", "set",
            personality="Vc Luna Moon", provider="openai", voice_id="alloy",
        )  # fmt: skip
        voice = await world.cli.GetPersonalityVoice(
            gw.GetPersonalityVoiceRequest(actor=member_actor(world.alice), personality=old)
        )
    assert {c["value"] for c in offered.choices()} == {"vc-old", "vc-luna-moon"}
    assert cloned.startswith("Nothing cloned: `Vc Luna Moon` means **Vc Old** (`vc-old`)")
    assert set_.startswith("Nothing changed: `Vc Luna Moon` means **Vc Old** (`vc-old`)")
    assert not voice.HasField("voice") or not voice.voice.provider


class FlipGateway(RecordingGateway):
    """Right after the bot's GetPersonality, `flip()` (Bob makes his personality private):
    the race between the check and the act; what ClearHistory is sent is kept."""

    flip: Any = None
    cleared_with = ""

    async def GetPersonality(self, request: gw.GetPersonalityRequest, context: Any) -> Any:
        found = await self.upstream.GetPersonality(request)
        if self.flip is not None:
            await self.flip()
        return found

    async def ClearHistory(self, request: gw.ClearHistoryRequest, context: Any) -> Any:
        self.cleared_with = request.personality
        try:
            return await self.upstream.ClearHistory(request)
        except grpc.aio.AioRpcError as exc:  # passed on whole: its reason with it
            meta = tuple(exc.trailing_metadata() or ())
            await context.abort(exc.code(), exc.details() or "", meta)

    async def PlanChannelReply(self, request: gw.PlanChannelReplyRequest, context: Any) -> Any:
        return await self.upstream.PlanChannelReply(request)


async def test_a_personality_made_private_between_check_and_act_is_refused(
    world: World,
) -> None:
    """Bob's `sage…` was private when Alice made her own alias of that text for her `mine…`;
    then public, so `sage…` is Bob's for her. Made private again right after the bot's check,
    the slug would mean her alias: `/history clear` would clear her history with `mine…`
    under Bob's name. By id, the gateway refuses instead."""
    sage, mine = f"sage{uuid.uuid4().hex[:6]}", f"mine{uuid.uuid4().hex[:6]}"
    await world.set_key(world.alice)
    for who, slug, name in ((world.bob, sage, "Bob's Sage"), (world.alice, mine, "Mine")):
        await world.cli.CreatePersonality(
            gw.CreatePersonalityRequest(
                actor=member_actor(who),
                personality=common.Personality(
                    slug=slug, display_name=name, system_prompt="You are.", public=False
                ),
            )
        )
    await world.cli.AddPersonalAlias(
        gw.AddPersonalAliasRequest(actor=member_actor(world.alice), personality=mine, alias=sage)
    )

    async def made_public(public: bool) -> None:
        await world.cli.UpdatePersonality(
            gw.UpdatePersonalityRequest(
                actor=member_actor(world.bob),
                personality=common.Personality(slug=sage, public=public),
                update_paths=["public"],
            )
        )

    await made_public(True)
    bobs = await world.cli.GetPersonality(
        gw.GetPersonalityRequest(actor=member_actor(world.alice), personality=sage)
    )
    assert bobs.personality.display_name == "Bob's Sage"

    async def flip() -> None:
        await made_public(False)

    async with (
        recording_gateway(world, FlipGateway) as (hop, client),
        running_bot(world, gateway=client),
    ):
        said = await world.discord.say(world.general, world.alice, f"@{mine} remember the owl")
        await world.delivered(f"{said.id}:{mine}")
        assert isinstance(hop, FlipGateway)
        hop.flip = flip
        cleared = await slash(world, world.alice, "history", "clear", personality=sage)
        sent = hop.cleared_with
        hop.flip = None
        mine_cleared = await slash(world, world.alice, "history", "clear", personality=mine)
    assert sent == bobs.personality.id  # the one checked, by its id
    assert cleared == (
        f"Nothing cleared: **Bob's Sage** (`{sage}`) is no longer there for you "
        "(deleted or made private just now)."
    )
    # Her history with mine… was left alone: clearing it now still finds her two turns.
    assert mine_cleared.startswith("Cleared 2 messages of your history with Mine"), mine_cleared


class AwayDeactivating(AwayGateway):
    async def DeactivateChannel(self, request: gw.DeactivateChannelRequest, context: Any) -> Any:
        return await self.upstream.DeactivateChannel(request)


async def test_a_deactivated_channel_is_forgotten_for_the_notice(world: World) -> None:
    async with lilith_answered(world, AwayDeactivating) as (hop, bot):
        stopped = await managed(world, world.alice, "channel", "deactivate", personality="lilith")
        hop.away = True
        await world.discord.say(world.general, world.bob, "just us humans now")
        await settled(world, bot)
    assert stopped == "**Lilith** no longer answers every message here.", stopped
    assert notices(world, world.general) == []
