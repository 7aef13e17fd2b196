"""Group channels, free will and release notes through the fake Discord and the whole mesh.

The gateway runs on a ManualClock: cooldowns, quiet spells and schedules move when a test
advances it, never by sleeping. Speaker choice is seeded (GROUP_SEED), so a test computes the
expected order with the same pure function the gateway uses.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from google.protobuf import struct_pb2
from prometheus_client import REGISTRY

from tzurot.bot.gateway_client import GatewayClient
from tzurot.cli.localdb import create_database
from tzurot.db.engine import create_engine
from tzurot.gateway.app import start_gateway
from tzurot.gateway.clock import ManualClock
from tzurot.gateway.freewill_plan import Action, FreeWillPolicy, decide, next_check
from tzurot.gateway.freewill_plan import ChannelState as FreeWillState
from tzurot.gateway.speakers import Member, choose_speakers, seeded_rng
from tzurot.testing.discord_e2e import World, discord_world, running_bot
from tzurot.testing.discord_e2e import settled as discord_settled
from tzurot.testing.fake_discord import FakeInteraction, Posted
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw
from tzurot.v1 import gateway_pb2_grpc as gw_grpc
from tzurot.v1 import memory_pb2 as mem
from tzurot.v1 import memory_pb2_grpc as mem_grpc

pytestmark = pytest.mark.e2e

GROUP_SEED = "e2e-seed"
MANAGE_CHANNELS = str(1 << 4)
MANAGE_GUILD = str(1 << 5)
ALASTOR_SEED = b"""
name: Alastor
system_prompt: You are Alastor, the radio demon.
llm: {provider: openrouter, model: fake/alastor}
"""
CHANGELOG_V1 = """# Changelog
## [Unreleased]
## [0.1.0] - 2026-12-01
### Added
- The first release.
"""
CHANGELOG_V2 = """# Changelog
## [Unreleased]
## [0.2.0] - 2026-12-02
### Added
- Group channels, where personalities take turns.
## [0.1.0] - 2026-12-01
### Added
- The first release.
"""
NOON = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)


@pytest.fixture(scope="module")
def clock() -> ManualClock:
    return ManualClock(NOON)


@pytest.fixture(scope="module")
def changelog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("release") / "CHANGELOG.md"
    path.write_text(CHANGELOG_V1)
    return path


@pytest.fixture(scope="module")
async def group_mesh(
    postgres_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    clock: ManualClock,
    changelog: Path,
) -> AsyncIterator[World]:
    database = create_database(postgres_url, f"test_{uuid.uuid4().hex[:20]}")
    options: dict[str, Any] = {
        "group_seed": GROUP_SEED,
        "events_poll_seconds": 0.1,
        "freewill_tick_seconds": 0,  # the tests tick the scheduler themselves
        "freewill_quiet_after_minutes": 60,
        "freewill_min_gap_minutes": 30,
        "freewill_check_min_seconds": 60,
        "freewill_check_max_seconds": 60,
        "changelog_path": changelog,
        "changelog_url": "https://example.org/CHANGELOG.md",
        "superusers": frozenset(),
        "consolidate_every_exchanges": 3,
    }
    async with discord_world(
        database, tmp_path_factory.mktemp("groups"), gateway=options, gateway_clock=clock
    ) as world:
        await world.cli.ImportPersonality(
            gw.ImportPersonalityRequest(format=gw.IMPORT_FORMAT_SEED_YAML, document=ALASTOR_SEED)
        )
        await _warm_memory(world)
        yield world


async def _warm_memory(world: World) -> None:
    """Waits for memory's embedding model (it loads in the background, slowly on a busy
    machine), so the tests' answers do not race it."""
    memory = mem_grpc.MemoryServiceStub(await world.mesh.channel("inference", target="memory"))
    await memory.QueryMemories(
        mem.QueryMemoriesRequest(
            personality_id=str(uuid.uuid4()), user_id=str(uuid.uuid4()), query="warm", limit=1
        ),
        timeout=300,
    )


@pytest.fixture
async def world(group_mesh: World) -> World:
    """A fresh channel, and fresh Alice and Bob who both have a key."""
    fresh = group_mesh.scene()
    await fresh.set_key(fresh.alice)
    await fresh.set_key(fresh.bob)
    return fresh


# ---- helpers ----


async def activate(world: World, *names: str) -> None:
    for name in names:
        await world.cli.ActivateChannel(
            gw.ActivateChannelRequest(location=_where(world), personality=name)
        )


async def set_channel(world: World, key: str, value: float) -> None:
    await world.cli.SetSetting(
        gw.SetSettingRequest(
            scope=common.CONFIG_SOURCE_CHANNEL,
            location=_where(world),
            key=key,
            value=struct_pb2.Value(number_value=value),
        )
    )


async def talkative(world: World, **values: float) -> None:
    for slug, value in values.items():
        await world.cli.UpdatePersonality(
            gw.UpdatePersonalityRequest(
                personality=common.Personality(slug=slug, talkativeness=value),
                update_paths=["talkativeness"],
            )
        )


def _where(world: World) -> common.Location:
    return common.Location(guild_id=str(world.guild["id"]), channel_id=str(world.general["id"]))


def answers(world: World) -> list[Posted]:
    return world.discord.webhook_messages(world.general)


def bot_posts(world: World, channel: Any) -> list[Posted]:
    bot_id = str(world.discord.bot_user["id"])
    return [
        m
        for m in world.discord.messages.get(int(channel["id"]), [])
        if not m.webhook_id and str(m.data["author"]["id"]) == bot_id and not m.deleted
    ]


def _more_answers(world: World, seen: int) -> Callable[[], bool]:
    return lambda: len(answers(world)) > seen


def _texts(interaction: FakeInteraction) -> Callable[[], str]:
    return lambda: "".join(interaction.texts())


def _posts(world: World, channel: Any) -> Callable[[], list[Posted]]:
    return lambda: bot_posts(world, channel)


async def events_of(world: World, where: str) -> list[dict[str, Any]]:
    engine = create_engine(world.mesh.database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                sa.text(
                    "SELECT reason, round_id, depth, delivered_at, dropped_reason, message_ids, "
                    "notice_kind, text FROM core.bot_events WHERE channel_id = :c "
                    "ORDER BY created_at"
                ),
                {"c": where},
            )
            return [dict(r._mapping) for r in rows]
    finally:
        await engine.dispose()


async def settled(world: World, predicate: Any, within: float = 60.0) -> list[dict[str, Any]]:
    """Waits until the channel's events satisfy `predicate` (the bot acknowledges them)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        events = await events_of(world, str(world.general["id"]))
        if predicate(events):
            return events
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"events never settled: {events}")
        await asyncio.sleep(0.1)


async def expected_order(world: World, text: str, message_id: int, count: int) -> list[str]:
    """The speakers the gateway must pick, by the same seeded rules."""
    listed = await world.cli.ListChannelActivations(
        gw.ListChannelActivationsRequest(location=_where(world))
    )
    members = [
        Member(
            a.personality.id,
            (a.personality.display_name, a.personality.slug, *a.personality.aliases),
            a.personality.talkativeness,
        )
        for a in listed.activations
    ]
    names = {a.personality.id: a.personality.display_name for a in listed.activations}
    picked = choose_speakers(
        members,
        text,
        rng=seeded_rng(GROUP_SEED, str(world.general["id"]), str(message_id)),
        max_speakers=count,
        from_human=True,
    )
    return [names[m.personality_id] for m in picked]


# ---- group channels ----


async def test_three_personalities_answer_in_the_seeded_order(world: World) -> None:
    await talkative(world, lilith=1.0, sage=1.0, alastor=1.0)
    await set_channel(world, "group_max_speakers", 3)
    await set_channel(world, "group_chain_cap", 0)
    async with running_bot(world):
        activated = await world.discord.slash(
            world.general,
            world.alice,
            "channel",
            {"personality": "Lilith"},
            subcommand=["activate"],
            permissions=MANAGE_CHANNELS,
        )
        await world.discord.wait_until(lambda: "".join(activated.texts()))
        await activate(world, "Sage", "Alastor")
        said = await world.discord.say(world.general, world.alice, "good evening, everyone")
        posted = await world.discord.wait_until(lambda: len(answers(world)) >= 3 and answers(world))
        listed = await world.discord.slash(
            world.general, world.alice, "channel", subcommand=["list"], permissions=MANAGE_CHANNELS
        )
        await world.discord.wait_until(lambda: "".join(listed.texts()))
    order = await expected_order(world, "good evening, everyone", said.id, 3)
    assert sorted(order) == ["Alastor", "Lilith", "Sage"]
    assert [m.author_name for m in posted] == order
    assert "group channel" in "".join(listed.texts())
    # Each later speaker's prompt shows the earlier answers, attributed to who said them.
    last = world.provider.chat_requests()[-1].body["messages"]
    said_by = [m["content"] for m in last if m["role"] == "user" and isinstance(m["content"], str)]
    assert any(c.startswith(f"{order[0]}: ") for c in said_by)
    assert any(c.startswith(f"{order[1]}: ") for c in said_by)
    system = last[0]["content"]
    assert "## Group" in system
    assert all(name in system for name in order[:2])
    # All three were paid by Alice's key (the human whose message it was).
    assert {r.api_key for r in world.provider.chat_requests()[-3:]} == {
        "sk-or-alice-key-0123456789abcdef"
    }


async def test_channel_members_are_added_listed_and_removed_one_by_one(world: World) -> None:
    """/channel activate adds, /channel deactivate <personality> removes only that one,
    /channel list shows who is in; /channel talkativeness is its owner's to set."""
    await talkative(world, lilith=1.0, sage=1.0)
    await set_channel(world, "group_max_speakers", 3)
    await set_channel(world, "group_chain_cap", 0)

    async def slash(user: Any, sub: str, options: dict[str, Any] | None = None) -> str:
        done = await world.discord.slash(
            world.general,
            user,
            "channel",
            options or {},
            subcommand=[sub],
            permissions=MANAGE_CHANNELS,
        )
        return str(await world.discord.wait_until(_texts(done)))

    async with running_bot(world):
        for name in ("Lilith", "Sage"):
            await slash(world.alice, "activate", {"personality": name})
        both = await slash(world.alice, "list")
        removed = await slash(world.alice, "deactivate", {"personality": "Sage"})
        left = await slash(world.alice, "list")
        await world.discord.say(world.general, world.alice, "anyone here?")
        await world.discord.wait_until(lambda: answers(world))
        created = await world.discord.slash(
            world.general,
            world.alice,
            "character",
            {
                "name": f"Owl{uuid.uuid4().hex[:4]}",
                "system_prompt": "You are an owl.",
                "public": True,
            },
            subcommand=["create"],
        )
        owl = (await world.discord.wait_until(_texts(created))).split("**")[1]
        mine = await slash(world.alice, "talkativeness", {"personality": owl, "value": 0.9})
        theirs = await slash(world.bob, "talkativeness", {"personality": owl, "value": 0.1})
    assert "Lilith" in both
    assert "Sage" in both
    assert "**Sage** no longer answers every message here." in removed
    assert "Lilith" in left
    assert "Sage" not in left
    assert [m.author_name for m in answers(world)] == ["Lilith"]  # only the one still in
    assert "now has talkativeness 0.90" in mine
    assert "only the owner" in theirs
    found = await world.cli.GetPersonality(gw.GetPersonalityRequest(personality=owl))
    assert round(found.personality.talkativeness, 2) == 0.9


async def test_a_name_in_plain_text_picks_that_speaker(world: World) -> None:
    await activate(world, "Lilith", "Sage", "Alastor")
    await talkative(world, lilith=0.0, sage=0.0, alastor=0.0)
    await set_channel(world, "group_max_speakers", 3)
    await set_channel(world, "group_chain_cap", 0)
    async with running_bot(world):
        await world.discord.say(world.general, world.alice, "hey alastor, what's on the radio?")
        await world.discord.wait_until(lambda: answers(world))
        await world.discord.say(world.general, world.alice, "and you, Sage?")
        await world.discord.wait_until(lambda: len(answers(world)) >= 2)
    assert [m.author_name for m in answers(world)] == ["Alastor", "Sage"]


async def test_a_personal_alias_names_its_speaker_for_its_user_only(world: World) -> None:
    """Alice calls Sage "lil" (a global alias of Lilith): in plain text too, for her only."""
    await activate(world, "Lilith", "Sage", "Alastor")
    await talkative(world, lilith=0.0, sage=0.0, alastor=0.0)
    await set_channel(world, "group_max_speakers", 3)
    await set_channel(world, "group_chain_cap", 0)
    alice = common.Actor(user_id=str(world.alice["id"]), display_name="alice")
    await world.cli.AddPersonalAlias(
        gw.AddPersonalAliasRequest(actor=alice, personality="sage", alias="lil")
    )
    async with running_bot(world):
        await world.discord.say(world.general, world.alice, "hey lil, what's new?")
        await world.discord.wait_until(lambda: answers(world))
        await world.discord.say(world.general, world.bob, "and you, lil?")
        await world.discord.wait_until(lambda: len(answers(world)) >= 2)
    assert [m.author_name for m in answers(world)] == ["Sage", "Lilith"]


async def test_a_chain_stops_at_its_cap(world: World) -> None:
    await activate(world, "Lilith", "Sage", "Alastor")
    await talkative(world, lilith=1.0, sage=1.0, alastor=1.0)
    await set_channel(world, "group_max_speakers", 1)
    await set_channel(world, "group_chain_cap", 2)
    await set_channel(world, "group_chain_cooldown_seconds", 0)
    async with running_bot(world):
        await world.discord.say(world.general, world.alice, "someone start us off")
        events = await settled(
            world, lambda ev: len(ev) == 2 and all(e["delivered_at"] for e in ev)
        )
        posted = await world.discord.wait_until(lambda: len(answers(world)) >= 3 and answers(world))
    assert [(e["reason"], e["depth"], e["dropped_reason"]) for e in events] == [
        ("chain", 1, ""),
        ("chain", 2, ""),
    ]
    names = [m.author_name for m in posted]
    assert len(names) == 3
    assert names[0] != names[1] != names[2]  # nobody answers themselves
    # The chain's turns went to the provider on Alice's key, as replies to each other.
    chain = world.provider.chat_requests()[-1].body["messages"]
    assert chain[-1]["content"].startswith(f"[{names[1]} just spoke")


async def test_a_human_message_interrupts_the_chain(world: World, clock: ManualClock) -> None:
    await activate(world, "Lilith", "Sage")
    await talkative(world, lilith=1.0, sage=1.0)
    await set_channel(world, "group_max_speakers", 1)
    await set_channel(world, "group_chain_cap", 1)
    await set_channel(world, "group_chain_cooldown_seconds", 600)
    async with running_bot(world):
        first = await world.discord.say(world.general, world.alice, "tell me a story")
        await settled(world, lambda ev: len(ev) == 1)  # the reply waits out its cooldown
        assert len(answers(world)) == 1
        await world.discord.say(world.general, world.bob, "wait, me first!")
        await world.discord.wait_until(lambda: len(answers(world)) >= 2)
        await settled(world, lambda ev: len(ev) == 2)  # Bob's round queued its own reply
        clock.advance(timedelta(seconds=601))
        events = await settled(
            world, lambda ev: len(ev) == 2 and all(e["delivered_at"] for e in ev)
        )
    interrupted = next(e for e in events if e["round_id"] == f"m:{first.id}")
    assert interrupted["dropped_reason"] == "CHAIN_INTERRUPTED"
    assert interrupted["message_ids"] == []
    # Bob's round went on (its own chain reply posted); Alice's stale one never did.
    assert len(answers(world)) == 3


# ---- free will ----


async def test_free_will_checks_in_after_a_quiet_spell_within_budget_on_one_replica(
    world: World, clock: ManualClock
) -> None:
    assert world.mesh.gateway_app is not None
    assert world.mesh.gateway_settings is not None
    first = world.mesh.gateway_app.features.freewill
    await activate(world, "Lilith")  # free will is for personalities activated there
    replica = await start_gateway(world.mesh.gateway_settings, clock=clock)
    try:
        async with running_bot(world):
            enabled = await world.discord.slash(
                world.general,
                world.alice,
                "freewill",
                {"personality": "Lilith", "daily_budget": 2, "quiet_hours": "23-8"},
                subcommand=["on"],
                permissions=MANAGE_CHANNELS,
            )
            assert "at most 2 times a day" in await world.discord.wait_until(
                lambda: "".join(enabled.texts())
            )
            check_ins = 0
            for _ in range(3):  # a human talks, then the channel goes quiet: three spells
                clock.advance(timedelta(minutes=1))
                seen = len(answers(world))
                await world.discord.say(world.general, world.alice, "@Lilith good night")
                await world.discord.wait_until(_more_answers(world, seen))
                clock.advance(timedelta(hours=2))
                seen = len(answers(world))
                both = await asyncio.gather(first.tick(), replica.features.freewill.tick())
                assert sum(both) <= 1  # two replicas never queue one look twice
                check_ins += sum(both)
                if sum(both):
                    await world.discord.wait_until(_more_answers(world, seen))
            events = await settled(
                world, lambda ev: len(ev) == 2 and all(e["delivered_at"] for e in ev)
            )
    finally:
        await replica.stop()
    assert check_ins == 2  # the daily budget: the third quiet spell got nothing
    assert [(e["reason"], e["dropped_reason"]) for e in events] == [
        ("check_in", ""),
        ("check_in", ""),
    ]
    assert all(e["message_ids"] for e in events)
    check_ins_asked = [
        r
        for r in world.provider.chat_requests()
        if "check in with the people here" in str(r.body["messages"][-1]["content"])
    ]
    assert check_ins_asked  # (an answer too like the last one is asked again: not counted)
    # Paid by who enabled it; the check-in answers nobody, so no one's message ends it.
    assert {r.api_key for r in check_ins_asked} == {"sk-or-alice-key-0123456789abcdef"}


async def test_free_will_keeps_quiet_hours_reacts_by_its_seeded_draw_and_stops_without_a_key(
    world: World, clock: ManualClock
) -> None:
    """Quiet hours (guild time, UTC here) hold back a due check-in until they end; a recent
    human message gets a reaction exactly when the seeded draw says so; when the payer's key
    is gone, the next look switches free will off (NO_API_KEY) instead of posting."""
    assert world.mesh.gateway_app is not None
    scheduler = world.mesh.gateway_app.features.freewill
    policy = FreeWillPolicy(
        daily_budget=3,
        quiet_after=timedelta(minutes=60),
        min_gap=timedelta(minutes=30),
        check_every=(60.0, 60.0),
    )
    night = (clock.now() + timedelta(days=1)).replace(hour=1, minute=0, second=0, microsecond=0)
    await activate(world, "Lilith")  # free will is for personalities activated there

    def reacts(at: datetime, human: datetime, last: datetime) -> bool:
        """The gateway's own decision at `at` (same seed, same draws)."""
        rng = seeded_rng(GROUP_SEED, str(world.general["id"]), at.isoformat())
        next_check(at, policy, rng)
        state = FreeWillState("UTC", 0, 6, human, last, 1)
        return decide(at, state, policy, rng) is Action.REACT

    async def talk(text: str, who: Any = world.alice) -> None:
        seen = len(answers(world))
        await world.discord.say(world.general, who, f"@Lilith {text}")
        await world.discord.wait_until(_more_answers(world, seen))

    async with running_bot(world):
        enabled = await world.discord.slash(
            world.general,
            world.alice,
            "freewill",
            {"personality": "Lilith", "daily_budget": 3, "quiet_hours": "0-6"},
            subcommand=["on"],
            permissions=MANAGE_CHANNELS,
        )
        assert "at most 3 times a day" in await world.discord.wait_until(_texts(enabled))
        clock.set(night)  # 01:00, in the quiet hours
        await talk("still up?")
        clock.set(night + timedelta(hours=3))  # quiet for 3 h, but it is 04:00
        await scheduler.tick()  # (counts every channel due; ours is asserted by its events)
        assert await events_of(world, str(world.general["id"])) == []
        check_in_at = night + timedelta(hours=6)  # 07:00: the quiet hours are over
        clock.set(check_in_at)
        assert await scheduler.tick() >= 1
        await settled(world, lambda ev: len(ev) == 1 and ev[0]["delivered_at"])
        human = check_in_at + timedelta(minutes=40)
        clock.set(human)
        await talk("did you hear the news this morning?")
        react_at = next(
            at
            for at in (human + timedelta(seconds=s) for s in range(60, 15 * 60, 7))
            if reacts(at, human, check_in_at)
        )
        clock.set(react_at)
        seen = len(answers(world))
        assert await scheduler.tick() >= 1
        await world.discord.wait_until(_more_answers(world, seen))
        events = await settled(world, lambda ev: len(ev) == 2 and ev[1]["delivered_at"])
        react_request = world.provider.chat_requests()[-1].body
        clock.set(react_at + timedelta(minutes=5))
        await talk("good morning all", world.bob)  # a new spell, paid by Bob's own key
        await world.cli.RemoveWalletKey(
            gw.RemoveWalletKeyRequest(
                actor=common.Actor(user_id=str(world.alice["id"])), provider="openrouter"
            )
        )
        clock.set(react_at + timedelta(hours=2))  # a check-in would be due, paid by Alice
        await scheduler.tick()
        assert len(await events_of(world, str(world.general["id"]))) == 2  # nothing queued
        status = await world.discord.slash(
            world.general,
            world.alice,
            "freewill",
            subcommand=["status"],
            permissions=MANAGE_CHANNELS,
        )
        shown = await world.discord.wait_until(_texts(status))
    assert [e["reason"] for e in events] == ["check_in", "react"]
    asked = react_request["messages"]
    assert "react briefly and naturally to the most recent message" in str(asked[-1]["content"])
    assert "NO_API_KEY" in shown


CHECK_IN_ASKED = "check in with the people here"
TEAPOT = "Alice keeps a green teapot named Ferdinand on her windowsill"
ELM_STREET = "Ali lives at 12 Elm Street."


def _actor(user: dict[str, Any]) -> common.Actor:
    return common.Actor(user_id=str(user["id"]), display_name=str(user["username"]))


async def free_will_on(world: World, name: str = "Lilith") -> None:
    """/freewill on, paid by Alice, with no quiet hours (the module's clock may be anywhere)."""
    enabled = await world.discord.slash(
        world.general,
        world.alice,
        "freewill",
        {"personality": name, "daily_budget": 3, "quiet_hours": "0-0"},
        subcommand=["on"],
        permissions=MANAGE_CHANNELS,
    )
    assert "at most 3 times a day" in await world.discord.wait_until(_texts(enabled))


async def remember(world: World, user: dict[str, Any], personality: str, text: str) -> None:
    """A long-term memory of `user`'s own with `personality` (an old one: never excluded as
    already in the history)."""
    user_id = (await world.cli.GetUser(gw.GetUserRequest(actor=_actor(user)))).user.id
    found = await world.cli.GetPersonality(gw.GetPersonalityRequest(personality=personality))
    memory = mem_grpc.MemoryServiceStub(await world.mesh.channel("gateway", target="memory"))
    given = common.Memory(
        id=str(uuid.uuid4()), personality_id=found.personality.id, user_id=user_id, text=text
    )
    given.created_at.FromDatetime(datetime(2026, 1, 1, tzinfo=UTC))
    await memory.AddMemory(mem.AddMemoryRequest(memory=given), timeout=120)


def _check_ins_reading(world: World, text: str) -> list[dict[str, Any]]:
    """The check-ins asked of the provider whose prompt holds `text` (this channel's: the
    scheduler looks at every channel of the module's earlier tests too)."""
    return [
        r.body
        for r in world.provider.chat_requests()
        if CHECK_IN_ASKED in str(r.body["messages"][-1]["content"])
        and text in str(r.body["messages"])
    ]


async def test_a_free_will_post_is_the_channels_not_its_payers(
    world: World, clock: ManualClock
) -> None:
    """Alice pays for Lilith's free will, but its check-in is said for nobody: its prompt
    holds neither her persona nor her own memories (her own question's prompt holds both),
    her /history undo takes her own last exchange, never the check-in, and her ❌ or 🔄 on
    it does nothing, even from a bot restarted since (which knows the post only by its job,
    whose author is her, the payer)."""
    assert world.mesh.gateway_app is not None
    scheduler = world.mesh.gateway_app.features.freewill
    await activate(world, "Lilith")
    await world.cli.SetPersona(
        gw.SetPersonaRequest(
            actor=_actor(world.alice),
            persona=gw.Persona(preferred_name="Ali", description=ELM_STREET),
        )
    )
    await remember(world, world.alice, "Lilith", TEAPOT)
    async with running_bot(world):
        await free_will_on(world)
        clock.advance(timedelta(minutes=1))
        said = await world.discord.say(
            world.general, world.alice, "@Lilith what is my green teapot called?"
        )
        await world.delivered(f"{said.id}:lilith")
        her_own = str(world.provider.chat_requests()[-1].body["messages"])
        clock.advance(timedelta(hours=2))
        seen = len(answers(world))
        await scheduler.tick()
        await world.discord.wait_until(_more_answers(world, seen))
        await settled(world, lambda ev: len(ev) == 1 and ev[0]["delivered_at"])
        check_in = answers(world)[-1]
        undo = await world.discord.slash(
            world.general, world.alice, "history", {"personality": "lilith"}, subcommand=["undo"]
        )
        removed = await world.discord.wait_until(_texts(undo))
    async with running_bot(world) as bot:  # a new process: the post known by its job only
        paid = len(world.provider.chat_requests())
        await world.discord.react(check_in, world.alice, "❌")
        await world.discord.react(check_in, world.alice, "🔄")
        await discord_settled(world, bot)
        kept = (not check_in.deleted, len(world.provider.chat_requests()) - paid)
        clock.advance(timedelta(minutes=1))
        later = await world.discord.say(world.general, world.alice, "@Lilith what do you recall?")
        await world.delivered(f"{later.id}:lilith")
    assert kept == (True, 0)  # not deleted, nothing regenerated
    assert TEAPOT in her_own  # the control: her memory and persona reach her own prompt
    assert ELM_STREET in her_own
    (asked,) = _check_ins_reading(world, "teapot called?")  # it read the channel, though
    assert TEAPOT not in str(asked["messages"])
    assert ELM_STREET not in str(asked["messages"])
    assert removed == "Removed 2 messages from history."  # her question and its answer
    history = str(world.provider.chat_requests()[-1].body["messages"][:-1])
    assert check_in.content[:60] in history
    assert "teapot called?" not in history


async def test_after_freewill_off_a_queued_turn_is_not_posted(
    world: World, clock: ManualClock
) -> None:
    """A check-in queued while no bot was listening, then /freewill off (the RPC the
    command sends): when a bot picks the turn up it is dropped, and nothing is posted."""
    assert world.mesh.gateway_app is not None
    scheduler = world.mesh.gateway_app.features.freewill
    await activate(world, "Lilith")
    async with running_bot(world):
        await free_will_on(world)
        clock.advance(timedelta(minutes=1))
        said = await world.discord.say(world.general, world.alice, "@Lilith see you later")
        await world.delivered(f"{said.id}:lilith")
    clock.advance(timedelta(hours=2))
    await scheduler.tick()
    (queued,) = await events_of(world, str(world.general["id"]))
    assert (queued["reason"], queued["delivered_at"]) == ("check_in", None)
    await world.cli.SetFreeWill(
        gw.SetFreeWillRequest(
            actor=_actor(world.alice),
            location=_where(world),
            personality="Lilith",
            enabled=False,
            manage_channels=True,
        )
    )
    seen = len(answers(world))
    async with running_bot(world):
        (event,) = await settled(world, lambda ev: ev[0]["delivered_at"] is not None)
    assert event["dropped_reason"] == "FREEWILL_OFF"
    assert len(answers(world)) == seen  # nothing posted
    assert _check_ins_reading(world, "see you later") == []  # nor generated


async def test_after_channel_deactivate_no_chain_reply_is_posted(
    world: World, clock: ManualClock
) -> None:
    """/channel deactivate is a command, not a message: it interrupts no round. The chain
    reply of the personality it removed, waiting out its cooldown, is dropped when it comes."""
    await activate(world, "Lilith", "Sage")
    await talkative(world, lilith=1.0, sage=1.0)
    await set_channel(world, "group_max_speakers", 1)
    await set_channel(world, "group_chain_cap", 1)
    await set_channel(world, "group_chain_cooldown_seconds", 600)
    async with running_bot(world):
        await world.discord.say(world.general, world.alice, "tell me about the stars")
        await settled(world, lambda ev: len(ev) == 1)  # the reply waits out its cooldown
        (first,) = answers(world)
        replier = "Sage" if first.author_name == "Lilith" else "Lilith"
        done = await world.discord.slash(
            world.general,
            world.alice,
            "channel",
            {"personality": replier},
            subcommand=["deactivate"],
            permissions=MANAGE_CHANNELS,
        )
        assert "no longer answers" in await world.discord.wait_until(_texts(done))
        clock.advance(timedelta(seconds=601))
        (event,) = await settled(world, lambda ev: ev[0]["delivered_at"] is not None)
    assert (event["reason"], event["dropped_reason"]) == ("chain", "NOT_ACTIVATED")
    assert event["message_ids"] == []
    assert [m.author_name for m in answers(world)] == [first.author_name]


async def turn_claim(world: World) -> dict[str, Any]:
    """The channel's one scheduled turn: its claims so far and its lease end."""
    engine = create_engine(world.mesh.database_url)
    try:
        async with engine.connect() as conn:
            found = await conn.execute(
                sa.text(
                    "SELECT attempts, claimed_until FROM core.bot_events"
                    " WHERE channel_id = :c AND kind = 'turn'"
                ),
                {"c": str(world.general["id"])},
            )
            (row,) = found.all()
            return dict(row._mapping)
    finally:
        await engine.dispose()


async def renewed(world: World, until: datetime, within: float = 30.0) -> None:
    """Waits until the bot's stream has renewed the turn's claim to `until` or later."""
    deadline = asyncio.get_running_loop().time() + within
    while (claim := await turn_claim(world))["claimed_until"] is None or (
        claim["claimed_until"] < until
    ):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"the claim was not renewed past {until}: {claim}")
        await asyncio.sleep(0.1)


async def test_a_scheduled_turn_slower_than_the_event_lease_is_posted_once(
    world: World, clock: ManualClock
) -> None:
    """A chain reply whose answer takes longer than the event lease (60 s: a reasoning model,
    an image): the bot's stream renews its claim while the bot works, so the turn is not sent
    to the bot again, and posted once."""
    await activate(world, "Lilith", "Sage")
    await talkative(world, lilith=1.0, sage=1.0)
    await set_channel(world, "group_max_speakers", 1)
    await set_channel(world, "group_chain_cap", 1)
    await set_channel(world, "group_chain_cooldown_seconds", 600)
    async with running_bot(world):
        await world.discord.say(world.general, world.alice, "tell me a very long story")
        await settled(world, lambda ev: len(ev) == 1)  # the reply waits out its cooldown
        assert len(answers(world)) == 1
        world.provider.hold = asyncio.Event()  # the reply's model thinks until told
        asked = len(world.provider.chat_requests())
        clock.advance(timedelta(seconds=601))
        await world.discord.wait_until(lambda: len(world.provider.chat_requests()) > asked)
        for _ in range(6):  # three minutes of thinking, in steps shorter than the lease
            clock.advance(timedelta(seconds=30))
            await renewed(world, clock.now() + timedelta(seconds=60))
        world.provider.hold.set()
        (event,) = await settled(world, lambda ev: ev[0]["delivered_at"] is not None)
        await world.discord.wait_until(lambda: len(answers(world)) >= 2)
        claim = await turn_claim(world)
    assert (event["reason"], event["dropped_reason"]) == ("chain", "")
    assert len(event["message_ids"]) >= 1
    assert claim["attempts"] == 1  # sent to the bot once
    assert len(answers(world)) == 2  # the human's answer and the reply, once


async def test_a_free_will_turn_refused_for_quota_is_dropped_and_free_will_says_why(
    world: World, clock: ManualClock
) -> None:
    """The payer's key has no credit left (the provider answers 402): the turn is dropped at
    once (not handed back every lease forever), its slot of the day's budget is given back,
    and free will is off there with the reason, as /freewill status shows."""
    assert world.mesh.gateway_app is not None
    scheduler = world.mesh.gateway_app.features.freewill
    spent = "sk-or-spent-key-0123456789abcdef"

    def paid_by(key: str) -> int:
        return sum(r.api_key == key for r in world.provider.chat_requests())

    world.provider.valid_keys.add(spent)
    await world.set_key(world.alice, spent)
    await activate(world, "Lilith")
    async with running_bot(world):
        await free_will_on(world)
        clock.advance(timedelta(minutes=1))
        said = await world.discord.say(world.general, world.alice, "@Lilith good night")
        await world.delivered(f"{said.id}:lilith")
        world.provider.spent_keys.add(spent)  # her credit runs out
        clock.advance(timedelta(hours=2))
        seen, asked = len(answers(world)), paid_by(spent)
        await scheduler.tick()
        (event,) = await settled(world, lambda ev: ev[0]["delivered_at"] is not None)
        status = await world.discord.slash(
            world.general,
            world.alice,
            "freewill",
            subcommand=["status"],
            permissions=MANAGE_CHANNELS,
        )
        shown = await world.discord.wait_until(_texts(status))
        claim = await turn_claim(world)
    assert (event["reason"], event["dropped_reason"]) == ("check_in", "PROVIDER_QUOTA_EXCEEDED")
    assert claim["attempts"] == 1
    assert paid_by(spent) == asked + 1  # asked once, refused
    assert len(answers(world)) == seen  # nothing posted
    assert "off (PROVIDER_QUOTA_EXCEEDED)" in shown
    assert "0/3 today" in shown  # the dropped turn is not counted against the day


# ---- memory consolidation by activity ----


def consolidations() -> float:
    """Memory's finished Consolidate calls (the in-process mesh shares one registry)."""
    labels = {"grpc_service": "tzurot.v1.MemoryService", "grpc_method": "Consolidate"}
    return (
        REGISTRY.get_sample_value("grpc_server_handled_total", labels | {"grpc_code": "OK"}) or 0.0
    )


async def test_memory_consolidates_after_enough_exchanges_without_the_cronjob(
    world: World,
) -> None:
    """Every `TZUROT_CONSOLIDATE_EVERY_EXCHANGES` (3 here) delivered exchanges, the gateway
    asks memory to consolidate; nothing else calls it in this mesh (no CronJob)."""
    before = consolidations()
    async with running_bot(world):
        for n in range(3):
            said = await world.discord.say(world.general, world.alice, f"@Lilith note {n}")
            await world.delivered(f"{said.id}:lilith")
        await world.discord.wait_until(lambda: consolidations() > before, within=120)


# ---- release notes ----


async def test_release_notes_post_once_per_channel_per_version(
    world: World, clock: ManualClock, changelog: Path
) -> None:
    assert world.mesh.gateway_settings is not None
    other = world.discord.add_channel(world.guild, "announcements")
    async with running_bot(world):
        for channel in (world.general, other):
            done = await world.discord.slash(
                channel,
                world.alice,
                "notifications",
                subcommand=["subscribe"],
                permissions=MANAGE_GUILD,
            )
            assert "0.1.0" in await world.discord.wait_until(_texts(done))
        # A new version starts: two replicas at once, then one of them restarts.
        changelog.write_text(CHANGELOG_V2)  # noqa: ASYNC240  # a tiny test file
        try:
            replicas = await asyncio.gather(
                start_gateway(world.mesh.gateway_settings, clock=clock),
                start_gateway(world.mesh.gateway_settings, clock=clock),
            )
            for replica in replicas:
                await replica.stop()
            restarted = await start_gateway(world.mesh.gateway_settings, clock=clock)
            await restarted.stop()
        finally:
            changelog.write_text(CHANGELOG_V1)  # noqa: ASYNC240  # a tiny test file
        # No clock advance: an earlier test's bot, gone, left no claim waiting out a lease.
        for channel in (world.general, other):
            await world.discord.wait_until(_posts(world, channel))
        shown = await world.discord.slash(world.general, world.alice, "changelog")
        text = await world.discord.wait_until(lambda: "".join(shown.texts()))
    for channel in (world.general, other):
        (notes,) = bot_posts(world, channel)
        assert notes.content.startswith("**Tzurot 0.2.0** (2026-12-02)")
        assert "Group channels" in notes.content
    assert "Tzurot 0.1.0" in text  # this gateway runs 0.1.0


# ---- announcements ----


async def make_superuser(world: World, user: dict[str, Any]) -> None:
    """As an operator would (README, "Superusers")."""
    engine = create_engine(world.mesh.database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                sa.text("UPDATE core.users SET superuser = true WHERE platform_user_id = :id"),
                {"id": user["id"]},
            )
    finally:
        await engine.dispose()


async def subscribe(world: World, channel: Any) -> None:
    done = await world.discord.slash(
        channel, world.alice, "notifications", subcommand=["subscribe"], permissions=MANAGE_GUILD
    )
    assert "will get the notes" in await world.discord.wait_until(_texts(done))


async def test_superusers_announce_to_every_subscribed_channel(world: World) -> None:
    """/admin announce: refused for others; a superuser's text posts once per subscriber.

    Without a clock advance: earlier tests' bots went away, and whatever their streams had
    claimed was released at once (it would otherwise wait out the lease)."""
    news = world.discord.add_channel(world.guild, "news")
    updates = world.discord.add_channel(world.guild, "updates")
    quiet = world.discord.add_channel(world.guild, "not-subscribed")
    text = f"Maintenance at noon ({uuid.uuid4().hex[:6]})"

    def announced(channel: Any) -> list[Posted]:
        return [m for m in bot_posts(world, channel) if text in m.content]

    async with running_bot(world):
        for channel in (news, updates):
            await subscribe(world, channel)
        refused = await world.discord.slash(
            news, world.alice, "admin", {"text": text}, subcommand=["announce"]
        )
        assert "only superusers may announce" in await world.discord.wait_until(_texts(refused))
        await make_superuser(world, world.alice)
        queued = await world.discord.slash(
            news, world.alice, "admin", {"text": text}, subcommand=["announce"]
        )
        assert "Announcement queued for" in await world.discord.wait_until(_texts(queued))
        await world.discord.wait_until(lambda: announced(news) and announced(updates))
        events = await settled_notices(world, text, news, updates)
    for channel in (news, updates):
        (posted,) = announced(channel)
        assert posted.content == text
        assert posted.data["nonce"]  # sent with a nonce, `enforce_nonce` on
    assert not announced(quiet)
    assert sorted(e["message_ids"][0] for e in events) == sorted(
        str(announced(c)[0].id) for c in (news, updates)
    )


async def settled_notices(world: World, text: str, *channels: Any) -> list[dict[str, Any]]:
    """The notices with `text` to `channels`, once each has one and all are acknowledged."""
    engine = create_engine(world.mesh.database_url)
    try:
        for _ in range(300):
            async with engine.connect() as conn:
                rows = [
                    dict(r._mapping)
                    for r in await conn.execute(
                        sa.text(
                            "SELECT delivered_at, message_ids, attempts FROM core.bot_events "
                            "WHERE text = :t AND channel_id = ANY(:c)"
                        ),
                        {"t": text, "c": [str(c["id"]) for c in channels]},
                    )
                ]
            if len(rows) == len(channels) and all(r["delivered_at"] for r in rows):
                return rows
            await asyncio.sleep(0.1)
    finally:
        await engine.dispose()
    raise AssertionError(f"the notices never settled: {rows}")


async def test_a_notice_posted_by_a_bot_that_died_before_acknowledging_is_not_posted_again(
    world: World,
) -> None:
    """The bot dies between Discord storing its notice and its acknowledgement: at once (no
    lease, no clock advance) the restarted bot gets the notice again, posts it with the same
    nonce, and Discord answers with the message already there; nothing is posted twice."""
    news = world.discord.add_channel(world.guild, "crash-news")
    text = f"Restart at dusk ({uuid.uuid4().hex[:6]})"
    await make_superuser(world, world.alice)
    doomed_channel = await world.mesh.channel("bot")
    doomed = GatewayClient(gw_grpc.GatewayServiceStub(doomed_channel), generate_timeout=60)
    async with running_bot(world, gateway=doomed):
        await subscribe(world, news)
        stall = world.discord.stall_after("create_message", news)
        queued = await world.discord.slash(
            news, world.alice, "admin", {"text": text}, subcommand=["announce"]
        )
        assert "Announcement queued for" in await world.discord.wait_until(_texts(queued))
        (first,) = await world.discord.wait_until(
            lambda: [m for m in bot_posts(world, news) if m.content == text]
        )
        # Discord has it; the bot never hears back. It dies: its connection to the gateway
        # goes first (as when the process is killed), then the rest of it.
        await doomed_channel.close(grace=None)
    stall.set()
    async with running_bot(world):
        (event,) = await settled_notices(world, text, news)
    assert [m.id for m in bot_posts(world, news) if m.content == text] == [first.id]
    assert first.data["nonce"] in world.discord.nonce_dedupes  # posted again, deduped
    assert event["message_ids"] == [str(first.id)]
    assert event["attempts"] == 2
