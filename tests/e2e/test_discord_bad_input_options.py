"""Bad input to `/admin deny add`, `/personality voice set` and `/lorebook import`, through
the fake Discord (which checks options against the registered command), the real bot and the
whole mesh (review: their `scope_id`, `provider` and `name` were unchecked):

- what the option declares, Discord's client refuses (an id over 20 characters, a provider
  over 64, a name over 100 characters); what it lets through that the gateway refuses (an id
  that is not digits, a provider inference does not speak with) is answered in words, and
  nothing is stored;
- the gateway refuses the same to a caller that is not the bot (gRPC, as the CLI).
"""

from __future__ import annotations

import json

import grpc
import pytest
import sqlalchemy as sa

from tzurot.bot.commands.options import LONGEST_DISCORD_ID, LONGEST_LOREBOOK_NAME, LONGEST_PROVIDER
from tzurot.db.engine import create_engine
from tzurot.runtime.errors import InvalidArgument, from_rpc_error
from tzurot.testing.discord_e2e import World, member_actor, running_bot, slash_text
from tzurot.testing.fake_discord import InvalidSlashCommand
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

pytestmark = pytest.mark.e2e

A_CHANNEL = "123456789012345678"
ACCEPTED = "elevenlabs, kokoro, openai, openedai-speech"
"""What inference says speaks (ListProvidersResponse.speech_providers): ElevenLabs and the
built-in speech providers."""


async def make_superuser(world: World) -> None:
    """Alice, a superuser: as an operator makes one (README, "Superusers")."""
    await world.cli.GetUser(gw.GetUserRequest(actor=common.Actor(user_id=world.alice["id"])))
    engine = create_engine(world.mesh.database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                sa.text("UPDATE core.users SET superuser = true WHERE platform_user_id = :id"),
                {"id": world.alice["id"]},
            )
    finally:
        await engine.dispose()


async def deny_add(world: World, **options: object) -> str:
    """Alice's `/admin deny add` with `options` (one is `user`: no `slash_text` here)."""
    done = await world.discord.slash(
        world.general, world.alice, "admin", options, subcommand=["deny", "add"]
    )
    await world.discord.wait_until(lambda: any(done.texts()), within=30)
    return "".join(done.texts())


async def denylist(world: World) -> list[gw.DenylistEntry]:
    """The entries of this test's Bob (the mesh, and its denylist, are the module's)."""
    listed = await world.cli.ListDenylist(gw.ListDenylistRequest())
    return [e for e in listed.entries if e.target_id == world.bob["id"]]


async def test_a_deny_scope_is_a_discord_id_or_a_personality(world: World) -> None:
    await make_superuser(world)
    async with running_bot(world):
        await world.discord.wait_until(lambda: world.guild["id"] in world.discord.synced_commands)
        with pytest.raises(InvalidSlashCommand, match="max_length"):
            await world.discord.slash(
                world.general, world.alice, "admin",
                {"user": world.bob, "scope": "guild", "scope_id": "1" * (LONGEST_DISCORD_ID + 1)},
                subcommand=["deny", "add"],
            )  # fmt: skip
        not_an_id = await deny_add(world, user=world.bob, scope="channel", scope_id="general")
        not_a_server = await deny_add(world, guild_id="my-server")
        misfit = await deny_add(world, user=world.bob, scope="personality", scope_id="lilith")
        assert await denylist(world) == []  # nothing of those was stored
        everyone = (await world.cli.ListDenylist(gw.ListDenylistRequest())).entries
        assert not [e for e in everyone if e.target_id == "my-server"]
        channel = await deny_add(world, user=world.bob, scope="channel", scope_id=A_CHANNEL)
        personality = await deny_add(
            world, user=world.bob, scope="personality", personality="Lilith"
        )
        stored = await denylist(world)
    assert not_an_id == (  # the option typed in, not the request's field (review)
        "Nothing added (`scope_id`): 'general' is not a Discord channel id: one is digits "
        "only, at most 20 and not starting with 0 (like 123456789012345678)"
    )
    assert not_a_server.startswith(
        "Nothing added (`guild_id`): 'my-server' is not a Discord server id: one is digits only"
    )
    assert misfit.startswith("Nothing added: with `scope: personality`, name the personality in")
    assert f"block user `{world.bob['id']}` in channel `{A_CHANNEL}`" in channel
    assert f"block user `{world.bob['id']}` in personality `lilith`" in personality
    assert sorted((e.scope, e.scope_id) for e in stored) == sorted(
        [(gw.DENY_SCOPE_CHANNEL, A_CHANNEL), (gw.DENY_SCOPE_PERSONALITY, "lilith")]
    )


async def test_a_deny_of_a_malformed_id_is_refused_over_grpc_too(world: World) -> None:
    entry = gw.DenylistEntry(
        target=gw.DENY_TARGET_USER,
        target_id=world.bob["id"],
        scope=gw.DENY_SCOPE_GUILD,
        scope_id="0",
        mode=gw.DENY_MODE_BLOCK,
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await world.cli.AddDenylistEntry(gw.AddDenylistEntryRequest(entry=entry))
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.details() == (
        "'0' is not a Discord server id: one is digits only, at most 20 and not starting "
        "with 0 (like 123456789012345678)"
    )
    said = from_rpc_error(refused.value)
    assert isinstance(said, InvalidArgument)
    assert said.field == "entry.scope_id"  # the request's field, for API clients (BadRequest)
    assert await denylist(world) == []


async def test_a_voice_provider_is_one_the_system_speaks_with(world: World) -> None:
    await world.cli.CreatePersonality(
        gw.CreatePersonalityRequest(
            actor=member_actor(world.alice),
            personality=common.Personality(
                slug="echo", display_name="Echo", system_prompt="You are Echo.", public=True
            ),
        )
    )
    async with running_bot(world):
        await world.discord.wait_until(lambda: world.guild["id"] in world.discord.synced_commands)
        with pytest.raises(InvalidSlashCommand, match="max_length"):
            await world.discord.slash(
                world.general, world.alice, "personality",
                {"personality": "echo", "provider": "p" * (LONGEST_PROVIDER + 1),
                 "voice_id": "alloy"},
                subcommand=["voice", "set"],
            )  # fmt: skip
        refused_in_words = []
        for provider in ("elevenlab", "openrouter"):
            said = await slash_text(
                world, world.alice, "personality", "voice", "set",
                personality="echo", provider=provider, voice_id="alloy",
            )  # fmt: skip
            refused_in_words.append(said)
        chosen = await slash_text(
            world, world.alice, "personality", "voice", "set",
            personality="echo", provider="kokoro", voice_id="af_bella",
        )  # fmt: skip
    unknown = f"unknown provider; the providers that can speak here: {ACCEPTED}"
    assert refused_in_words == [
        unknown,
        "provider 'openrouter' is a chat provider, not a speech provider; the providers that "
        f'can speak here: {ACCEPTED} (the operator declares a speech server with "speech": '
        "true in TZUROT_PROVIDERS)",
    ]
    assert chosen.startswith("**Echo** (`echo`) speaks with kokoro voice `af_bella`"), chosen
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await world.cli.SetPersonalityVoice(
            gw.SetPersonalityVoiceRequest(
                personality="echo",
                voice=common.VoiceConfig(provider="elevenlab", voice_id="alloy"),
            )
        )
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.details() == unknown
    kept = await world.cli.GetPersonalityVoice(gw.GetPersonalityVoiceRequest(personality="echo"))
    assert kept.voice.provider == "kokoro"


UNTITLED = json.dumps(
    {"entries": {"0": {"uid": 0, "key": ["bridge"], "content": "The bridge is old."}}}
).encode()


async def test_a_lorebook_name_over_the_limit_is_refused_not_cut(world: World) -> None:
    longest = "N" * (LONGEST_LOREBOOK_NAME - 1) + "Z"
    async with running_bot(world):
        await world.discord.wait_until(lambda: world.guild["id"] in world.discord.synced_commands)
        file = world.discord.upload(world.general, "bridge.json", UNTITLED, "application/json")
        with pytest.raises(InvalidSlashCommand, match="max_length"):
            await world.discord.slash(
                world.general, world.alice, "lorebook",
                {"file": file, "name": longest + "!"}, subcommand=["import"],
            )  # fmt: skip
        named = await slash_text(world, world.alice, "lorebook", "import", file=file, name=longest)
        long_file = world.discord.upload(
            world.general, "F" * 150 + ".json", UNTITLED, "application/json"
        )
        unnamed = await slash_text(world, world.alice, "lorebook", "import", file=long_file)
    assert named.startswith(f"Imported **{longest}** (1 entry)."), named
    assert unnamed.startswith(f"Imported **{'F' * LONGEST_LOREBOOK_NAME}** (1 entry)."), unnamed
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await world.cli.ImportLorebook(
            gw.ImportLorebookRequest(
                actor=member_actor(world.alice), document=UNTITLED, name=longest + "!"
            )
        )
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.details() == f"name is longer than {LONGEST_LOREBOOK_NAME} characters"
    listed = await world.cli.ListLorebooks(gw.ListLorebooksRequest(actor=member_actor(world.alice)))
    assert sorted(b.name for b in listed.lorebooks) == sorted(
        [longest, "F" * LONGEST_LOREBOOK_NAME]
    )
