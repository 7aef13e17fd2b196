"""Skills through Discord: the fake Discord, the real bot, the whole mesh, the fake provider
playing a model that uses tools, a fake SearXNG and local pages on loopback (allowed by the
test allow-list, as nothing else private is)."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
import sqlalchemy as sa

from tzurot.cli.localdb import create_database
from tzurot.db.engine import create_engine
from tzurot.testing.discord_e2e import USER_KEY, World, discord_world, running_bot
from tzurot.testing.fake_provider import ScriptedReply
from tzurot.testing.fake_tools import ToolCallSpec
from tzurot.testing.fake_web import FakeSearxng, LocalPages
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw
from tzurot.v1 import memory_pb2 as mem
from tzurot.v1 import memory_pb2_grpc as mem_grpc

pytestmark = pytest.mark.e2e

FACT = "crew of six"
URL = re.compile(r"https?://\S+")


@dataclass
class SkillWorld:
    world: World
    pages: LocalPages
    searx: FakeSearxng


@pytest.fixture(scope="module")
async def skill_mesh(
    postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[SkillWorld]:
    async with LocalPages() as pages, FakeSearxng() as searx:
        database = create_database(postgres_url, f"test_{uuid.uuid4().hex[:20]}")
        inference = {
            "search_backend": "searxng",
            "searxng_url": searx.base_url,
            "skill_fetch_allow": [pages.origin],
            "image_provider": "openrouter",
            "image_model": "fake/draw",
        }
        async with discord_world(
            database, Path(tmp_path_factory.mktemp("skills")), inference=inference
        ) as world:
            world.provider.image_models.add("fake/draw")
            # The first embedding warms the model up (slow on a loaded machine): not in a test.
            await _warm_up(world)
            await world.cli.UpdatePersonality(
                gw.UpdatePersonalityRequest(
                    personality=common.Personality(
                        slug="lilith",
                        skills=["web_research", "read_url", "memory_search", "generate_image"],
                    ),
                    update_paths=["skills"],
                )
            )
            yield SkillWorld(world, pages, searx)


async def _warm_up(world: World) -> None:
    """One search embeds once; on a loaded machine the first embedding can take minutes."""
    channel = await world.mesh.channel("gateway", target="memory")
    stub = mem_grpc.MemoryServiceStub(channel)
    request = mem.QueryMemoriesRequest(personality_id="warm-up", user_id="", query="hello")
    for attempt in range(4):
        try:
            await stub.QueryMemories(request, timeout=120)
            return
        except grpc.aio.AioRpcError as exc:
            if exc.code() is not grpc.StatusCode.DEADLINE_EXCEEDED or attempt == 3:
                raise


@pytest.fixture
def sw(skill_mesh: SkillWorld) -> SkillWorld:
    skill_mesh.world = skill_mesh.world.scene()
    return skill_mesh


def _text(body: dict[str, Any]) -> str:
    parts = []
    for message in body["messages"]:
        content = message.get("content")
        parts.append(content if isinstance(content, str) else str(content or ""))
    return "\n".join(parts)


def _last_user(body: dict[str, Any]) -> str:
    users = [m for m in body["messages"] if m.get("role") == "user"]
    content = users[-1]["content"] if users else ""
    return content if isinstance(content, str) else str(content)


def researching_model(body: dict[str, Any]) -> str | ScriptedReply:
    """A model that researches what it does not know, cites its sources, and uses what its
    memories already tell it."""
    tools = {t["function"]["name"] for t in body.get("tools", [])}
    results = [m["content"] for m in body["messages"] if m.get("role") == "tool"]
    if results:
        found = "\n".join(results)
        urls = sorted(set(URL.findall(found)))
        if FACT in found:
            return f"The base opened with a {FACT}. Sources: " + " ".join(urls)
        return f"I tried, but: {found[:200]}"
    if FACT in _text(body):  # the memorised research is in the prompt
        return f"I remember: it opened with a {FACT}."
    question = _last_user(body).lower()
    if "moon" in question and "web_research" in tools:
        return ScriptedReply("", tool_calls=(ToolCallSpec("web_research", {"query": "moon base"}),))
    return "I do not know."


async def test_a_research_question_is_answered_with_sources_then_from_memory(
    sw: SkillWorld,
) -> None:
    world = sw.world
    article = f"{sw.pages.base_url}/article"
    sw.searx.add_result("Moon base opens", article, "A lunar base opened.")
    await world.set_key(world.alice)
    await world.set_key(world.bob)
    world.provider.reply = researching_model
    elsewhere = world.discord.add_channel(world.guild, "elsewhere")
    async with running_bot(world):
        said = await world.discord.say(
            world.general, world.alice, "@Lilith what happened on the moon this year?"
        )
        job = await world.delivered(f"{said.id}:lilith")
        (answer,) = world.discord.webhook_messages(world.general)
        assert FACT in answer.content
        assert article in answer.content  # cited
        assert answer.edits  # the status line came first, then the answer replaced it
        assert "is researching the web" not in answer.content
        assert sw.searx.queries == ["moon base"]
        inspected = await world.cli.GetJobStatus(
            gw.GetJobStatusRequest(
                job_id=job.id,
                actor=_actor(world.alice),
            )
        )
        (step,) = inspected.job.inspection.skill_steps
        assert (step.skill, step.ok, step.step) == ("web_research", True, 1)
        assert "moon base" in step.arguments
        assert article in step.summary
        # Later, she asks again: the research is her memory now, no search needed.
        asked = await world.discord.say(
            world.general, world.alice, "@Lilith what do you know about the moon base?"
        )
        await world.delivered(f"{asked.id}:lilith")
        second = world.discord.webhook_messages(world.general)[-1]
        last = world.provider.chat_requests()[-1]
        # Someone else, in a channel that never saw it: her query and the pages it found
        # are her memory, never in his prompt.
        other = await world.discord.say(
            elsewhere, world.bob, "@Lilith what do you remember about that base?"
        )
        await world.delivered(f"{other.id}:lilith")
        third = world.discord.webhook_messages(elsewhere)[-1]
        bobs = world.provider.chat_requests()[-1]
    assert f"I remember: it opened with a {FACT}." in second.content
    assert sw.searx.queries == ["moon base"]  # not searched again
    assert "tools" in last.body  # the skill was on offer; the model did not need it
    assert third.content.endswith("I do not know.")
    assert FACT not in _text(bobs.body)
    assert "Researched on" not in _text(bobs.body)


def researcher_of(topic: str) -> Any:
    """A model that researches `topic` when asked about it and answers from the results."""

    def model(body: dict[str, Any]) -> str | ScriptedReply:
        if any(m.get("role") == "tool" for m in body["messages"]):
            return "Here is what I found."
        if topic in _last_user(body):
            return ScriptedReply("", tool_calls=(ToolCallSpec("web_research", {"query": topic}),))
        return "I do not know."

    return model


async def remembered(world: World, text: str) -> list[tuple[bool, list[str]]]:
    """(in the shared lore, tags) of each memory whose text mentions `text`."""
    engine = create_engine(world.mesh.database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                sa.text("SELECT user_id, tags FROM memory.memories WHERE text LIKE :t"),
                {"t": f"%{text}%"},
            )
            return [(str(user_id) == "", list(tags)) for user_id, tags in rows]
    finally:
        await engine.dispose()


async def test_research_in_incognito_is_not_remembered(sw: SkillWorld) -> None:
    """/memory incognito on: findings of the user's research are not kept; another user's
    research (not incognito) is remembered as usual, as that user's own memory."""
    world = sw.world
    secret, public = f"topic-{uuid.uuid4().hex[:8]}", f"topic-{uuid.uuid4().hex[:8]}"
    # Each topic has a page of its own: research on different things is not a near-repeat of
    # earlier lore (which memory would merge into the older text).
    for topic, body in (
        (secret, "Quince jam sets when its pectin meets sugar and lemon."),
        (public, "Arctic terns fly from pole to pole every year."),
    ):
        sw.pages.articles[f"/article/{topic}"] = (topic, f"{topic}: {body}")
        sw.searx.add_result(
            topic, f"{sw.pages.base_url}/article/{topic}", f"On {topic}.", for_query=topic
        )
    await world.set_key(world.alice)
    await world.set_key(world.bob)
    async with running_bot(world):
        on = await world.discord.slash(
            world.general,
            world.alice,
            "memory",
            {"personality": "Lilith", "state": "on"},
            subcommand=["incognito"],
        )
        assert "Incognito with Lilith until <t:" in await _answered(world, on)
        world.provider.reply = researcher_of(secret)
        said = await world.discord.say(world.general, world.alice, f"@Lilith look up {secret}")
        await world.delivered(f"{said.id}:lilith")
        world.provider.reply = researcher_of(public)
        asked = await world.discord.say(world.general, world.bob, f"@Lilith look up {public}")
        await world.delivered(f"{asked.id}:lilith")
    assert secret in sw.searx.queries  # researched all the same ...
    assert await remembered(world, secret) == []  # ... and not remembered
    kept = await remembered(world, public)  # with, once formed, Bob's exchange's own memories
    assert [tags for _shared, tags in kept if tags] == [["lore_research"]]
    assert not any(shared for shared, _tags in kept)  # Bob's, not shared


async def test_a_stealth_skill_leaves_history_clean_and_a_visible_one_is_noted(
    sw: SkillWorld,
) -> None:
    world = sw.world
    await world.set_key(world.alice)
    notes = f"{sw.pages.base_url}/notes.txt"
    world.provider.enqueue_tool_calls(ToolCallSpec("memory_search", {"query": "my cat"}))
    world.provider.enqueue("I do not remember your cat, sorry.")
    world.provider.enqueue_tool_calls(ToolCallSpec("read_url", {"url": notes}))
    world.provider.enqueue("The meeting moved to Thursday.")
    async with running_bot(world):
        first = await world.discord.say(world.general, world.alice, "@Lilith what is my cat?")
        await world.delivered(f"{first.id}:lilith")
        second = await world.discord.say(world.general, world.alice, f"@Lilith read {notes}")
        await world.delivered(f"{second.id}:lilith")
    channel = await world.mesh.channel("gateway", target="memory")
    history = await mem_grpc.MemoryServiceStub(channel).GetHistory(
        mem.GetHistoryRequest(
            channel_id=str(world.general["id"]), personality_id=await _lilith_id(world), limit=10
        )
    )
    answers = [t for t in history.turns if t.role == common.ROLE_ASSISTANT]
    assert [a.content for a in answers] == [
        "I do not remember your cat, sorry.",
        "The meeting moved to Thursday.",
    ]
    stealthy, visible = answers
    assert list(stealthy.attachments) == []  # memory_search: not a trace in history
    (note,) = visible.attachments
    assert note.filename == "skills"
    assert note.description.startswith("read_url(")
    assert notes in note.description
    assert "memory_search" not in str(history)


async def test_an_ssrf_attempt_is_refused_and_said_so(sw: SkillWorld) -> None:
    world = sw.world
    await world.set_key(world.alice)
    # The fake provider listens on loopback too, but is not on the allow-list.
    inside = f"http://127.0.0.1:{world.provider.port}/v1/models"
    metadata = "http://169.254.169.254/latest/meta-data/iam/"
    world.provider.enqueue_tool_calls(
        ToolCallSpec("read_url", {"url": inside}), ToolCallSpec("read_url", {"url": metadata})
    )
    world.provider.reply = researching_model
    seen_before = len(world.provider.requests)
    async with running_bot(world):
        said = await world.discord.say(world.general, world.alice, f"@Lilith read {inside}")
        job = await world.delivered(f"{said.id}:lilith")
    answer = world.discord.webhook_messages(world.general)[-1]
    assert "refused: the link points to a private, local or metadata address" in answer.content
    assert not any(r.path == "/v1/models" for r in world.provider.requests[seen_before:])
    inspected = await world.cli.GetJobStatus(
        gw.GetJobStatusRequest(job_id=job.id, actor=_actor(world.alice))
    )
    steps = inspected.job.inspection.skill_steps
    assert [(s.skill, s.ok) for s in steps] == [("read_url", False), ("read_url", False)]


async def test_a_drawn_image_arrives_as_an_attachment_and_is_counted(sw: SkillWorld) -> None:
    world = sw.world
    await world.set_key(world.alice)
    world.provider.enqueue_tool_calls(
        ToolCallSpec("generate_image", {"prompt": "a red moon over a dark sea"})
    )
    world.provider.enqueue("Here is your red moon.")
    uploads_before = len(world.discord.uploads)
    async with running_bot(world):
        said = await world.discord.say(world.general, world.alice, "@Lilith draw me a red moon")
        await world.delivered(f"{said.id}:lilith")
    (answer,) = world.discord.webhook_messages(world.general)
    assert answer.content.endswith("Here is your red moon.")
    (image,) = world.discord.uploads[uploads_before:]
    assert image.startswith(b"\x89PNG\r\n\x1a\n")
    # The personality's answer itself carries it, as Discord shows it: one attachment whose
    # CDN url serves those bytes.
    (attached,) = answer.data["attachments"]
    assert attached["filename"].endswith(".png")
    assert attached["size"] == len(image)
    assert world.discord.files[int(attached["id"])][0] == image
    async with aiohttp.ClientSession() as http, http.get(attached["url"]) as served:
        assert served.status == 200
        assert await served.read() == image
    # The same message again (a client that lost its stream resends it): the job is replayed,
    # not drawn again, and the replay carries the image like the first answer did.
    paid = len(world.provider.chat_requests())
    gateway = await world.mesh.gateway_stub("bot")
    resend = gw.GenerateRequest(
        actor=_actor(world.alice),
        location=common.Location(
            guild_id=str(world.guild["id"]), channel_id=str(world.general["id"])
        ),
        personality="lilith",
        content="@Lilith draw me a red moon",
        idempotency_key=f"{said.id}:lilith",
    )
    events = [e async for e in gateway.Generate(resend)]
    assert events[0].accepted.replayed
    assert events[-1].finished.content.endswith("Here is your red moon.")
    (replayed,) = events[-1].finished.files
    assert (replayed.filename, replayed.data) == (attached["filename"], image)
    assert len(world.provider.chat_requests()) == paid
    draw = [r for r in world.provider.chat_requests() if r.body.get("modalities")]
    assert draw[-1].body["modalities"] == ["image", "text"]
    assert draw[-1].api_key == USER_KEY  # the user's key paid
    usage = await world.cli.GetUsage(
        gw.GetUsageRequest(
            actor=_actor(world.alice),
            period=gw.USAGE_PERIOD_DAY,
        )
    )
    assert sum(t.images for t in usage.totals) == 1
    # Its own row, under the image model with the tokens it billed (the fake's 10 in / 1290
    # out), not the chat model's.
    (drawn,) = [t for t in usage.totals if t.images]
    assert (drawn.request_type, drawn.model) == ("image_generation", draw[-1].body["model"])
    assert (drawn.input_tokens, drawn.output_tokens) == (10, 1290)


async def _lilith_id(world: World) -> str:
    reply = await world.cli.GetPersonality(gw.GetPersonalityRequest(personality="lilith"))
    return reply.personality.id


def _actor(user: dict[str, Any]) -> common.Actor:
    return common.Actor(user_id=str(user["id"]), display_name=str(user["username"]))


async def _answered(world: World, interaction: Any) -> str:
    await world.discord.wait_until(lambda: any(t for t in interaction.texts()))
    return "\n".join(t for t in interaction.texts() if t)


async def test_an_owner_enables_skills_with_slash_commands_and_others_cannot(
    sw: SkillWorld,
) -> None:
    world = sw.world
    discord = world.discord
    async with running_bot(world):
        created = await discord.slash(
            world.general,
            world.alice,
            "character",
            {"name": "Owl", "system_prompt": "You are Owl.", "public": True},
            subcommand=["create"],
        )
        assert "Created **Owl**" in await _answered(world, created)
        listed = await discord.slash(world.general, world.alice, "skills", subcommand=["list"])
        offered = await _answered(world, listed)
        for name in ("web_research", "read_url", "memory_search", "generate_image"):
            assert f"`{name}`" in offered
        enabled = await discord.slash(
            world.general,
            world.alice,
            "skills",
            {"personality": "owl", "skill": "read_url"},
            subcommand=["enable"],
        )
        assert "**Owl** now uses: `read_url`" in await _answered(world, enabled)
        typo = await discord.slash(
            world.general,
            world.alice,
            "skills",
            {"personality": "owl", "skill": "read_urls"},
            subcommand=["enable"],
        )
        assert "no skill named read_urls" in await _answered(world, typo)
        stranger = await discord.slash(
            world.general,
            world.bob,
            "skills",
            {"personality": "owl", "skill": "web_research"},
            subcommand=["enable"],
        )
        assert "only the owner" in await _answered(world, stranger)
    found = await world.cli.GetPersonality(gw.GetPersonalityRequest(personality="owl"))
    assert list(found.personality.skills) == ["read_url"]
