"""Drawing through Discord with an image-only model (the whole mesh, the real bot, the fake
Discord and the fake provider as OpenRouter): the provider's model list says the model outputs
images only, so it is asked `modalities: ["image"]` (it refuses `["image", "text"]`, as
OpenRouter's image-only models do); a wide image reaches it as `image_config.aspect_ratio`
16:9, and the image drawn is posted."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from tzurot.cli.localdb import create_database
from tzurot.testing.discord_e2e import World, discord_world, running_bot
from tzurot.testing.fake_tools import ToolCallSpec
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw
from tzurot.v1 import memory_pb2 as mem
from tzurot.v1 import memory_pb2_grpc as mem_grpc

pytestmark = pytest.mark.e2e

FLUX = "black-forest-labs/flux.2-pro"


@pytest.fixture(scope="module")
async def flux_mesh(
    postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    """Lilith draws with an image-only model on OpenRouter's chat endpoint."""
    database = create_database(postgres_url, f"test_{uuid.uuid4().hex[:20]}")
    inference = {"image_provider": "openrouter", "image_model": FLUX}
    async with discord_world(
        database, Path(tmp_path_factory.mktemp("flux")), inference=inference
    ) as world:
        world.provider.image_only_models.add(FLUX)
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
async def world(flux_mesh: World) -> World:
    world = flux_mesh.scene()
    await world.set_key(world.alice)
    return world


async def ask(world: World, text: str) -> None:
    async with running_bot(world):
        said = await world.discord.say(world.general, world.alice, f"@Lilith {text}")
        await world.delivered(f"{said.id}:lilith")


def attachments(world: World) -> list[dict[str, Any]]:
    """What the user sees attached to the personality's messages in the channel."""
    return [a for m in world.discord.webhook_messages(world.general) for a in m.data["attachments"]]


async def test_a_wide_image_from_an_image_only_model_is_asked_as_16_9_and_posted(
    world: World,
) -> None:
    before = len(world.provider.chat_image_requests())
    world.provider.enqueue_tool_calls(
        ToolCallSpec("generate_image", {"prompt": "a wide desert at dusk", "size": "landscape"})
    )
    world.provider.enqueue("Here is your desert.")
    await ask(world, "draw me a wide desert")
    (received,) = world.provider.chat_image_requests()[before:]
    assert received.body["model"] == FLUX
    assert received.body["modalities"] == ["image"]
    assert received.body["image_config"] == {"aspect_ratio": "16:9"}
    (posted,) = attachments(world)
    assert posted["filename"] == "image-1.png"
    (answer,) = world.discord.webhook_messages(world.general)
    assert answer.content.endswith("Here is your desert.")
    assert world.discord.refusals == []


async def test_a_square_image_sends_no_aspect_ratio(world: World) -> None:
    before = len(world.provider.chat_image_requests())
    world.provider.enqueue_tool_calls(ToolCallSpec("generate_image", {"prompt": "a red moon"}))
    world.provider.enqueue("Here is your moon.")
    await ask(world, "draw me a moon")
    (received,) = world.provider.chat_image_requests()[before:]
    assert received.body["modalities"] == ["image"]
    assert "image_config" not in received.body
    assert len(attachments(world)) == 1
