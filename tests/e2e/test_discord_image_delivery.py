"""Generated images through Discord, as a user sees them: the fake Discord (Discord's upload
limits), the real bot, the whole mesh and the fake provider drawing. Nothing is drawn (and
paid for) that cannot be posted, everything drawn is posted, and every image paid for is in
the user's usage."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from tzurot.cli.localdb import create_database
from tzurot.testing.discord_e2e import World, discord_world, running_bot, settled, slash_text
from tzurot.testing.fake_tools import ToolCallSpec
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw
from tzurot.v1 import memory_pb2 as mem
from tzurot.v1 import memory_pb2_grpc as mem_grpc

pytestmark = pytest.mark.e2e

MIB = 1024 * 1024


@pytest.fixture(scope="module")
async def drawing_mesh(
    postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    """Lilith draws with fake/draw; an image may be 7 MiB, so two fit one answer's files."""
    database = create_database(postgres_url, f"test_{uuid.uuid4().hex[:20]}")
    inference = {
        "image_provider": "openrouter",
        "image_model": "fake/draw",
        "image_max_bytes": 7 * MIB,
    }
    async with discord_world(
        database, Path(tmp_path_factory.mktemp("images")), inference=inference
    ) as world:
        world.provider.image_models.add("fake/draw")
        await _warm_up(world)
        await world.cli.UpdatePersonality(
            gw.UpdatePersonalityRequest(
                personality=common.Personality(slug="lilith", skills=["generate_image"]),
                update_paths=["skills"],
            )
        )
        yield world


async def _warm_up(world: World) -> None:
    """The first embedding loads the model (slow on a loaded machine): not in a test."""
    stub = mem_grpc.MemoryServiceStub(await world.mesh.channel("gateway", target="memory"))
    request = mem.QueryMemoriesRequest(personality_id="warm-up", user_id="", query="hello")
    for attempt in range(4):
        try:
            await stub.QueryMemories(request, timeout=120)
            return
        except grpc.aio.AioRpcError as exc:
            if exc.code() is not grpc.StatusCode.DEADLINE_EXCEEDED or attempt == 3:
                raise


@pytest.fixture
async def world(drawing_mesh: World) -> World:
    world = drawing_mesh.scene()
    world.provider.image_bytes = 0
    await world.set_key(world.alice)
    return world


def draw(n: int) -> ToolCallSpec:
    return ToolCallSpec("generate_image", {"prompt": f"a moon, number {n}"})


async def ask(world: World, text: str) -> None:
    async with running_bot(world):
        said = await world.discord.say(world.general, world.alice, f"@Lilith {text}")
        await world.delivered(f"{said.id}:lilith")


def drawn(world: World, before: int) -> int:
    """Images the provider drew (each one paid for) since `before` image calls."""
    return len([r for r in world.provider.chat_requests() if r.body.get("modalities")]) - before


def image_calls(world: World) -> int:
    return drawn(world, 0)


def attachments(world: World) -> list[dict[str, Any]]:
    """What the user sees attached to the personality's messages in the channel."""
    return [a for m in world.discord.webhook_messages(world.general) for a in m.data["attachments"]]


async def images_used(world: World) -> int:
    usage = await world.cli.GetUsage(
        gw.GetUsageRequest(
            actor=common.Actor(user_id=str(world.alice["id"]), display_name="alice"),
            period=gw.USAGE_PERIOD_DAY,
        )
    )
    return sum(t.images for t in usage.totals)


async def test_six_images_at_once_only_what_can_be_posted_is_drawn_and_all_are_posted(
    world: World,
) -> None:
    """Six drawings asked in one round, room for two of 7 MiB: two are drawn, both are posted,
    both are in the usage; the other four are never sent to the image model."""
    before = image_calls(world)
    world.provider.enqueue_tool_calls(*(draw(n) for n in range(6)))
    world.provider.enqueue("Here are your moons.")
    await ask(world, "draw me six moons")
    posted = attachments(world)
    assert drawn(world, before) == len(posted) == await images_used(world) == 2
    assert world.discord.refusals == []


async def test_two_large_images_are_both_posted(world: World) -> None:
    """Two 6 MiB images (12 MiB together, each within Discord's 10 MiB per file) are both
    attached to the answer."""
    world.provider.image_bytes = 6 * MIB
    world.provider.enqueue_tool_calls(draw(1), draw(2))
    world.provider.enqueue("Two big moons.")
    await ask(world, "draw me two big moons")
    (answer,) = world.discord.webhook_messages(world.general)
    assert answer.content.endswith("Two big moons.")
    assert [a["size"] for a in answer.data["attachments"]] == [6 * MIB, 6 * MIB]
    assert await images_used(world) == 2
    assert world.discord.refusals == []


async def test_an_image_too_large_to_post_is_counted_and_not_claimed(world: World) -> None:
    """The model draws an 11 MiB image: paid for, too large for Discord's 10 MiB, so it is not
    attached; the model reads that (not "attached"), and the usage has it."""
    world.provider.image_bytes = 11 * MIB
    world.provider.enqueue_tool_calls(draw(1))
    world.provider.enqueue("The moon was too big to send, sorry.")
    await ask(world, "draw me a huge moon")
    assert attachments(world) == []
    (answer,) = world.discord.webhook_messages(world.general)
    assert answer.content.endswith("The moon was too big to send, sorry.")
    told = [m for m in world.provider.chat_requests()[-1].body["messages"] if m["role"] == "tool"]
    assert "larger than 7 MiB; nothing to attach" in told[-1]["content"]
    assert await images_used(world) == 1


async def test_an_answer_that_fails_after_drawing_still_posts_the_image(world: World) -> None:
    """A drawing, then the model answers nothing twice (EMPTY_ANSWER): the user gets the image
    with a short note instead of an error, and the usage has it."""
    world.provider.enqueue_tool_calls(draw(1))
    world.provider.enqueue("")
    world.provider.enqueue("")
    await ask(world, "draw me a moon")
    (answer,) = world.discord.webhook_messages(world.general)
    assert "The answer could not be finished" in answer.content
    (image,) = answer.data["attachments"]
    assert image["filename"].endswith(".png")
    assert await images_used(world) == 1


async def test_two_images_asked_in_one_call_are_two_requests_both_posted_and_counted(
    world: World,
) -> None:
    """`count: 2` on the chat endpoint (OpenRouter's image models answer one image per
    request): two requests, both images posted, the model told it drew two, and `/usage`
    shows two image_generation requests with their two images."""
    before = image_calls(world)
    two = ToolCallSpec("generate_image", {"prompt": "two moons over the sea", "count": 2})
    world.provider.enqueue_tool_calls(two)
    world.provider.enqueue("Two moons for you.")
    async with running_bot(world) as bot:
        said = await world.discord.say(world.general, world.alice, "@Lilith draw me two moons")
        await world.delivered(f"{said.id}:lilith")
        await settled(world, bot)
        shown = await slash_text(world, world.alice, "usage", period="day")
    assert drawn(world, before) == 2
    (answer,) = world.discord.webhook_messages(world.general)
    assert answer.content.endswith("Two moons for you.")
    assert [a["filename"] for a in answer.data["attachments"]] == ["image-1.png", "image-2.png"]
    told = [m for m in world.provider.chat_requests()[-1].body["messages"] if m["role"] == "tool"]
    assert told[-1]["content"].startswith("Drew 2 images of: two moons over the sea.")
    assert (
        "`openrouter/fake/draw` (image generation): 2 requests, 20 in / 2,580 out tokens, 2 images"
    ) in shown
    assert await images_used(world) == 2
